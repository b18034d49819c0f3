"""Who sandboxed code runs as: an unprivileged uid and gid (``nobody`` on most systems).

It must not be 0: the kernel does not enforce RLIMIT_NPROC for root.
"""

SANDBOX_UID = 65534
SANDBOX_GID = 65534
