"""Where large tool outputs and dropped turns go, so the model can read them back page by page.

Each run writes to a workspace directory: a temporary one per run (deleted
when the run's state is released), or one the user names (kept, so handles in
a saved conversation stay readable later). A stored text is named by a handle
such as `out_1a2b3c4d_3` (kind, run, number): short for the model to copy, and
unique across the runs sharing a workspace.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

READ_TOOL_NAME = "read_tool_output"

_HANDLE = re.compile(r"^(out|ctx)_[0-9a-f]{8}_\d+$")
_HANDLE_IN_PREVIEW = re.compile(r"read_tool_output\(handle='((?:out|ctx)_[0-9a-f]{8}_\d+)'")


class OutputStore:
    """Texts saved by one run, under handles, in a directory."""

    def __init__(self, directory: Path, run_id: str, *, temporary: tempfile.TemporaryDirectory[str] | None = None):
        self.directory = directory
        self._run_tag = run_id[:8].lower().ljust(8, "0")
        self._count = 0
        # Holding the TemporaryDirectory keeps it alive exactly as long as the store.
        self._temporary = temporary

    @classmethod
    def open(cls, workspace: str | Path | None, run_id: str) -> OutputStore:
        if workspace is None:
            temporary = tempfile.TemporaryDirectory(prefix=f"retinue-{run_id[:8]}-")
            return cls(Path(temporary.name), run_id, temporary=temporary)
        directory = Path(workspace)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, run_id)

    def new_handle(self, kind: str) -> str:
        self._count += 1
        return f"{kind}_{self._run_tag}_{self._count}"

    def write(self, handle: str, text: str) -> None:
        self._path(handle).write_text(text, encoding="utf-8")

    def read(self, handle: str) -> str | None:
        """The text stored under `handle`, or None if this workspace has no such text."""
        if not _HANDLE.match(handle):
            return None
        path = self._path(handle)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def _path(self, handle: str) -> Path:
        return self.directory / f"{handle}.txt"


def handle_in_preview(text: str) -> str | None:
    """The handle a preview or placeholder points to, if `text` is one."""
    found = _HANDLE_IN_PREVIEW.search(text)
    return found.group(1) if found else None


def preview(text: str, handle: str, *, head_chars: int, page_chars: int) -> str:
    """The head of a stored output and a line saying how big it is and how to read the rest."""
    head = text[:head_chars]
    # Ending on a line break keeps the last line shown whole when there is one nearby.
    newline = head.rfind("\n")
    if newline > head_chars // 2:
        head = head[:newline]
    pages = page_count(text, page_chars)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return (
        f"{head}\n[Output truncated to keep the context small: showing {len(head):,} of {len(text):,} characters "
        f"({lines:,} lines). The full output is stored; read it with read_tool_output(handle='{handle}', page=1) "
        f"(pages 1-{pages} of {page_chars:,} characters).]"
    )


def page_count(text: str, page_chars: int) -> int:
    return max(1, math.ceil(len(text) / page_chars))


def page(text: str, handle: str, number: int, page_chars: int) -> str:
    """Page `number` (from 1) of a stored text, with a header saying where it is in the whole."""
    pages = page_count(text, page_chars)
    start = (number - 1) * page_chars
    end = min(start + page_chars, len(text))
    header = f"[{handle}, page {number} of {pages}, characters {start + 1:,}-{end:,} of {len(text):,}]"
    footer = (
        f"\n[Next: read_tool_output(handle='{handle}', page={number + 1})]" if number < pages else "\n[End of output]"
    )
    return f"{header}\n{text[start:end]}{footer}"
