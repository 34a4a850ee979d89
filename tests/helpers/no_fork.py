"""Run a program whose every fork the kernel refuses with ENOMEM: `python no_fork.py ARGV...`.

A seccomp filter, installed here and kept across execve, answers the process-creating
system calls: fork, vfork and clone (unless CLONE_THREAD: threads still start) fail with
ENOMEM, the way a fork fails when the kernel's overcommit accounting refuses the copy of
the address space; clone3 fails with ENOSYS, so the C library falls back to clone. The
error comes from the kernel, not from patched Python. x86_64 only (the syscall numbers and
the architecture check are that ABI's).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
import sys

_AUDIT_ARCH_X86_64 = 0xC000003E
_NR_CLONE, _NR_FORK, _NR_VFORK, _NR_CLONE3 = 56, 57, 58, 435
_CLONE_THREAD = 0x00010000
_LD_W_ABS, _JEQ_K, _JSET_K, _RET_K = 0x20, 0x15, 0x45, 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2

SUPPORTED = sys.platform == "linux" and platform.machine() == "x86_64"

_PROGRAM = [  # (code, jump if true, jump if false, k); jumps count from the next instruction
    (_LD_W_ABS, 0, 0, 4),                 # 0: the architecture
    (_JEQ_K, 0, 7, _AUDIT_ARCH_X86_64),   # 1: another ABI: allow (9)
    (_LD_W_ABS, 0, 0, 0),                 # 2: the system call's number
    (_JEQ_K, 7, 0, _NR_CLONE3),           # 3: clone3: ENOSYS (11)
    (_JEQ_K, 5, 0, _NR_FORK),             # 4: fork: ENOMEM (10)
    (_JEQ_K, 4, 0, _NR_VFORK),            # 5: vfork: ENOMEM (10)
    (_JEQ_K, 0, 2, _NR_CLONE),            # 6: anything else: allow (9)
    (_LD_W_ABS, 0, 0, 16),                # 7: clone's flags (low word of args[0])
    (_JSET_K, 0, 1, _CLONE_THREAD),       # 8: a thread: allow (9); a process: ENOMEM (10)
    (_RET_K, 0, 0, _ALLOW),               # 9
    (_RET_K, 0, 0, _ERRNO | errno.ENOMEM),  # 10
    (_RET_K, 0, 0, _ERRNO | errno.ENOSYS),  # 11
]


def refuse_forks() -> None:
    """Install the filter on this process (and whatever it executes)."""
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in _PROGRAM)
    buffer = ctypes.create_string_buffer(code, len(code))
    program = struct.pack("=HxxxxxxQ", len(_PROGRAM), ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    fprog = ctypes.create_string_buffer(program, len(program))
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


if __name__ == "__main__":
    refuse_forks()
    os.execv(sys.argv[1], sys.argv[1:])
