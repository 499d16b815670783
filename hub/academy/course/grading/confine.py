"""Last step before a student kernel's sandbox starts: shed everything of the grader, then exec.

Run as ``python -I -S confine.py [--cgroup PROCS_FILE]... -- COMMAND...`` (standard library only, no
site import, so it starts in milliseconds).  It

* moves itself into the submission's cgroup(s) before anything forks, so every process the student
  starts counts against that submission's process and memory limits, not against the account's;
* joins a fresh anonymous session keyring, so student code neither sees the grader's keys nor plants
  keys that outlive grading (``keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)``);
* closes every inherited file descriptor above stderr;
* execs ``COMMAND`` with an empty environment apart from ``PATH`` (bubblewrap then sets the kernel's
  own), so not even the sandbox's init process holds the grader's environment.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys

# keyctl(2) has no glibc wrapper; syscall numbers per architecture.
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "ppc64le": 271, "s390x": 280}
KEYCTL_JOIN_SESSION_KEYRING = 1
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def join_fresh_session_keyring() -> None:
    number = _SYS_KEYCTL.get(platform.machine())
    if number is None:
        raise OSError(f"keyctl syscall number unknown on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(number), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), ctypes.c_void_p(None)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl(JOIN_SESSION_KEYRING): {os.strerror(err)}")


def main(argv: list[str]) -> int:
    groups: list[str] = []
    while argv and argv[0] == "--cgroup":
        groups.append(argv[1])
        argv = argv[2:]
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: confine.py [--cgroup PROCS]... -- COMMAND...", file=sys.stderr)
        return 2
    command = argv[1:]
    for procs in groups:
        with open(procs, "w") as fh:
            fh.write(str(os.getpid()))
    join_fresh_session_keyring()
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.execvpe(command[0], command, {"PATH": SAFE_PATH})
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
