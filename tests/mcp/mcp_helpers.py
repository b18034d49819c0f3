"""Helpers shared by the MCP tests (a module of its own: `conftest` is not unique across test folders)."""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def python_env() -> dict[str, str]:
    """Environment for a Python MCP server subprocess started by the tests: retinue importable from src/."""
    paths = [str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
