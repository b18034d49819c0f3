"""The /etc the sandbox sees: a copy of a few harmless host files plus written ones.

An allowlist, not a denylist: a secret added to the host's /etc later stays
hidden. It is one directory bound once, because every bind mount costs
bubblewrap a round of mount syscalls at each start; and it is built once per
host process, because it does not change.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
from pathlib import Path

from .identity import SANDBOX_GID, SANDBOX_UID
from .state_dirs import new_state_dir

_COPIED_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "localtime",
    "timezone",
    "mime.types",
    "nsswitch.conf",
    "protocols",
    "services",
    "os-release",
    "debian_version",
)
# Directories of small files or symlinks (alternatives: /usr/bin/awk and
# friends point through it on Debian).
_COPIED_DIRECTORIES = ("ld.so.conf.d", "alternatives")


def _written_files() -> dict[str, str]:
    return {
        "passwd": (
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{SANDBOX_UID}:{SANDBOX_GID}:sandbox:/tmp:/bin/sh\n"
        ),
        "group": f"root:x:0:\nsandbox:x:{SANDBOX_GID}:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
    }


@functools.cache
def sandbox_etc_directory() -> Path:
    """Build (once) and return the directory bound read-only at /etc in every sandbox."""
    etc = new_state_dir("etc")
    atexit.register(shutil.rmtree, etc, ignore_errors=True)
    etc.chmod(0o755)
    host_etc = Path("/etc")
    for name in _COPIED_FILES:
        source = host_etc / name
        if source.is_file():
            # Content, not the link: /etc/localtime and os-release are symlinks on most systems.
            shutil.copyfile(source, etc / name)
    for name in _COPIED_DIRECTORIES:
        source = host_etc / name
        if source.is_dir():
            shutil.copytree(source, etc / name, symlinks=True)
    for name, content in _written_files().items():
        (etc / name).write_text(content)
    for directory, _, files in os.walk(etc):
        os.chmod(directory, 0o755)
        for file in files:
            path = os.path.join(directory, file)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    return etc
