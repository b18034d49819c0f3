"""Report files the UI lists (eval reports, improvement runs): read from one directory, never trusted.

Any process may write into `<home>/evals/` or `<home>/improve/`, and a file
may be half-written, hand-edited or from another version. A file that cannot
be read is listed as unreadable with the reason, so the page can say so; it
never fails a request. A file is named by its id, the file name without
`.json`, and only names found in the directory are ever opened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger("retinue.ui")

T = TypeVar("T")

MAX_FILE_BYTES = 20_000_000
"""A larger file is listed as unreadable rather than parsed on every page load."""
MAX_FILES = 500
"""Only the newest files are listed; older ones stay on disk, unlisted."""


@dataclass(frozen=True, slots=True)
class SavedFile(Generic[T]):
    """One file of the directory: what `load` made of it, or why it could not be read."""

    id: str
    path: Path
    modified_at: float
    value: T | None
    problem: str | None


class SavedFiles(Generic[T]):
    """The `*.json` files of `directory`, newest first, each read with `load` once per change of the file.

    `load` turns a path into a value and raises for a file that is not one; whatever it raises becomes the
    file's `problem`. Files whose names end with one of `exclude` are other things kept alongside: not listed.
    """

    def __init__(self, directory: Path, load: Callable[[Path], T], *, exclude: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self._load = load
        self._exclude = exclude
        self._cache: dict[Path, tuple[tuple[int, int], SavedFile[T]]] = {}
        self._lock = threading.Lock()  # requests read in worker threads, and share the cache

    def files(self) -> list[SavedFile[T]]:
        with self._lock:
            return self._files()

    def get(self, file_id: str) -> SavedFile[T] | None:
        """The file named `file_id`, if the directory lists it (so no id reaches outside the directory)."""
        return next((file for file in self.files() if file.id == file_id), None)

    def _files(self) -> list[SavedFile[T]]:
        try:
            paths = [
                path
                for path in self.directory.glob("*.json")
                if path.is_file() and not path.name.endswith(self._exclude)
            ]
        except OSError:
            return []  # no directory yet: nothing saved
        stamped = []
        for path in paths:
            try:
                stamped.append((path.stat(), path))
            except OSError:
                continue  # removed while we listed
        stamped.sort(key=lambda item: (item[0].st_mtime_ns, item[1].name), reverse=True)
        files = [self._read(path, (stat.st_mtime_ns, stat.st_size)) for stat, path in stamped[:MAX_FILES]]
        listed = {file.path for file in files}
        for path in [path for path in self._cache if path not in listed]:
            del self._cache[path]
        return files

    def _read(self, path: Path, stamp: tuple[int, int]) -> SavedFile[T]:
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        modified_at = stamp[0] / 1e9
        value: T | None = None
        problem: str | None = None
        if stamp[1] > MAX_FILE_BYTES:
            problem = f"the file is {stamp[1]:,} bytes, more than the UI reads ({MAX_FILE_BYTES:,})"
        else:
            try:
                value = self._load(path)
            except Exception as exc:  # a file of any shape must list as unreadable, never fail the page
                log.debug("retinue UI cannot read %s", path, exc_info=True)
                problem = _describe(exc, path)
        file = SavedFile(path.stem, path, modified_at, value, problem)
        self._cache[path] = (stamp, file)
        return file


def _describe(exc: Exception, path: Path) -> str:
    text = str(exc).replace(str(path), path.name) or type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({text})"
    if isinstance(exc, ValueError | OSError):
        return text
    return f"unexpected content ({type(exc).__name__}: {text})"
