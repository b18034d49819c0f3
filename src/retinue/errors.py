"""Every error retinue raises, in one tree.

Each message says what went wrong and what to do about it. Errors that happen
inside a run (a tool failing, a limit reached) do not crash the run: they end
up in the run's result or go back to the model as a tool result. The classes
here are for what the *caller* must fix; `except RetinueError` catches them all.

    RetinueError
    ├── ConfigurationError             an agent, tool or model set up in a way that cannot work
    │   ├── ToolDefinitionError        a function that cannot become a tool
    │   ├── MissingDependencyError     an optional extra is needed (names the pip command)
    │   └── UnknownModelError          a model string naming no known provider
    ├── ModelError                     a provider failed in a way retrying cannot fix
    │   ├── AuthenticationError        401/403
    │   ├── BadRequestError            400/404/422
    │   ├── RateLimitError             429 after every retry
    │   ├── ProviderUnavailableError   5xx, timeouts, dropped connections after every retry
    │   ├── ResponseFormatError        a reply that breaks the provider's own protocol
    │   └── ScriptExhaustedError       a ScriptedModel asked past its script
    ├── OutputValidationError          the final answer never matched `output_type`
    ├── RunInterrupted                 Ctrl-C inside a tool (ends the run as cancelled; never reaches callers)
    ├── ToolError                      raised in a tool: the message goes to the model
    │   └── ToolOutputError            a return value that cannot be rendered as text
    ├── ContextWindowExceeded          the next request cannot fit, even compacted
    ├── JournalError                   a durable run's journal cannot be used as asked
    │   ├── RunLeasedError             another process holds the run
    │   ├── LeaseLostError             this process lost the run to another
    │   └── DefinitionChangedError     the run's agents are not defined as when it started
    ├── StoreError (retinue.store)     the trace store cannot do what was asked
    │   ├── UnusableStoreError         the file is not a usable trace store
    │   └── InterruptedRunError        the process that asked for an approval has ended
    ├── SandboxError (retinue.sandbox) the sandbox cannot do what was asked
    │   ├── IsolationUnavailableError  no OS isolation on this machine, and why
    │   ├── SandboxStartError          the sandboxed interpreter did not come up
    │   ├── SandboxStateError          the sandbox is not running
    │   └── WorkspacePathError         a path outside the workspace or through a symlink
    └── MCPServerError (retinue.mcp)   an MCP server failed or broke its protocol
"""

from __future__ import annotations


class RetinueError(Exception):
    """Base class of every error raised by retinue."""


class ConfigurationError(RetinueError):
    """The agent, tool or model was set up in a way that cannot work."""


class ToolDefinitionError(ConfigurationError):
    """A Python function cannot be turned into a tool (for example a parameter without a type hint)."""


class MissingDependencyError(ConfigurationError):
    """An optional extra is needed for this feature; the message names the pip command."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the optional dependency '{module}'. Install it with: pip install 'retinue[{extra}]'"
        )
        self.extra = extra
        self.module = module


class UnknownModelError(ConfigurationError):
    """A model string did not name a provider retinue knows."""


class ModelError(RetinueError):
    """A model provider failed in a way retrying cannot fix."""

    def __init__(self, message: str, *, status: int | None = None, provider: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.provider = provider


class AuthenticationError(ModelError):
    """The provider rejected the API key (HTTP 401/403)."""


class BadRequestError(ModelError):
    """The provider rejected the request itself (HTTP 400/404/422)."""


class RateLimitError(ModelError):
    """The provider kept answering 429 after every retry."""


class ProviderUnavailableError(ModelError):
    """The provider kept failing (5xx, timeouts, dropped connections) after every retry."""


class ResponseFormatError(ModelError):
    """The provider answered with something that does not follow its own wire protocol."""


class ScriptExhaustedError(ModelError):
    """A ScriptedModel was asked for more responses than its script holds."""


class OutputValidationError(RetinueError):
    """The model's final answer did not match `output_type` after every allowed retry."""


class RunInterrupted(RetinueError):
    """A KeyboardInterrupt inside a tool, carried to the loop as an exception asyncio does not re-raise.

    asyncio lets a KeyboardInterrupt escape the event loop from whichever task raised it, past the run's own
    handling; this one ends the run (and the tree of runs above it) as cancelled instead.
    """


class ToolError(RetinueError):
    """Raise inside a tool to tell the model what went wrong and how to fix its call.

    The message goes to the model as the tool result, without a traceback.
    """


class ToolOutputError(ToolError):
    """A tool's return value cannot be rendered as text for the model (bytes that are not UTF-8, a raising __str__).

    Inside a run it becomes an error tool result, like any tool failure.
    """


class JournalError(RetinueError):
    """A run's journal cannot be used as asked: the run is unknown, was started differently, or the file is bad."""


class RunLeasedError(JournalError):
    """Another process holds the run (its lease has not expired): only one process may run it at a time."""

    def __init__(self, message: str, *, run_id: str, owner: str, expires_at: float) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.owner = owner
        self.expires_at = expires_at


class LeaseLostError(JournalError):
    """This process no longer holds the run: its lease expired and another process took the run over."""


class DefinitionChangedError(JournalError):
    """The agents resuming a durable run are not defined as when it started; `changes` says what differs."""

    def __init__(self, message: str, *, run_id: str, changes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.changes = changes


class ContextWindowExceeded(RetinueError):
    """The next request does not fit the model's context window (or the policy's token budget), even compacted."""

    def __init__(self, message: str, *, estimated_tokens: int, limit_tokens: int, model_id: str) -> None:
        super().__init__(message)
        self.estimated_tokens = estimated_tokens
        self.limit_tokens = limit_tokens
        self.model_id = model_id
