"""Fixtures for the course pipeline tests (helpers live in tests/support/course.py).

- ``grader_account``: the real unprivileged ``academy-grader`` account (created with useradd if missing).
- ``tiny``: a released copy of the generated tiny assignment (testbed/tiny_course.py).
"""
from __future__ import annotations

import pytest
from support.skip import need

from academy.course import release
from academy.course.grading.sandbox import ensure_account

from testbed import tiny_course
from support.course import make_layout, sandbox_available


@pytest.fixture(scope="session")
def grader_account():
    need(sandbox_available(), "root with bubblewrap, prlimit, setpriv and useradd (apt-get install bubblewrap)")
    return ensure_account("academy-grader")


@pytest.fixture
def tiny(tmp_path, grader_account):
    course_dir = tmp_path / "course"
    tiny_course.write_source(course_dir)
    layout = make_layout(course_dir, tmp_path / "state")
    release.release(layout, tiny_course.ASSIGNMENT, publish=False)
    return layout
