"""`academy course setup` with students who have no Unix account yet: made on the local backend, never skipped silently."""
from __future__ import annotations

import os
import pwd
import random
import shutil
import stat
import string
import subprocess

import pytest
import yaml
from support.skip import need

from academy.course.exchange import course_root
from support.course import make_layout, run_academy, shared_tiny_course

pytestmark = pytest.mark.grading


def test_setup_makes_missing_local_accounts_and_fails_loudly_otherwise(tmp_path, grader_account):
    """Does setup make acad-<name> and a private inbound folder for a student who never spawned, and exit non-zero when it cannot?"""
    need(os.geteuid() == 0, "root (setup creates accounts and student-owned folders)")
    student = "newbie" + "".join(random.choices(string.ascii_lowercase, k=5))
    shared = shared_tiny_course("academy-setup-test-")
    config = tmp_path / "academy.yaml"
    config.write_text(yaml.safe_dump({"hub": {"state_dir": str(shared / "state")}, "backend": "local"}))
    layout = make_layout(shared / "course", tmp_path / "coursestate", shared / "exchange")
    where = ["--config", str(config), "course", "--course-dir", str(layout.course_dir),
             "--exchange-dir", str(layout.exchange_dir), "--state-dir", str(layout.state_dir)]
    try:
        proc = run_academy(*where, "setup", "--students", student)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        account = pwd.getpwnam(f"acad-{student}")
        info = (course_root(layout) / "inbound" / student).stat()
        assert info.st_uid == account.pw_uid and stat.S_IMODE(info.st_mode) == 0o700
        assert os.stat(account.pw_dir).st_uid == account.pw_uid
        # With a prefix no backend makes accounts for, the student is reported and the exit status says so.
        proc = run_academy(*where, "setup", "--students", f"{student}x", "--account-prefix", "nosuch-")
        assert proc.returncode == 1 and f"no Unix account '{student}x'" in proc.stderr, proc.stdout + proc.stderr
    finally:
        subprocess.run(["userdel", f"acad-{student}"], capture_output=True)
        shutil.rmtree(shared, ignore_errors=True)
