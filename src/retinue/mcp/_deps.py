"""The optional `mcp` SDK: found lazily, so `import retinue` never pays for it."""

from __future__ import annotations

import importlib.util

from ..errors import MissingDependencyError


def missing_mcp() -> MissingDependencyError:
    return MissingDependencyError("MCP support", "mcp", "mcp")


def require_mcp() -> None:
    """Fail early, where the server is described, rather than when the run first needs it."""
    try:
        found = importlib.util.find_spec("mcp") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise missing_mcp()
