"""Where the activities of a Temporal run keep what they read by reference: a content-addressed blob store.

A model activity is sent references to the conversation, not the conversation: the blobs behind them are
written here by the activities that first saw them, and read back by any worker that serves the run (and
by the client, for a finished run's messages). So every worker and client of a task queue must share one
store. Keys are SHA-256 digests of the content, so writing a blob twice (an activity retried on another
worker) changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


def digest_of(data: bytes) -> str:
    """The key of `data` in a blob store."""
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    """A key-value store every worker and client of a task queue can reach (a shared directory, S3, ...).

    Keys are content digests (`digest_of`), so `put` may be repeated, and a blob never changes once written.
    Payloads are exact (the conversation, not redacted): keep the store as private as a journal.
    """

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None:
        """The blob under `key`, or None if there is none."""
        ...


class DirectoryBlobStore:
    """Blobs as files in a directory (readable by its owner only), one file per blob.

    For one machine, or a directory every worker mounts. Writes go to a temporary file renamed into place,
    so a reader never sees half a blob and a worker killed mid-write leaves nothing behind under the key.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"{key!r} is not a blob key (a hex SHA-256 digest)")
        return self.path / key[:2] / key[2:]

    async def put(self, key: str, data: bytes) -> None:
        # Small local files: writing inline costs less than handing the write to a thread.
        file = self._file(key)
        if file.exists():
            return
        file.parent.mkdir(mode=0o700, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=file.parent, prefix=".writing-")  # mode 0600
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.write(data)
            os.replace(temporary, file)
        except BaseException:
            os.unlink(temporary)
            raise

    async def get(self, key: str) -> bytes | None:
        try:
            return self._file(key).read_bytes()
        except FileNotFoundError:
            return None

    def __repr__(self) -> str:
        return f"DirectoryBlobStore({str(self.path)!r})"
