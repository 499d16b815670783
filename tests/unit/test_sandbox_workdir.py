"""What reaches the grading sandbox: the notebook's whole folder, never links, within the limits."""
from __future__ import annotations

import os

import pytest

from academy.course.grading.sandbox import MAX_WORKDIR_DEPTH, SandboxError, SandboxUser, copy_workdir

ME = SandboxUser(name="me", uid=os.getuid(), gid=os.getgid())


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, dirs, files in os.walk(root) for f in files + dirs)


def test_sub_folders_are_copied_and_links_are_not(tmp_path):
    """Does the working copy hold every file and sub-folder at its relative path, and no link or pipe?"""
    src, dst, other = tmp_path / "src", tmp_path / "dst", tmp_path / "other_student.txt"
    (src / "data" / "deep").mkdir(parents=True)
    (src / "nb.ipynb").write_text("{}")
    (src / "data" / "n.txt").write_text("7")
    (src / "data" / "deep" / "m.csv").write_text("1,2,3")
    (src / "...").write_text("a name, not a way up")
    other.write_text("secret")
    os.symlink(other, src / "data" / "answer.txt")
    os.symlink(tmp_path, src / "up")
    os.mkfifo(src / "pipe")
    dst.mkdir()
    copy_workdir(str(src), str(dst), ME, max_entries=10, max_bytes=1000)
    assert _tree(dst) == ["...", "data", "data/deep", "data/deep/m.csv", "data/n.txt", "nb.ipynb"]
    assert (dst / "data" / "deep" / "m.csv").read_text() == "1,2,3"
    assert not any(os.path.islink(os.path.join(d, f)) for d, _, fs in os.walk(dst) for f in fs)


@pytest.mark.parametrize("what", ["entries", "bytes", "depth"])
def test_a_tree_over_a_limit_is_refused_with_the_limit_named(tmp_path, what):
    """Is a folder with too many files, too many bytes or too deep nesting refused, naming the limit?"""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    if what == "entries":
        for i in range(11):
            (src / f"{i}.txt").write_text("x")
    elif what == "bytes":
        (src / "big.bin").write_bytes(b"x" * 2000)
    else:
        (src / "/".join(["d"] * (MAX_WORKDIR_DEPTH + 1))).mkdir(parents=True)
    with pytest.raises(SandboxError) as info:
        copy_workdir(str(src), str(dst), ME, max_entries=100 if what == "depth" else 10, max_bytes=1000)
    expected = {"entries": "max_workdir_files=10", "bytes": "scratch_size=", "depth": "nested deeper than"}[what]
    assert expected in str(info.value)


@pytest.mark.parametrize("what", ["folders", "depth"])
def test_a_submission_of_empty_folders_or_deep_nesting_is_refused(tmp_path, what):
    """Is a submission with more folders than the limit, or nested deeper than collect allows, refused clearly?"""
    from academy.course.exchange import MAX_DEPTH
    from academy.course.grading import limits, worker
    src = tmp_path / "src"
    if what == "folders":
        for i in range(limits.SUBMISSION_MAX_FILES + 1):
            (src / f"d{i}").mkdir(parents=True)
    else:
        (src / "/".join(["d"] * (MAX_DEPTH + 1))).mkdir(parents=True)
    with pytest.raises(worker.SubmissionTooLarge) as info:
        worker._copy_submission(str(src), str(tmp_path / "dst"))
    assert str(info.value).startswith("submission too large: ")
    assert ("folders" if what == "folders" else "nested deeper") in str(info.value)


def test_links_in_a_submission_are_left_out_with_a_note(tmp_path):
    """Are a submission's links (to another student's file, to a folder) left out and named in a note?"""
    from academy.course.grading import worker
    src, other = tmp_path / "src", tmp_path / "ann_answer.txt"
    (src / "work").mkdir(parents=True)
    (src / "nb.ipynb").write_text("{}")
    other.write_text("42")
    os.symlink(other, src / "work" / "answer.txt")
    os.symlink("/etc", src / "etc")
    worker._NOTES.clear()
    worker._copy_submission(str(src), str(tmp_path / "dst"))
    assert _tree(tmp_path / "dst") == ["nb.ipynb", "work"]
    assert worker._NOTES == ["2 link(s) or special file(s) in the submission were ignored (only plain files are "
                             "graded): 'etc', 'work/answer.txt'"]
