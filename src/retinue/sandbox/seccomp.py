"""A seccomp filter that closes the kernel interfaces sandboxed code has no use for.

Above all, user namespaces: without this filter unprivileged code can still
`unshare -U` and become root of a namespace of its own, able to mount
filesystems and reach kernel code that is a frequent source of privilege
escalations. The filter also refuses keyrings, bpf, perf, userfaultfd,
io_uring, the mount API and ptrace, and kills any process that uses another
syscall ABI (32-bit `int 0x80` on x86-64), where the numbers below would not
apply.

Sockets are limited to the families ordinary code uses: unix, IPv4, IPv6,
and route netlink (the C library lists interfaces and addresses with it; in
the sandbox's own network namespace it sees only loopback). vsock, packet,
the other netlink protocols and the rest answer EAFNOSUPPORT, as if the
kernel lacked them.

Where no memory cgroup charges memory held outside every address space to
the sandbox, the filter also refuses the ways to hold it without a file
anyone can count: memfd_create, memfd_secret and SysV shmget.

It is a classic BPF program, the format bubblewrap's ``--seccomp FD`` and
``prctl(PR_SET_SECCOMP)`` load.
"""

from __future__ import annotations

import errno
import platform
import socket
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_AARCH64 = 0xC00000B7

_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_AT_LEAST = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JUMP_ANY_BIT = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K

_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000

# Offsets in struct seccomp_data; an argument's low half on a little-endian machine.
_NR_OFFSET = 0
_ARCH_OFFSET = 4
_FIRST_ARG_OFFSET = 16
_THIRD_ARG_OFFSET = 32

_X32_SYSCALL_BIT = 0x40000000
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME.
_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80

_REFUSED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "open_by_handle_at", "name_to_handle_at", "acct", "swapon", "swapoff", "reboot",
    "syslog", "quotactl", "lookup_dcookie",
    # A traced process stops instead of dying, and its parent (bubblewrap's
    # init, or the host itself) then reports a status that names no signal.
    "ptrace", "process_vm_readv", "process_vm_writev",
)  # fmt: skip
_UNCOUNTED_MEMORY = ("memfd_create", "memfd_secret", "shmget")
_NETLINK_ROUTE = 0
_ALLOWED_SOCKET_FAMILIES = (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6)

_SYSCALL_NUMBERS: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        _AUDIT_ARCH_X86_64,
        {
            "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
            "mount_setattr": 442, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "move_mount": 429, "open_tree": 428, "keyctl": 250, "add_key": 248, "request_key": 249,
            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246, "kexec_file_load": 320,
            "init_module": 175, "finit_module": 313, "delete_module": 176, "open_by_handle_at": 304,
            "name_to_handle_at": 303, "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169,
            "syslog": 103, "quotactl": 179, "lookup_dcookie": 212, "ptrace": 101, "process_vm_readv": 310,
            "process_vm_writev": 311, "memfd_create": 319, "memfd_secret": 447, "shmget": 29,
            "socket": 41, "socketpair": 53, "clone": 56, "clone3": 435,
        },
    ),
    "aarch64": (
        _AUDIT_ARCH_AARCH64,
        {
            "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
            "mount_setattr": 442, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "move_mount": 429, "open_tree": 428, "keyctl": 219, "add_key": 217, "request_key": 218,
            "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
            "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104, "kexec_file_load": 294,
            "init_module": 105, "finit_module": 273, "delete_module": 106, "open_by_handle_at": 265,
            "name_to_handle_at": 264, "acct": 89, "swapon": 224, "swapoff": 225, "reboot": 142,
            "syslog": 116, "quotactl": 60, "lookup_dcookie": 18, "ptrace": 117, "process_vm_readv": 270,
            "process_vm_writev": 271, "memfd_create": 279, "memfd_secret": 447, "shmget": 194,
            "socket": 198, "socketpair": 199, "clone": 220, "clone3": 435,
        },
    ),
}  # fmt: skip


def _instruction(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


def _socket_families(syscall: int) -> list[bytes]:
    """For ``syscall`` (socket or socketpair): allow the families code needs, refuse the rest; others fall through."""
    allow = _instruction(_RETURN, _ALLOW)
    unsupported = _instruction(_RETURN, _ERRNO | errno.EAFNOSUPPORT)
    checks = [_instruction(_LOAD_WORD, _FIRST_ARG_OFFSET)]
    for family in _ALLOWED_SOCKET_FAMILIES:
        checks += [_instruction(_JUMP_EQUAL, family, jump_false=1), allow]
    checks += [
        _instruction(_JUMP_EQUAL, socket.AF_NETLINK, jump_false=3),
        _instruction(_LOAD_WORD, _THIRD_ARG_OFFSET),
        _instruction(_JUMP_EQUAL, _NETLINK_ROUTE, jump_false=1),
        allow,
        unsupported,
    ]
    # Past the checks the accumulator holds an argument, not the syscall number: reload it.
    return [_instruction(_JUMP_EQUAL, syscall, jump_false=len(checks)), *checks, _instruction(_LOAD_WORD, _NR_OFFSET)]


def seccomp_program(machine: str | None = None, *, refuse_uncounted_memory: bool) -> bytes | None:
    """The filter for this machine's architecture, or None where it is not known.

    ``refuse_uncounted_memory`` refuses memfd_create, memfd_secret and shmget:
    for when no memory cgroup bounds the memory they hold.
    """
    known = _SYSCALL_NUMBERS.get(machine or platform.machine())
    if known is None:
        return None
    audit_arch, numbers = known
    refuse = _instruction(_RETURN, _ERRNO | errno.EPERM)
    program = [
        _instruction(_LOAD_WORD, _ARCH_OFFSET),
        _instruction(_JUMP_EQUAL, audit_arch, jump_true=1),
        _instruction(_RETURN, _KILL_PROCESS),
        _instruction(_LOAD_WORD, _NR_OFFSET),
        _instruction(_JUMP_AT_LEAST, _X32_SYSCALL_BIT, jump_false=1),
        refuse,
    ]
    refused = _REFUSED + (_UNCOUNTED_MEMORY if refuse_uncounted_memory else ())
    for name in refused:
        program += [_instruction(_JUMP_EQUAL, numbers[name], jump_false=1), refuse]
    program += _socket_families(numbers["socket"]) + _socket_families(numbers["socketpair"])
    # clone3 passes its flags in memory a filter cannot read: say it does not
    # exist, and the C library falls back to clone, whose flags it can.
    program += [
        _instruction(_JUMP_EQUAL, numbers["clone3"], jump_false=1),
        _instruction(_RETURN, _ERRNO | errno.ENOSYS),
        _instruction(_JUMP_EQUAL, numbers["clone"], jump_false=3),
        _instruction(_LOAD_WORD, _FIRST_ARG_OFFSET),
        _instruction(_JUMP_ANY_BIT, _NAMESPACE_FLAGS, jump_false=1),
        refuse,
        _instruction(_RETURN, _ALLOW),
    ]
    return b"".join(program)
