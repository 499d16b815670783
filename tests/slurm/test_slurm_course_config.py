"""The site config's ``course.slurm`` placement reaches the real grading job array (real one-node Slurm)."""
from __future__ import annotations

import pytest

from support.skip import need
from academy.course import release
from academy.course.autograde import AutogradeRequest, autograde
from academy.course.site import layout_for_site
from academy.siteconfig import build_config

from testbed import tiny_course
from support.course import place_submission, sandbox_available, tiny_release_nb
from support.slurm import new_username, slurm, unix_user


@pytest.mark.slurm
@pytest.mark.grading
def test_course_slurm_partition_and_memory_from_the_site_config(slurm_cluster, tmp_path):
    """Does `course.slurm` (partition, memory) decide where and with how much memory the grading array runs?"""
    need(sandbox_available(), "root with bubblewrap, prlimit, setpriv and useradd (apt-get install bubblewrap)")
    student = unix_user(new_username("gc"))
    course_dir = tmp_path / "course"
    tiny_course.write_source(course_dir)
    job_name = f"academy-autograde-{student}"
    with open(course_dir / "nbgrader_config.py", "a") as fh:  # per-test name: reruns never see an old array
        fh.write(f"c.SlurmBackend.job_name = {job_name!r}\n")
    cfg = build_config({"hub": {"state_dir": str(tmp_path / "hub")},
                        "course": {"exchange_dir": str(tmp_path / "exchange"), "slurm": {"partition": "gpu", "memory_mb": 900},
                                   "courses": [{"id": "tiny", "directory": str(course_dir)}]}}, "test")
    layout = layout_for_site(cfg, env={})
    assert layout.state_dir == tmp_path / "hub" / "courses" / "tiny"
    release.release(layout, tiny_course.ASSIGNMENT, publish=False)
    nb = tiny_course.make_submission(tiny_release_nb(layout), tiny_course.SOLUTIONS)
    place_submission(layout, student, tiny_course.ASSIGNMENT, {"problems.ipynb": nb})

    [report] = autograde(layout, AutogradeRequest(tiny_course.ASSIGNMENT, jobs=1, backend="slurm"))

    assert (report.status, report.score) == ("graded", tiny_course.expected_score(tiny_course.SOLUTIONS)), report
    out = slurm("squeue", "--noheader", "--all", "--states=all", f"--name={job_name}", "--format=%P|%m|%T")
    rows = [line.split("|") for line in out.stdout.split() if "|" in line]
    assert rows and all(p == "gpu" and m == "900M" and t == "COMPLETED" for p, m, t in rows), out.stdout
