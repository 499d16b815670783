"""Nothing left behind: sandbox folders and cgroups go on every exit path, and doctor finds what a SIGKILL leaves."""
from __future__ import annotations

import glob
import os
import signal
import subprocess
import time

import pytest

from academy.course.grading import cleanup, limits

from testbed import tiny_course
from support.course import VENV_BIN, place_submission, tiny_release_nb

pytestmark = pytest.mark.grading

SLEEPER = tiny_course.SOLUTIONS["squares"] + "\nimport time\nopen('/submission/secret-work.txt', 'w').write('x')\n" \
                                             "time.sleep(120)"


def _boxes(run: str) -> list[str]:
    return glob.glob(os.path.join(run, "job*", "academy-sbx-*"))


def _group_pids(tag: str) -> list[int]:
    pids = []
    for group in limits.leftover_groups(tag):
        try:
            pids += [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:  # removed between the listing and the read
            pass
    return pids


def test_sigterm_of_the_grader_removes_sandboxes_and_cgroups(tiny):
    """If the trainer's autograde is terminated mid-batch, are its sandbox folders, cgroups and kernels gone?"""
    released = tiny_release_nb(tiny)
    for student in ("s1", "s2"):
        place_submission(tiny, student, "t1", {"problems.ipynb": tiny_course.make_submission(
            released, {"squares": SLEEPER, "mean": tiny_course.SOLUTIONS["mean"]})})
    before = set(glob.glob("/tmp/" + cleanup.RUN_PREFIX + "*"))
    cmd = [str(VENV_BIN / "academy"), "course", "--course-dir", str(tiny.course_dir), "--state-dir",
           str(tiny.state_dir), "autograde", "t1", "--jobs", "2", "--cell-timeout", "200", "--notebook-timeout", "300"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        run = None
        for _ in range(600):  # until both kernels are up: their sandbox folders exist and they joined their groups
            new = set(glob.glob("/tmp/" + cleanup.RUN_PREFIX + "*")) - before
            if new:
                run = new.pop()
                # A group exists (on cgroup v1, one per controller) before its kernel joins it.
                if len(_boxes(run)) == 2 and len(set(_group_pids(cleanup._tag(run)))) >= 2:
                    break
            time.sleep(0.2)
        assert run and len(_boxes(run)) == 2, proc.stdout.read1().decode() if proc.poll() is not None else "no boxes"
        tag = cleanup._tag(run)
        pids = _group_pids(tag)
        assert len(set(pids)) >= 2, f"the kernels never joined their groups: {limits.leftover_groups(tag)}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not os.path.exists(run)
    assert limits.leftover_groups(tag) == []
    time.sleep(0.5)
    assert [p for p in pids if os.path.exists(f"/proc/{p}") and
            open(f"/proc/{p}/stat").read().split()[2] != "Z"] == []


def test_doctor_reports_what_a_killed_grader_left(tmp_path):
    """Does doctor fail on a run folder whose grader is gone, and does `course cleanup` remove it?"""
    run = cleanup.make_run_scratch(str(tmp_path))
    cleanup.job_scratch(run, 0)
    os.makedirs(os.path.join(run, "job0000", "academy-sbx-x", "work"))
    assert cleanup.leftovers(str(tmp_path)) == []  # its owner (this process) is alive
    with open(os.path.join(run, "owner.pid"), "w") as fh:
        fh.write("999999999")  # a pid that cannot exist: the grader was SIGKILLed
    assert cleanup.leftovers(str(tmp_path)) == [run]
    assert cleanup.remove_leftovers(str(tmp_path)) == [run]
    assert not os.path.exists(run)
    check = cleanup.doctor_check()
    assert check.name == "grading leftovers" and check.ok, check
