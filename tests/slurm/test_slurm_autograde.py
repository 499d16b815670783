"""`academy course autograde --backend slurm` on the real one-node cluster.

The grading runs as one Slurm job array, one task per submission; each task's worker runs as the
submitting account (it holds the gradebook snapshot with the hidden tests) and starts the student's
kernel in the sandbox as the STUDENT'S OWN uid.  Real users, real sbatch, real kernels.
"""
from __future__ import annotations

import pwd

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from support.skip import need
from academy.course import release
from academy.course.autograde import AutogradeRequest, autograde

from testbed import tiny_course
from support.course import make_layout, place_submission, sandbox_available, tiny_release_nb
from support.slurm import new_username, slurm, unix_user


def _array_tasks(name: str) -> list[tuple[str, str]]:
    out = slurm("squeue", "--noheader", "--all", "--states=all", f"--name={name}", "--format=%i|%T")
    return [tuple(line.split("|")) for line in out.stdout.split() if "|" in line]


@pytest.mark.slurm
@pytest.mark.grading
def test_slurm_backend_grades_one_array_task_per_submission_as_the_student(slurm_cluster, tmp_path):
    """Does `--backend slurm` grade every submission in one job array, with the expected scores, and run
    each student's code under that student's own uid?"""
    need(sandbox_available(), "root with bubblewrap, prlimit, setpriv and useradd (apt-get install bubblewrap)")
    students = [unix_user(new_username("gr")) for _ in range(3)]
    course_dir = tmp_path / "course"
    tiny_course.write_source(course_dir)
    job_name = f"academy-autograde-{students[0]}"
    with open(course_dir / "nbgrader_config.py", "a") as fh:  # per-test name: reruns never see an old array
        fh.write(f"c.SlurmBackend.job_name = {job_name!r}\nc.SlurmBackend.memory_mb = 1024\n")
    layout = make_layout(course_dir, tmp_path / "state")
    release.release(layout, tiny_course.ASSIGNMENT, publish=False)
    released = tiny_release_nb(layout)
    answers = {students[0]: tiny_course.SOLUTIONS, students[1]: tiny_course.WRONG,
               students[2]: {"mean": tiny_course.SOLUTIONS["mean"]}}
    for student, ans in answers.items():
        nb = tiny_course.make_submission(released, ans)
        nb.cells.append(new_code_cell("import os\nprint('kernel uid', os.getuid())"))  # a student may add cells
        place_submission(layout, student, tiny_course.ASSIGNMENT, {"problems.ipynb": nb})

    reports = autograde(layout, AutogradeRequest(tiny_course.ASSIGNMENT, jobs=2, backend="slurm"))

    assert {r.student: (r.status, r.score, r.backend) for r in reports} == {
        s: ("graded", tiny_course.expected_score(a), "slurm") for s, a in answers.items()}
    tasks = _array_tasks(job_name)
    assert len(tasks) == len(students) and all("_" in jid and state == "COMPLETED" for jid, state in tasks), tasks
    assert len({jid.split("_")[0] for jid, _ in tasks}) == 1, f"expected one array job, got {tasks}"
    for student in students:
        graded = nbformat.read(layout.step_dir("autograded", student, tiny_course.ASSIGNMENT) / "problems.ipynb",
                               as_version=4)
        printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
        assert f"kernel uid {pwd.getpwnam(student).pw_uid}\n" in printed
