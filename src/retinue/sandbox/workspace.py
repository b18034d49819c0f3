"""The host directory a sandbox may write to, and safe host-side access to it.

The sandboxed code controls what is inside the workspace, so the host never
follows a symlink in it: every path is opened component by component with
O_NOFOLLOW relative to the workspace root, and only regular files are read.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import tmpfs
from .errors import SandboxError, WorkspacePathError
from .state_dirs import new_state_dir

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK so a FIFO or device planted by the sandbox cannot hang the host before fstat rejects it.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_COPY_CHUNK_BYTES = 1 << 20
# Copies on the host never carry the sandbox's mode bits: no setuid, setgid or sticky, nothing executable.
_COPIED_FILE_MODE = 0o644
_COPIED_DIRECTORY_MODE = 0o755


@dataclass(frozen=True)
class FileInfo:
    """A regular file in the workspace: its path relative to the workspace, and its size in bytes."""

    path: str
    size: int


@dataclass(frozen=True)
class LeftBehind:
    """A workspace file ``copy_out`` did not copy (or copied only in part), and why."""

    path: str
    size: int
    reason: str


@dataclass(frozen=True)
class CopyReport:
    """What ``copy_out`` copied to the host and what it left behind."""

    copied: list[FileInfo]
    left_behind: list[LeftBehind]

    @property
    def bytes_copied(self) -> int:
        return sum(info.size for info in self.copied)


def _cleanup(state_dir: str, mounted: Path | None) -> None:
    if mounted is not None:
        tmpfs.unmount(mounted)
    shutil.rmtree(state_dir, ignore_errors=True)


class Workspace:
    """A workspace directory plus the sandbox's private state directory beside it.

    ``requested`` None means a fresh directory, removed on ``cleanup``; when the
    process may mount, it is a tmpfs of ``disk_bytes`` so the kernel enforces
    the disk quota (``quota_enforced``). ``owner`` is the uid:gid the sandboxed
    code runs as when the host is root; the workspace is handed to it.
    """

    def __init__(
        self, requested: Path | None, *, disk_bytes: int, owner: tuple[int, int] | None, inside: str | None
    ) -> None:
        self._owner = owner
        self.state_dir = new_state_dir("state")
        mounted: Path | None = None
        try:
            if requested is None:
                root = self.state_dir / "workspace"
                root.mkdir()
                uid, gid = owner or (os.getuid(), os.getgid())
                if tmpfs.mount_tmpfs(root, disk_bytes, uid, gid):
                    mounted = root
            else:
                root = Path(requested).expanduser().resolve()
                root.mkdir(parents=True, exist_ok=True)
                if not root.is_dir():
                    raise SandboxError(f"workspace {requested} is not a directory")
        except BaseException:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            raise
        self.root = root
        # How the sandboxed code sees the workspace: its mount point, or the host path itself.
        self.inside = inside if inside is not None else str(root)
        self.quota_enforced = mounted is not None
        self._finalizer = weakref.finalize(self, _cleanup, str(self.state_dir), mounted)
        if owner is not None and mounted is None:
            self._chown_tree(owner)
        self._baseline: dict[str, tuple[int, int]] = {}

    def cleanup(self) -> None:
        """Remove the state directory (and with it a temporary workspace); a caller's workspace stays."""
        self._finalizer()

    # ----- paths -----------------------------------------------------------

    def relative_parts(self, path: str | os.PathLike[str]) -> list[str]:
        """The workspace-relative components of ``path``, or WorkspacePathError if it leaves the workspace."""
        text = os.fspath(path)
        allowed = (
            f"paths must stay inside the workspace: give one relative to it (like 'out/result.csv') "
            f"or an absolute one under {self.inside}"
        )
        if not isinstance(text, str) or not text or "\x00" in text:
            raise WorkspacePathError(f"invalid path {text!r}: {allowed}")
        candidate = PurePosixPath(text)
        if candidate.is_absolute():
            for base in (self.inside, str(self.root)):
                if candidate == PurePosixPath(base) or candidate.is_relative_to(base):
                    candidate = candidate.relative_to(base)
                    break
            else:
                raise WorkspacePathError(f"{text!r} is outside the workspace; {allowed}")
        normalized = posixpath.normpath(str(candidate))
        if normalized == "." or normalized == ".." or normalized.startswith("../"):
            raise WorkspacePathError(f"{text!r} does not name a file inside the workspace; {allowed}")
        return normalized.split("/")

    def _open_parent(self, parts: list[str], *, create: bool, shown: str) -> int:
        directory = os.open(self.root, _DIRECTORY_FLAGS)
        try:
            for part in parts[:-1]:
                try:
                    child = os.open(part, _DIRECTORY_FLAGS, dir_fd=directory)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=directory)
                    if self._owner is not None:
                        os.chown(part, *self._owner, dir_fd=directory, follow_symlinks=False)
                    child = os.open(part, _DIRECTORY_FLAGS, dir_fd=directory)
                os.close(directory)
                directory = child
        except OSError as exc:
            os.close(directory)
            raise self._path_error(exc, shown) from None
        return directory

    @staticmethod
    def _path_error(exc: OSError, shown: str) -> Exception:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            return WorkspacePathError(
                f"{shown!r} goes through a symlink or a non-directory; the host does not follow symlinks "
                "in the workspace, so use the real path of a regular file"
            )
        if isinstance(exc, FileNotFoundError):
            return FileNotFoundError(errno.ENOENT, f"no such file in the workspace: {shown!r}")
        return exc

    # ----- file access -----------------------------------------------------

    def read_bytes(self, path: str | os.PathLike[str]) -> bytes:
        parts = self.relative_parts(path)
        shown = "/".join(parts)
        directory = self._open_parent(parts, create=False, shown=shown)
        try:
            fd = os.open(parts[-1], _READ_FLAGS, dir_fd=directory)
        except OSError as exc:
            raise self._path_error(exc, shown) from None
        finally:
            os.close(directory)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise WorkspacePathError(f"{shown!r} is not a regular file")
            os.set_blocking(fd, True)
            return file.read()

    def write_bytes(self, path: str | os.PathLike[str], data: bytes) -> str:
        parts = self.relative_parts(path)
        shown = "/".join(parts)
        directory = self._open_parent(parts, create=True, shown=shown)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(parts[-1], flags, 0o644, dir_fd=directory)
        except OSError as exc:
            raise self._path_error(exc, shown) from None
        finally:
            os.close(directory)
        with os.fdopen(fd, "wb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise WorkspacePathError(f"{shown!r} exists and is not a regular file")
            os.set_blocking(fd, True)
            os.ftruncate(fd, 0)
            if self._owner is not None:
                os.fchown(fd, *self._owner)
            file.write(data)
        return shown

    def stage(self, files: Mapping[str, Path | str | bytes]) -> None:
        """Copy host files (a Path or path string) or literal bytes into the workspace."""
        for name, source in files.items():
            if isinstance(source, (bytes, bytearray)):
                self.write_bytes(name, bytes(source))
                continue
            host_path = Path(source)
            if host_path.is_dir():
                for file in sorted(host_path.rglob("*")):
                    if file.is_file() and not file.is_symlink():
                        self.write_bytes(
                            posixpath.join(name, file.relative_to(host_path).as_posix()), file.read_bytes()
                        )
            elif host_path.is_file():
                self.write_bytes(name, host_path.read_bytes())
            else:
                raise SandboxError(
                    f"files[{name!r}]: {source!s} is not a file or directory on the host "
                    "(pass bytes for literal content)"
                )

    # ----- listing ---------------------------------------------------------

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        """Every regular file as (relative path, lstat); symlinks are neither followed nor listed."""
        pending: list[tuple[str, int]] = [("", os.open(self.root, _DIRECTORY_FLAGS))]
        while pending:
            prefix, directory = pending.pop()
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        relative = f"{prefix}{entry.name}"
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        if stat.S_ISDIR(info.st_mode):
                            try:
                                pending.append(
                                    (relative + "/", os.open(entry.name, _DIRECTORY_FLAGS, dir_fd=directory))
                                )
                            except OSError:
                                continue
                        elif stat.S_ISREG(info.st_mode):
                            yield relative, info
            finally:
                os.close(directory)

    def list_files(self) -> list[FileInfo]:
        return sorted((FileInfo(path, info.st_size) for path, info in self._walk()), key=lambda f: f.path)

    def usage_bytes(self) -> int:
        return sum(info.st_blocks * 512 for _, info in self._walk())

    def mark_baseline(self) -> None:
        self._baseline = {path: (info.st_size, info.st_mtime_ns) for path, info in self._walk()}

    def artifacts(self) -> list[FileInfo]:
        """Files created or changed since ``mark_baseline``."""
        changed = [
            FileInfo(path, info.st_size)
            for path, info in self._walk()
            if self._baseline.get(path) != (info.st_size, info.st_mtime_ns)
        ]
        return sorted(changed, key=lambda f: f.path)

    def copy_out(self, destination: Path, *, max_files: int, max_bytes: int) -> CopyReport:
        """Copy the artifacts (see ``artifacts``) to ``destination`` on the host, within the caps.

        Meant for after every sandboxed process is dead, but safe even if one
        is not: each file is opened from the workspace root one O_NOFOLLOW
        component at a time and must be a regular file, so a symlink or a
        directory swapped for one never leads outside the workspace. Bytes are
        counted at apparent size (a sparse file costs what it claims), and the
        read stops at the byte cap even if the file grows meanwhile. Copies
        get fixed modes and the host's ownership. Blocking: call it off the
        event loop.
        """
        copied: list[FileInfo] = []
        left: list[LeftBehind] = []
        budget = max_bytes
        for info in self.artifacts():
            if len(copied) >= max_files:
                left.append(LeftBehind(info.path, info.size, f"over the cap of {max_files} files"))
                continue
            parts = info.path.split("/")
            try:
                directory = self._open_parent(parts, create=False, shown=info.path)
            except (OSError, WorkspacePathError) as exc:
                left.append(LeftBehind(info.path, info.size, f"could not be opened: {exc}"))
                continue
            try:
                source = os.open(parts[-1], _READ_FLAGS, dir_fd=directory)
            except OSError as exc:
                reason = f"could not be opened: {self._path_error(exc, info.path)}"
                left.append(LeftBehind(info.path, info.size, reason))
                continue
            finally:
                os.close(directory)
            try:
                opened = os.fstat(source)
                if not stat.S_ISREG(opened.st_mode):
                    left.append(LeftBehind(info.path, info.size, "not a regular file"))
                    continue
                if opened.st_size > budget:
                    left.append(
                        LeftBehind(info.path, opened.st_size, f"would pass the cap of {max_bytes} bytes in all")
                    )
                    continue
                os.set_blocking(source, True)
                try:
                    written = _write_host_copy(source, destination, parts, opened.st_size)
                except OSError as exc:
                    left.append(LeftBehind(info.path, opened.st_size, f"could not be copied: {exc}"))
                    continue
            finally:
                os.close(source)
            budget -= written
            copied.append(FileInfo(info.path, written))
        return CopyReport(copied, left)

    def _chown_tree(self, owner: tuple[int, int]) -> None:
        # Runs before any sandboxed code, so nothing races it; symlinks left
        # by an earlier sandbox are changed themselves, never followed.
        for directory, subdirectories, files in os.walk(self.root):
            os.chown(directory, *owner, follow_symlinks=False)
            for name in subdirectories + files:
                os.chown(os.path.join(directory, name), *owner, follow_symlinks=False)


def _write_host_copy(source: int, destination: Path, parts: list[str], limit: int) -> int:
    """Stream at most ``limit`` bytes of ``source`` to ``destination``/``parts``; the bytes written."""
    os.makedirs(destination, mode=_COPIED_DIRECTORY_MODE, exist_ok=True)
    directory = os.open(destination, _DIRECTORY_FLAGS)
    try:
        # Names come from the sandbox, so the host side does not follow symlinks either.
        for part in parts[:-1]:
            try:
                os.mkdir(part, _COPIED_DIRECTORY_MODE, dir_fd=directory)
                # mkdir's mode passes through the umask; the copy's must not depend on it.
                os.chmod(part, _COPIED_DIRECTORY_MODE, dir_fd=directory, follow_symlinks=False)
            except FileExistsError:
                pass
            child = os.open(part, _DIRECTORY_FLAGS, dir_fd=directory)
            os.close(directory)
            directory = child
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        target = os.open(parts[-1], flags, _COPIED_FILE_MODE, dir_fd=directory)
    finally:
        os.close(directory)
    with os.fdopen(target, "wb") as output:
        # An existing file keeps its old mode through O_CREAT, and a new one gets the umask's.
        os.fchmod(target, _COPIED_FILE_MODE)
        written = 0
        while written < limit:
            chunk = os.read(source, min(_COPY_CHUNK_BYTES, limit - written))
            if not chunk:
                break
            output.write(chunk)
            written += len(chunk)
    return written
