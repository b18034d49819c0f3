"""The bubblewrap command line that isolates the sandboxed interpreter.

What the sandbox sees: the system directories and the Python install,
read-only; an /etc of a handful of harmless files (see sandbox_etc); its
workspace, read-write, at /workspace; the host-API module in
/run/retinue/host (on PYTHONPATH) and its socket at /run/retinue/api.sock,
both read-only (see host_socket); a private /tmp and /dev/shm of bounded
size (when the host is root, two directories of one tmpfs it mounted with a
size and an inode limit, which bubblewrap's own tmpfs mounts cannot have);
its own /proc, PID, network (loopback only), IPC and UTS namespaces; a
seccomp filter (see seccomp). /root, /home, the rest of /etc and
everything else on the host simply do not exist inside.

When the host is root, bubblewrap runs without a user namespace and keeps
only CAP_SETUID/CAP_SETGID, which the session script uses to switch to an
unprivileged uid before it reads any request (so RLIMIT_NPROC applies:
the kernel does not enforce it for uid 0). Otherwise bubblewrap maps the
caller to that uid inside a user namespace.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .identity import SANDBOX_GID, SANDBOX_UID
from .limits import SandboxLimits

WORKSPACE_INSIDE = "/workspace"
SESSION_SCRIPT_INSIDE = "/run/retinue/session.py"
# Outside the workspace and read-only, so sandboxed code can neither delete the
# socket nor put a listener of its own, or another module, in its place.
HOST_API_INSIDE = "/run/retinue/host"
HOST_API_SOCKET_INSIDE = "/run/retinue/api.sock"

SYSTEM_DIRECTORIES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SHM_CAP_BYTES = 64 * 1024 * 1024


def _covered(path: Path, mounted: Iterable[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in mounted)


def bubblewrap_command(
    bwrap: str,
    *,
    python: str,
    python_roots: Sequence[Path],
    session_script: Path,
    host_api_dir: Path,
    host_api_socket: Path,
    workspace: Path,
    etc_dir: Path,
    limits: SandboxLimits,
    host_is_root: bool,
    seccomp_fd: int | None,
    scratch: Path | None = None,
    info_fd: int | None = None,
) -> list[str]:
    """The argv that starts ``python -I -S session.py`` in the sandbox; the config JSON is appended by the caller.

    ``scratch`` is a directory holding ``tmp`` and ``shm``, bound at /tmp and
    /dev/shm; without it bubblewrap mounts a tmpfs of its own at each.
    ``info_fd`` is where bubblewrap reports its child's pid (see ``read_child_pid``).
    """
    command = [
        bwrap,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        # A new session: the sandbox cannot push keystrokes into a host terminal (TIOCSTI).
        "--new-session",
    ]
    if host_is_root:
        command += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        command += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)]

    mounted: list[Path] = []
    for name in SYSTEM_DIRECTORIES:
        path = Path(name)
        if path.is_symlink():
            # Merged-/usr systems: /bin -> usr/bin and so on; recreate the link.
            command += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            command += ["--ro-bind", name, name]
            mounted.append(path)

    command += ["--ro-bind", str(etc_dir), "/etc"]

    command += [
        # Made explicitly: parents bubblewrap creates for a mount point are
        # root-only, and the sandbox user must reach the host-API directory.
        "--perms",
        "0755",
        "--dir",
        "/run",
        "--perms",
        "0755",
        "--dir",
        "/run/retinue",
        "--ro-bind",
        str(session_script),
        SESSION_SCRIPT_INSIDE,
        "--ro-bind",
        str(host_api_dir),
        HOST_API_INSIDE,
        # The socket itself, not its directory: a mount point cannot be
        # unlinked or renamed, and connecting needs no write access to a mount.
        "--ro-bind",
        str(host_api_socket),
        HOST_API_SOCKET_INSIDE,
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    if scratch is not None:
        command += ["--bind", str(scratch / "tmp"), "/tmp", "--bind", str(scratch / "shm"), "/dev/shm"]
    else:
        command += [
            "--size",
            str(limits.disk_bytes),
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
            "--size",
            str(min(limits.disk_bytes, _SHM_CAP_BYTES)),
            "--perms",
            "1777",
            "--tmpfs",
            "/dev/shm",
        ]
    # After the tmpfs mounts, so an interpreter installed under /tmp is not hidden by them.
    created: set[Path] = {Path("/tmp"), Path("/dev"), Path("/dev/shm")}
    for root in python_roots:
        if _covered(root, mounted):
            continue
        # Parents such as /root appear as empty, unlistable directories: the
        # interpreter can pass through them, the code cannot look inside.
        for parent in reversed(root.parents):
            if parent == Path("/") or parent in created or _covered(parent, mounted):
                continue
            command += ["--perms", "0711", "--dir", str(parent)]
            created.add(parent)
        command += ["--ro-bind", str(root), str(root)]
        mounted.append(root)

    command += [
        "--bind",
        str(workspace),
        WORKSPACE_INSIDE,
        "--remount-ro",
        "/",
        "--chdir",
        WORKSPACE_INSIDE,
        "--clearenv",
    ]
    environment = sandbox_environment(home="/tmp", python_bin=os.path.dirname(python), python_path=HOST_API_INSIDE)
    for variable, value in environment.items():
        command += ["--setenv", variable, value]
    if seccomp_fd is not None:
        command += ["--seccomp", str(seccomp_fd)]
    if info_fd is not None:
        command += ["--info-fd", str(info_fd)]
    command += ["--", python, "-I", "-S", SESSION_SCRIPT_INSIDE]
    return command


def sandbox_environment(
    home: str, python_bin: str, python_path: str, path: str = "/usr/local/bin:/usr/bin:/bin"
) -> dict[str, str]:
    """Environment of the sandboxed process: nothing inherited, so no host secrets in it.

    The host interpreter's bin directory comes first so ``python3`` in a
    shell command is the interpreter that has the host's packages;
    ``python_path`` holds the host-API module, so every Python started in
    the sandbox can import it (the session itself runs with -I and is told
    the directory instead).
    """
    # Numeric libraries size thread pools (and per-thread buffers, which
    # count against the memory limit) by the machine's cores otherwise.
    threads = str(min(os.cpu_count() or 1, 4))
    return {
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "PATH": f"{python_bin}:{path}",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "USER": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": python_path,
        "MPLCONFIGDIR": f"{home}/.matplotlib",
    }


def read_child_pid(info_fd: int) -> int:
    """The host pid of the namespace's init, as bubblewrap reports it on ``--info-fd``; blocking until it does.

    The sandboxed command is that init's only child. Raises OSError when
    bubblewrap ends without reporting (it failed to set up the sandbox).
    """
    # One JSON object, written at once; not read to the end of the pipe,
    # whose write end the host holds open until the start is over.
    report = b""
    pid = None
    while chunk := os.read(info_fd, 4096):
        report += chunk
        try:
            pid = json.loads(report)["child-pid"]
            break
        except (ValueError, KeyError, TypeError):
            continue
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise OSError(f"bubblewrap reported no child pid (it said {report[:200]!r})")
    return pid
