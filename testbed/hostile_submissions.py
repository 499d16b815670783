"""Hostile submissions to the tiny course, each graded next to an honest one, as a hostile student would write them.

tests/course/test_grading_isolation.py checks that each stays within its own limits and sees nothing of the
grader; benchmarks/autograde.py times the same batch. ``CASES`` maps student to answers, interleaved so each
hostile submission is graded next to an honest one; ``HONEST`` names the honest ones; ``SCRATCH``, ``MEMORY``
and ``PROCS`` are the sandbox limits the batch is graded under.
"""
from __future__ import annotations

from testbed import tiny_course

GOOD = tiny_course.SOLUTIONS
SQUARES, MEAN = GOOD["squares"], GOOD["mean"]
SCRATCH, MEMORY, PROCS = 32 * 1024**2, 1024 * 1024**2, 64

KEY_SNOOP = f'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
L = ctypes.c_long
for ring in (-3, -4, -5):  # session, user, user-session keyrings
    kid = libc.syscall(L(250), L(10), L(ring), b"user", b"academy-grader-secret", L(0))
    print("KEYSEARCH", ring, kid)
    if kid > 0:
        buf = ctypes.create_string_buffer(256)
        n = libc.syscall(L(250), L(11), L(kid), buf, L(256))
        print("KEYDATA", buf.raw[:max(n, 0)])
    libc.syscall(L(248), b"user", b"planted-by-student", b"x", L(1), L(ring))
print(open("/proc/keys").read())
{SQUARES}
'''

ENV_SNOOP = f'''
import os
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    try:
        print("ENV", pid, open(f"/proc/{{pid}}/environ", "rb").read())
    except OSError as exc:
        print("ENVERR", pid, exc)
print("OSENV", dict(os.environ))
for fd in range(3, 256):
    try:
        print("FD", fd, os.readlink(f"/proc/self/fd/{{fd}}"))
    except OSError:
        pass
{SQUARES}
'''

FORK_BOMB = f'''
import os, time
kids = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        kids += 1
except OSError as exc:
    print("FORK REFUSED after", kids, exc)
time.sleep(6)  # hold every process while the honest neighbour is graded
{SQUARES}
'''

MEMORY_CHILDREN = f'''
import os, time
pids = []
for _ in range(10):  # each well under the per-process limit, together over the submission's
    pid = os.fork()
    if pid == 0:
        try:
            hog = b"x" * (120 * 1024**2)
            time.sleep(30)
        finally:
            os._exit(0)
    pids.append(pid)
time.sleep(6)
alive = sum(1 for p in pids if os.waitpid(p, os.WNOHANG) == (0, 0))
print("CHILDREN ALIVE", alive)
{SQUARES}
'''

SCRATCH_FILL = f'''
{SQUARES}
import os
written = {{}}
for folder in ("/tmp", "/dev/shm", "/submission"):
    n = 0
    try:
        with open(os.path.join(folder, "fill.bin"), "wb") as fh:
            while n < 4 * 1024**3:
                fh.write(b"y" * 1024**2)
                fh.flush()
                n += 1024**2
    except OSError as exc:
        last = exc
    written[folder] = n
print("WRITTEN", written)
raise last
'''

ERROR_FLOOD = f'''
ip = get_ipython()
for i in range(150):
    try:
        raise ValueError("E" * 5000)
    except ValueError:
        ip.showtraceback()
{SQUARES}
'''

# Answer functions that read the running (hidden) test's source and print it disguised.
LEAK = '''
import inspect, sys
def _leak():
    for frame in inspect.stack():
        print("\\u200b".join(frame.frame.f_globals.get("_ih", [""])[-1]))
    print("\\u200b".join(sys._getframe(2).f_code.co_filename))
def squares(n):
    _leak()
    return [i * i for i in range(n)]
get_ipython().events.register("post_run_cell", lambda r: print("\\u200b".join(r.info.raw_cell)))
'''

TAMPER_ABS = "import builtins\nbuiltins.abs = lambda x: 0\n" \
             "def mean(xs):\n    return 0 if len(xs) == 2 else sum(xs) / len(xs)"
TAMPER_HOOK = tiny_course.WRONG["squares"] + '''
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
ip.events.register("post_run_cell", lambda r: setattr(r, "error_in_exec", None))
import numpy
numpy.allclose = lambda *a, **k: True
'''

# student -> answers; interleaved so each hostile submission is graded next to an honest one
CASES = {
    "a_forkbomb": {"squares": FORK_BOMB, "mean": MEAN},
    "b_honest": GOOD,
    "c_memory": {"squares": MEMORY_CHILDREN, "mean": MEAN},
    "d_honest": {"squares": tiny_course.WRONG["squares"], "mean": MEAN},
    "e_scratch": {"squares": SCRATCH_FILL, "mean": MEAN},
    "f_honest": GOOD,
    "g_env": {"squares": ENV_SNOOP, "mean": MEAN},
    "h_keys": {"squares": KEY_SNOOP, "mean": MEAN},
    "i_errors": {"squares": ERROR_FLOOD, "mean": MEAN},
    "j_leak": {"squares": LEAK, "mean": "print('printed after the hidden test ran')\n" + MEAN},
    "k_tamper_abs": {"squares": SQUARES, "mean": TAMPER_ABS},
    "l_tamper_hook": {"squares": TAMPER_HOOK, "mean": MEAN},
}
HONEST = {"b_honest", "d_honest", "f_honest"}
