"""The travel assistant's world: catalogue data, a bookings database, agent-facing tools and eval tasks.

world = TravelWorld(seed=0)
tools = make_tools(world)          # {"flights": [...], "hotels": [...], ...}
for task in load_tasks():
    expected = expected_snapshot(task)
"""

from .errors import TravelError
from .snapshot import diff_snapshots, snapshot_delta
from .tasks import (
    Action,
    Task,
    answer_contains,
    expected_snapshot,
    get_task,
    load_tasks,
    missing_facts,
    reference_solve,
)
from .tools import DOMAINS, all_tools, make_tools
from .world import TravelWorld

__all__ = [
    "DOMAINS",
    "Action",
    "Task",
    "TravelError",
    "TravelWorld",
    "all_tools",
    "answer_contains",
    "diff_snapshots",
    "expected_snapshot",
    "get_task",
    "load_tasks",
    "make_tools",
    "missing_facts",
    "reference_solve",
    "snapshot_delta",
]
