"""retinue: multi-agent LLM systems from a small, fast agentic loop.

The public API is what this module exports; everything else is importable
but not promised to stay put.
"""

from .agent import Agent
from .approvals import Approval, ApprovalRequest, Approver, approve_all, deny_all, terminal_approver, unattended
from .errors import RetinueError, ToolError
from .events import Event
from .limits import LimitReached, Limits
from .messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    SendBack,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from .models.base import Model, close_model
from .result import RunResult
from .run_context import RunContext, TreeState
from .tools import IdempotencyKey, Tool, tool
from .usage import Usage

__all__ = [
    "Agent",
    "Approval",
    "ApprovalRequest",
    "Approver",
    "AssistantMessage",
    "Event",
    "IdempotencyKey",
    "LimitReached",
    "Limits",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "RetinueError",
    "RunContext",
    "RunResult",
    "SendBack",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolResult",
    "ToolResultsMessage",
    "TreeState",
    "Usage",
    "UserMessage",
    "approve_all",
    "close_model",
    "deny_all",
    "terminal_approver",
    "tool",
    "unattended",
]

__version__ = "0.1.0"
