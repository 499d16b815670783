"""Per-submission isolation and limits, tried as a hostile student would, through the real CLI.

One `academy course autograde --jobs 2` run (a fresh process, as a trainer starts it, with a secret in
its environment and its session keyring) grades hostile submissions interleaved with honest ones, so
each hostile one runs next to an honest one.  Every honest submission must score exactly what it
scores alone; the hostile ones must see nothing of the grader and stay within their own limits.
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import platform
import uuid

import nbformat
import pytest

from academy.course import hidden, reports
from academy.course.grading import cleanup, limits
from academy.course.autograde import AutogradeRequest, autograde

from testbed import tiny_course
from support.course import make_layout, place_submission, run_academy, tiny_release_nb
from testbed.hostile_submissions import CASES, HONEST, KEY_SNOOP, MEAN, MEMORY, PROCS, SCRATCH

pytestmark = [pytest.mark.grading,
              pytest.mark.skipif(platform.machine() != "x86_64", reason="keyctl syscall numbers below are x86_64")]

SECRET_ENV = "tok-" + uuid.uuid4().hex
SECRET_KEY = b"key-" + uuid.uuid4().hex.encode()

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
SYS_ADD_KEY, SYS_KEYCTL = 248, 250


def _keyctl(*args) -> int:
    return _libc.syscall(ctypes.c_long(SYS_KEYCTL), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])


def _search(ring: int, desc: bytes) -> int:
    return _keyctl(10, ring, b"user", desc, 0)  # KEYCTL_SEARCH


@pytest.fixture(scope="module")
def batch(tmp_path_factory, grader_account):
    from academy.course import release
    base = tmp_path_factory.mktemp("isolation")
    os.chmod(base, 0o755)
    tiny_course.write_source(base / "course")
    with open(base / "course" / "nbgrader_config.py", "a") as fh:
        fh.write(f"\nc.SandboxPolicy.scratch_size = {SCRATCH}\nc.SandboxPolicy.memory_limit = {MEMORY}\n"
                 f"c.SandboxPolicy.max_processes = {PROCS}\n")
    layout = make_layout(base / "course", base / "state")
    release.release(layout, "t1", publish=False)
    released = tiny_release_nb(layout)
    for student, answers in CASES.items():
        place_submission(layout, student, "t1", {"problems.ipynb": tiny_course.make_submission(released, answers)})
    # The trainer's session keyring holds a secret; the grading run inherits it, as from a login shell.
    assert _keyctl(1, b"academy-test-session") > 0, ctypes.get_errno()  # KEYCTL_JOIN_SESSION_KEYRING
    key = _libc.syscall(ctypes.c_long(SYS_ADD_KEY), b"user", b"academy-grader-secret", SECRET_KEY,
                        ctypes.c_long(len(SECRET_KEY)), ctypes.c_long(-3))
    assert key > 0, ctypes.get_errno()
    before = set(glob.glob("/tmp/" + cleanup.RUN_PREFIX + "*"))
    where = ["course", "--course-dir", str(layout.course_dir), "--state-dir", str(layout.state_dir)]
    proc = run_academy(*where, "autograde", "t1", "--jobs", "2", "--cell-timeout", "30",
                       "--notebook-timeout", "90", env={"ACADEMY_ADMIN_TOKEN": SECRET_ENV})
    after = set(glob.glob("/tmp/" + cleanup.RUN_PREFIX + "*"))
    return layout, reports.load_all(layout, "t1"), proc, after - before


def _outputs(layout, student) -> str:
    """What the submission printed (outputs only: the cell sources contain the probe words themselves)."""
    nb = nbformat.read(layout.step_dir("autograded", student, "t1") / "problems.ipynb", as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts += [str(out.get("text", "")), str(out.get("evalue", ""))] + list(out.get("traceback", []))
            parts += [str(v) for v in out.get("data", {}).values()]
    return "\n".join(parts)


def test_honest_neighbours_score_exactly_as_alone(batch):
    """Do fork bombs, memory and scratch hogs graded alongside leave every honest score exact?"""
    layout, reps, proc, _ = batch
    assert set(reps) == set(CASES), proc.stdout + proc.stderr
    for student in HONEST:
        assert reps[student].status == "graded", reps[student]
        assert reps[student].score == tiny_course.expected_score(CASES[student]), reps[student]
        assert not reps[student].flags and not reps[student].notes


def test_fork_bomb_hits_its_own_process_limit(batch):
    """Is a fork bomb stopped at its submission's process limit, with a message naming it?"""
    layout, reps, _, _ = batch
    assert "FORK REFUSED" in _outputs(layout, "a_forkbomb")
    report = reps["a_forkbomb"]
    assert (report.status, report.score) == ("graded", 6.0), report
    assert any(f"process limit" in n and f"{PROCS} processes" in n for n in report.notes), report


def test_memory_of_forked_children_counts_together(batch):
    """Do forked children share one memory limit, so together they cannot hold more than it?"""
    layout, reps, _, _ = batch
    assert "CHILDREN ALIVE" in _outputs(layout, "c_memory")  # the children really ran
    # 10 x 120 MiB do not fit in 1 GiB: the submission's one cgroup hit its limit, and says so.
    assert any("hit its memory limit of 1024 MiB (used 1024 MiB" in n for n in reps["c_memory"].notes), reps["c_memory"]


def test_scratch_space_is_limited_per_submission(batch):
    """Are /tmp, /dev/shm and the working folder each capped at the scratch size, with a message?"""
    layout, reps, _, _ = batch
    text = _outputs(layout, "e_scratch")
    written = eval(text.split("WRITTEN ")[1].split("\n")[0])  # a dict literal printed by the submission
    assert set(written) == {"/tmp", "/dev/shm", "/submission"}
    assert all(0 < n <= SCRATCH for n in written.values()), written
    assert reps["e_scratch"].score == 6.0
    assert any("scratch space limit of 32 MiB" in n for n in reps["e_scratch"].notes), reps["e_scratch"]


def test_grader_environment_and_descriptors_are_invisible(batch):
    """Can student code find the grader's environment (any process's) or its open files?"""
    layout, _, _, _ = batch
    text = _outputs(layout, "g_env")
    assert "ENV 1 b'" in text  # the sandbox's init process was readable: the channel was really tried
    assert SECRET_ENV not in text and "ACADEMY_ADMIN_TOKEN" not in text
    fds = [line for line in text.splitlines() if line.startswith("FD ")]
    assert fds, "the kernel has sockets at least"
    assert not [line for line in fds if str(layout.state_dir) in line or "gradebook" in line or
                str(layout.course_dir) in line], fds


def test_grader_keyring_is_invisible_and_nothing_planted_survives(batch):
    """Can student code read the grader's session keys, or plant keys the grader or the next run sees?"""
    layout, _, _, _ = batch
    text = _outputs(layout, "h_keys")
    assert "KEYSEARCH -3" in text  # the search really ran
    assert SECRET_KEY.decode() not in text and "KEYDATA" not in text
    assert _search(-3, b"planted-by-student") < 0
    assert _search(-3, b"academy-grader-secret") > 0  # the grader's own key is still there
    # A later run as the same account finds nothing the first one planted.
    released = tiny_release_nb(layout)
    place_submission(layout, "z_reader", "t1", {"problems.ipynb": tiny_course.make_submission(
        released, {"squares": KEY_SNOOP.replace("planted-by-student", "second-plant").replace(
            b"academy-grader-secret".decode(), "planted-by-student"), "mean": MEAN})})
    [report] = autograde(layout, AutogradeRequest("t1", jobs=1, students=["z_reader"]))
    out = _outputs(layout, "z_reader")
    assert report.score == 6.0 and "KEYSEARCH -4" in out and "KEYDATA" not in out


def test_errors_and_tracebacks_are_capped(batch):
    """Do thousands of long tracebacks leave a small graded notebook, and the cell still count?"""
    layout, reps, _, _ = batch
    path = layout.step_dir("autograded", "i_errors", "t1") / "problems.ipynb"
    assert path.stat().st_size < 5 * 1024**2
    nb = nbformat.read(path, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert 0 < len(errors) <= 60
    assert all(len(t) <= 2000 for e in errors for t in e.traceback)
    assert reps["i_errors"].score == 6.0


def test_hidden_tests_stay_hidden_under_frame_and_history_tricks(batch):
    """If answers print the running test's source (frames, history, hooks, zero-width spaces), is feedback clean?"""
    from academy.course.feedback import feedback
    layout, reps, _, _ = batch
    squashed = _outputs(layout, "j_leak").replace("\u200b", "")
    assert "squares(6)" in squashed  # the trick really ran and captured the hidden test
    [result] = feedback(layout, "t1", students=["j_leak"], send=False)
    assert result.status == "generated", result.message
    text = hidden.html_text(result.files[0].read_text())
    flat = "".join(ch for ch in text if ch.isascii() and not ch.isspace())
    assert "squares(6)" not in flat and "hiddensquarescheck" not in flat
    assert "hidden tests are not shown" in text and "Tests passed." in text
    assert "output not shown" in text  # later cells' outputs withheld, with a note


def test_author_assertion_message_still_reaches_the_student(batch):
    """Does a failing hidden test still show the message its author wrote (and only that)?"""
    from academy.course.feedback import feedback
    layout, _, _, _ = batch
    [result] = feedback(layout, "t1", students=["k_tamper_abs"], send=False)
    text = hidden.html_text(result.files[0].read_text())
    assert "Tests failed: AssertionError: hidden mean check" in text


def test_tampering_is_restored_and_flagged(batch):
    """Do patched builtins, hooks that clear errors and hidden tracebacks earn nothing, and get flagged?"""
    from academy.course.export import export
    layout, reps, _, _ = batch
    abs_report, hook_report = reps["k_tamper_abs"], reps["l_tamper_hook"]
    assert abs_report.score == 3.0 and abs_report.flagged, abs_report  # hidden mean test fails honestly
    assert any("builtins.abs replaced" in f for f in abs_report.flags)
    assert hook_report.score == 4.0 and hook_report.flagged, hook_report  # wrong squares fails, mean counts
    joined = " ".join(hook_report.flags)
    for change in ("post_run_cell hook", "shell.showtraceback overridden", "numpy.allclose replaced"):
        assert change in joined, joined
    _, tests_csv = export(layout, layout.state_dir / "out", "t1")
    rows = tests_csv.read_text()
    assert "flagged" in rows.splitlines()[0] and "builtins.abs replaced" in rows
    from academy.course.status import assignment_status
    assert assignment_status(layout, "t1").flagged == sum(1 for r in reps.values() if r.flags)
    assert not any(reps[s].flags for s in HONEST)


def test_no_sandbox_folder_or_cgroup_is_left(batch):
    """After the batch (kernels that died, hit limits or finished), is every sandbox folder and cgroup gone?"""
    _, _, _, new_runs = batch
    assert new_runs == set()
    assert limits.leftover_groups() == []
