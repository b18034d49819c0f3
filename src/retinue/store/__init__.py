"""The trace store: runs persisted as trees, queried by the CLI and the UI.

store = RunStore()                      # ~/.retinue/runs.sqlite, or $RETINUE_HOME/runs.sqlite
result = await agent.run(prompt, on_event=store.recorder())
store.flush()
tree = store.get_run_tree(result.run_id)
"""

from .errors import InterruptedRunError, StoreError, UnusableStoreError
from .records import (
    AgentUsage,
    ApprovalRecord,
    ModelCallRecord,
    NoticeRecord,
    RunNode,
    RunRecord,
    Step,
    ToolCallRecord,
)
from .replay import ReplayResult, edit_request, replay_call, response_diff
from .serialize import request_from_json, request_to_json, response_from_json, response_to_json
from .sqlite import RunStore, default_store_path, usage_by_agent

__all__ = [
    "AgentUsage",
    "ApprovalRecord",
    "InterruptedRunError",
    "ModelCallRecord",
    "NoticeRecord",
    "ReplayResult",
    "RunNode",
    "RunRecord",
    "RunStore",
    "Step",
    "StoreError",
    "ToolCallRecord",
    "UnusableStoreError",
    "default_store_path",
    "edit_request",
    "replay_call",
    "request_from_json",
    "request_to_json",
    "response_diff",
    "response_from_json",
    "response_to_json",
    "usage_by_agent",
]
