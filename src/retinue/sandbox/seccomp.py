"""A seccomp filter that closes the kernel interfaces sandboxed code has no use for.

Above all, user namespaces: without this filter unprivileged code can still
`unshare -U` and become root of a namespace of its own, able to mount
filesystems and reach kernel code that is a frequent source of privilege
escalations. The filter also refuses keyrings, bpf, perf, userfaultfd,
io_uring and the mount API, and kills any process that uses another syscall
ABI (32-bit `int 0x80` on x86-64), where the numbers below would not apply.

It is a classic BPF program, the format bubblewrap's ``--seccomp FD`` loads.
"""

from __future__ import annotations

import errno
import platform
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

# Offsets in struct seccomp_data; args[0]'s low half on a little-endian machine.
_NR_OFFSET = 0
_ARCH_OFFSET = 4
_FIRST_ARG_OFFSET = 16

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
)  # fmt: skip

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
            "syslog": 103, "quotactl": 179, "lookup_dcookie": 212, "clone": 56, "clone3": 435,
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
            "syslog": 116, "quotactl": 60, "lookup_dcookie": 18, "clone": 220, "clone3": 435,
        },
    ),
}  # fmt: skip


def _instruction(code: int, k: int, jump_true: int = 0, jump_false: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where it is not known."""
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
    for name in _REFUSED:
        program += [_instruction(_JUMP_EQUAL, numbers[name], jump_false=1), refuse]
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
