"""Evals: tasks with hidden user goals, simulated users, end-state grading and pass^k."""

from .harness import Episode, EpisodeFactory, EvalReport, TrialResult, render_table, run_episode, run_eval
from .tasks import EvalTask
from .users import STOP, USER_INSTRUCTIONS, ScriptedUser, SimulatedUser, User

__all__ = [
    "STOP",
    "USER_INSTRUCTIONS",
    "Episode",
    "EpisodeFactory",
    "EvalReport",
    "EvalTask",
    "ScriptedUser",
    "SimulatedUser",
    "TrialResult",
    "User",
    "render_table",
    "run_episode",
    "run_eval",
]
