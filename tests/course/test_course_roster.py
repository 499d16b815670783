"""The course roster from a live hub group, with the local backend's ``acad-<name>`` Unix accounts.

On the local backend hub user ``ann`` runs as Unix account ``acad-ann``.  The course must know her as
``ann`` (that is the name in the hub group and the name a trainer reads in the grades) while her exchange
folder belongs to ``acad-ann``.  These tests use a real hub with the real proxy, real spawns (which create
the accounts), the real group API and the real CLI run as the students' accounts.
"""
from __future__ import annotations

import pwd
import shutil
import stat
from pathlib import Path

import pytest

from academy.course import roster
from academy.course.exchange import course_root

from testbed.hub import make_learner
from support.hub import running_hub
from support.course import make_layout, run_academy, shared_tiny_course

GROUP = "course-t1"


@pytest.fixture(scope="module")
def hub():
    with running_hub("roster") as h:
        yield h


@pytest.fixture(scope="module")
def course_group(hub):
    """Two students and a trainer in one hub group, the trainer listed as instructor; students' servers started."""
    ann, ben, tia = (make_learner(hub, prefix) for prefix in ("ann", "ben", "tia"))
    admin = hub.login("admin", hub.admin_password)
    token = hub.token_for(admin, "admin", note="course roster")
    r = hub.api("POST", f"/groups/{GROUP}", token, json={"users": [ann.name, ben.name, tia.name]})
    assert r.status_code == 201, r.text
    r = hub.api("PUT", f"/groups/{GROUP}/properties", token, json={"instructors": [tia.name]})
    assert r.status_code == 200, r.text
    for student in (ann, ben):  # the first spawn creates the student's acad-<name> account
        r = hub.api("POST", f"/users/{student.name}/server", student.token, json={"profile": "cpu"})
        assert r.status_code in (201, 202), r.text
        hub.wait_ready(student.name, student.token)
    yield {"ann": ann, "ben": ben, "tia": tia, "admin_token": token}
    for student in (ann, ben):
        hub.api("DELETE", f"/users/{student.name}/server", student.token)


@pytest.mark.hub
@pytest.mark.grading
def test_roster_reads_students_and_instructors_from_the_hub_group(hub, course_group):
    """Does the roster list the group's members as students, minus the instructors named in its properties?"""
    members = roster.from_hub(hub.url, GROUP, token=course_group["admin_token"])
    assert members.students == sorted([course_group["ann"].name, course_group["ben"].name])
    assert members.instructors == [course_group["tia"].name]
    # A learner may read a group's name (Ask a trainer shares with a group by name), never its members.
    with pytest.raises(roster.RosterError, match="hub answered without the members"):
        roster.from_hub(hub.url, GROUP, token=course_group["ann"].token)
    with pytest.raises(roster.RosterError, match="hub answered 404"):
        roster.from_hub(hub.url, "no-such-course", token=course_group["admin_token"])


@pytest.mark.hub
@pytest.mark.grading
def test_hub_group_students_submit_under_their_hub_names(hub, course_group, grader_account, tmp_path):
    """Does `course setup --hub-group` give each hub student a folder owned by acad-<name>, and can they
    submit under their hub name from their account, but not under a classmate's name?"""
    ann, ben, tia = course_group["ann"], course_group["ben"], course_group["tia"]
    shared = shared_tiny_course("academy-roster-test-")
    try:
        layout = make_layout(shared / "course", tmp_path / "state", shared / "exchange")
        where = ["--config", str(hub.config_path), "course", "--course-dir", str(layout.course_dir),
                 "--exchange-dir", str(layout.exchange_dir)]
        root_where = where + ["--state-dir", str(layout.state_dir)]
        proc = run_academy(*root_where, "setup", "--hub-group", GROUP, "--hub-url", hub.url,
                           env={"JUPYTERHUB_API_TOKEN": course_group["admin_token"]})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "2 student folders" in proc.stdout, proc.stdout
        assert f"instructors (no student folder): {tia.name}" in proc.stdout, proc.stdout
        inbound = course_root(layout) / "inbound"
        for student in (ann, ben):
            info = (inbound / student.name).stat()
            assert info.st_uid == pwd.getpwnam(f"acad-{student.name}").pw_uid
            assert stat.S_IMODE(info.st_mode) == 0o700
        assert not (inbound / tia.name).exists(), "an instructor got a student folder"
        proc = run_academy(*root_where, "release", "t1")
        assert proc.returncode == 0, proc.stdout + proc.stderr

        account = f"acad-{ann.name}"
        home = Path(pwd.getpwnam(account).pw_dir)
        as_ann = {"JUPYTERHUB_USER": ann.name}
        shutil.rmtree(home / "t1", ignore_errors=True)
        proc = run_academy(*where, "fetch", "t1", user=account, cwd=str(home), env=as_ann)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = run_academy(*where, "submit", "t1", user=account, cwd=str(home), env={"JUPYTERHUB_USER": ben.name})
        assert proc.returncode == 2 and "belongs to another account" in proc.stderr, proc.stdout + proc.stderr
        assert not (inbound / ben.name / "t1").exists()
        proc = run_academy(*where, "submit", "t1", user=account, cwd=str(home), env=as_ann)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        proc = run_academy(*root_where, "collect", "t1")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert (layout.step_dir("submitted", ann.name, "t1") / "problems.ipynb").exists()
        assert not layout.step_dir("submitted", ben.name, "t1").exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
