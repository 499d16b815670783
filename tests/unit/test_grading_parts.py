"""Parts of the grading sandbox that need no kernel: the confine step, the bwrap command, the limit messages."""
from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from academy.course.grading import cells, confine, integrity, limits
from academy.course.grading.sandbox import SandboxPolicy, SandboxUser

CONFINE = confine.__file__


def _run_confined(code: str, **kw) -> str:
    cmd = [sys.executable, "-I", "-S", CONFINE, "--", sys.executable, "-I", "-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env=dict(os.environ, GRADER_SECRET="s3cret"), **kw).stdout


def test_confine_clears_the_environment():
    """Does the step before bwrap hand on nothing of the grader's environment but PATH?"""
    out = _run_confined("import os; print(sorted(os.environ))")
    assert set(eval(out)) <= {"PATH", "LC_CTYPE"}  # Python itself sets LC_CTYPE in the C locale (PEP 538)


def test_confine_closes_inherited_descriptors(tmp_path):
    """Does a descriptor the grader passed on by accident stay out of the sandbox?"""
    secret = tmp_path / "gradebook.db"
    secret.write_text("x")
    fd = os.open(secret, os.O_RDONLY)
    try:
        out = _run_confined("import os\nfor f in range(64):\n    try:\n        print(os.readlink(f'/proc/self/fd/{f}'))\n"
                            "    except OSError:\n        pass", pass_fds=[fd])
    finally:
        os.close(fd)
    assert str(secret) not in out


@pytest.mark.skipif(platform.machine() not in confine._SYS_KEYCTL, reason="keyctl number unknown here")
def test_confine_joins_a_fresh_session_keyring():
    """Does the confined process get a session keyring of its own, not the grader's?"""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = confine._SYS_KEYCTL[platform.machine()]
    mine = libc.syscall(ctypes.c_long(number), ctypes.c_long(0), ctypes.c_long(-3), ctypes.c_long(1))
    assert mine > 0, ctypes.get_errno()
    code = (f"import ctypes; l = ctypes.CDLL(None); l.syscall.restype = ctypes.c_long; "
            f"print(l.syscall(ctypes.c_long({number}), ctypes.c_long(0), ctypes.c_long(-3), ctypes.c_long(0)))")
    theirs = int(_run_confined(code))
    assert theirs > 0 and theirs != mine


def test_sandbox_command_sizes_every_writable_tmpfs():
    """Is every tmpfs the student can write sized, and the account's process limit only a backstop with cgroups?"""
    policy = SandboxPolicy(scratch_size=1234)
    user = SandboxUser("nobody", 65534, 65534)
    argv = policy.command(["python"], user=user, workdir="/w", ipc_dir="/i", cgroup_procs=["/cg/cgroup.procs"])
    for target in ("/tmp", "/dev/shm", "/submission"):
        i = next(i for i, a in enumerate(argv) if a == target and argv[i - 1] == "--tmpfs")
        assert argv[i - 3:i - 1] == ["--size", "1234"]
    assert argv[:3] == [sys.executable, "-I", "-S"] and "--cgroup" in argv
    assert f"--nproc={policy.account_processes}" in argv
    assert f"--nproc={policy.max_processes}" in policy.command(["python"], user=user, workdir="/w", ipc_dir="/i")
    assert ["--ro-bind", "/w", "/.submission-files"] == argv[argv.index("/w") - 1:argv.index("/w") + 2]


def test_limit_messages_name_the_limit_and_the_usage():
    """Does a submission that hit a limit get a line naming it and what it used?"""
    events = [limits.Usage(memory_limit=2**30, memory_peak=2**30, memory_hits=5, pids_limit=64, pids_peak=64,
                           pids_refused=3).to_event(), {"event": "scratch_full", "limit": 32 * 2**20}]
    lines = limits.explain(events)
    assert "hit its memory limit of 1024 MiB (used 1024 MiB, files in /tmp and /dev/shm included)" in lines
    assert "hit its process limit: 64 of 64 processes (3 process starts refused)" in lines
    assert "hit its scratch space limit of 32 MiB (a write failed: no space left)" in lines
    assert limits.explain([limits.Usage(memory_limit=2**30, memory_peak=2**20).to_event()]) == []


def test_too_large_message_states_the_one_limit():
    """Is the size message the same wording wherever it is raised?"""
    text = limits.too_large(3, 101 * 2**20)
    assert text.startswith("submission too large: 3 files, 101.0 MiB")
    assert "the limit is 200 files and 100 MiB in all" in text


def test_ignored_cells_are_explained():
    """Does an ignored cell's note say which cell, what it claimed and why?"""
    [note] = cells.explain([{"event": "ignored_cell", "notebook": "p", "index": 4, "grade_id": "bonus",
                             "reason": "is not part of the assignment", "points": 1000}])
    assert note.startswith("cell 5 of p ('bonus', claiming 1000 points) is not part of the assignment")


def test_an_unreadable_integrity_answer_is_itself_a_change():
    """If student code breaks the checker, is that flagged rather than read as 'nothing changed'?"""
    assert integrity.parse(None) == ["integrity check got no answer"]
    broken = {"content": {"status": "ok", "user_expressions": {"r": {"status": "ok", "data": {"text/plain": "lol"}}}}}
    assert "tampered" in integrity.parse(broken)[0]
    fine = {"content": {"status": "ok", "user_expressions": {"r": {"status": "ok", "data": {
        "text/plain": repr('["builtins.abs replaced"]')}}}}}
    assert integrity.parse(fine) == ["builtins.abs replaced"]
