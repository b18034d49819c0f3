"""Evals: tasks with hidden user goals, simulated users, end-state grading, verdicts and pass^k."""

from .endings import EndEpisode
from .facts import contains_fact, normalise
from .harness import Episode, EpisodeFactory, run_episode, run_eval
from .report_files import previous_report, reports_dir, save_report
from .results import EpisodeEnding, EvalReport, SplitIds, ToolCallRecord, TrialResult, render_table
from .split import TaskSplit, split_tasks
from .state_diff import diff_states
from .tasks import EvalTask
from .users import STOP, USER_INSTRUCTIONS, ScriptedUser, SimulatedUser, User, UserSimulationError, split_at_stop

__all__ = [
    "STOP",
    "USER_INSTRUCTIONS",
    "EndEpisode",
    "Episode",
    "EpisodeEnding",
    "EpisodeFactory",
    "EvalReport",
    "EvalTask",
    "ScriptedUser",
    "SimulatedUser",
    "SplitIds",
    "TaskSplit",
    "ToolCallRecord",
    "TrialResult",
    "User",
    "UserSimulationError",
    "contains_fact",
    "diff_states",
    "normalise",
    "previous_report",
    "render_table",
    "reports_dir",
    "run_episode",
    "run_eval",
    "save_report",
    "split_at_stop",
    "split_tasks",
]
