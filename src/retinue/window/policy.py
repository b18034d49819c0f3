"""The hook through which context engineering shapes what the model sees.

The loop calls a policy before every model call (to compact or trim the
conversation in place) and on every tool result (to offload a large output
and leave a preview). Policies may also give the model tools of their own,
such as one to read an offloaded output page by page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..messages import ToolResult

if TYPE_CHECKING:
    from ..models.base import Model
    from ..run_context import RunContext
    from ..tools import Tool


@runtime_checkable
class ContextPolicy(Protocol):
    def tools(self) -> Sequence[Tool]:
        """Extra tools the model gets while this policy is on (may be empty)."""
        ...

    async def before_request(self, context: RunContext, model: Model) -> None:
        """Rewrite `context.messages` in place if the next request would be too large."""
        ...

    async def on_tool_result(self, result: ToolResult, context: RunContext) -> ToolResult:
        """The result the model will read instead of `result` (for example a preview of a large output)."""
        ...
