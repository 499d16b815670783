"""The course's own ``CourseDirectory.source_directory``: where `academy course` reads the assignment sources."""
from __future__ import annotations

import pytest

from academy.course.layout import LayoutError, resolve


@pytest.mark.parametrize("setting, expected", [
    ("", "source"),
    ("c.CourseDirectory.source_directory = 'instructor'", "instructor"),
    ("c.CourseDirectory.root = '{root}'\nc.CourseDirectory.source_directory = 'src'", "elsewhere/src"),
    ("c.CourseDirectory.source_directory = '{root}/abs'", "elsewhere/abs"),
])
def test_source_folder_is_read_where_the_course_config_says(tmp_path, setting, expected):
    """Is the source folder nbgrader's default or the config's (relative to its root), pinned for stock nbgrader?"""
    course = tmp_path / "course"
    course.mkdir()
    root = tmp_path / "elsewhere"
    (course / "nbgrader_config.py").write_text("c = get_config()\n" + setting.format(root=root) + "\n")
    layout = resolve(str(course), str(tmp_path / "state"), str(tmp_path / "exchange"))
    base = course if expected.split("/")[0] != "elsewhere" else tmp_path
    assert layout.source_dir == base / expected
    assert layout.nbgrader_config().CourseDirectory.source_directory == str(base / expected)


def test_a_source_directory_that_is_not_a_name_is_refused(tmp_path):
    """Is a source_directory that is not a folder name or path refused with the key named?"""
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.source_directory = ''\n")
    with pytest.raises(LayoutError, match="CourseDirectory.source_directory"):
        resolve(str(course), str(tmp_path / "state"), str(tmp_path / "exchange"))
