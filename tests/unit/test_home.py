"""Curriculum delivery into a home: copy what is missing, update what is untouched, keep user edits."""
from __future__ import annotations

import os

import pytest

from academy.home import MANIFEST, sync_curriculum


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "notebooks"
    (src / "data").mkdir(parents=True)
    (src / "01.ipynb").write_text("lesson one v1")
    (src / "data" / "corpus.txt").write_text("text")
    (src / ".ipynb_checkpoints").mkdir()
    (src / ".ipynb_checkpoints" / "01-checkpoint.ipynb").write_text("junk")
    return src


def test_first_delivery_copies_everything_but_checkpoints(source, tmp_path):
    """Does a new home receive every lesson and data file, but no checkpoints?"""
    dest = tmp_path / "home" / "academy"
    report = sync_curriculum(source, dest)
    assert sorted(report.copied) == ["01.ipynb", "data/corpus.txt"]
    assert (dest / "01.ipynb").read_text() == "lesson one v1"
    assert not (dest / ".ipynb_checkpoints").exists()
    assert (dest / MANIFEST).exists()


def test_user_edits_survive_a_curriculum_update(source, tmp_path):
    """Is a lesson the user edited left alone when the curriculum changes, while untouched ones update?"""
    dest = tmp_path / "academy"
    sync_curriculum(source, dest)
    (dest / "01.ipynb").write_text("my answers")
    (source / "01.ipynb").write_text("lesson one v2")
    (source / "data" / "corpus.txt").write_text("text v2")
    report = sync_curriculum(source, dest)
    assert report.kept_user_changes == ["01.ipynb"] and report.updated == ["data/corpus.txt"]
    assert (dest / "01.ipynb").read_text() == "my answers"
    assert (dest / "data" / "corpus.txt").read_text() == "text v2"
    again = sync_curriculum(source, dest)
    assert again.copied == again.updated == [] and (dest / "01.ipynb").read_text() == "my answers"


def test_a_deleted_lesson_comes_back(source, tmp_path):
    """Does deleting a lesson restore a fresh copy on the next start (the nbgitpuller convention)?"""
    dest = tmp_path / "academy"
    sync_curriculum(source, dest)
    (dest / "01.ipynb").unlink()
    assert sync_curriculum(source, dest).copied == ["01.ipynb"]


def test_a_user_file_with_a_lesson_name_is_never_replaced(source, tmp_path):
    """Is a file the user created before delivery (same name) kept?"""
    dest = tmp_path / "academy"
    dest.mkdir()
    (dest / "01.ipynb").write_text("mine first")
    report = sync_curriculum(source, dest)
    assert report.kept_user_changes == ["01.ipynb"] and (dest / "01.ipynb").read_text() == "mine first"


def test_planted_symlinks_are_refused(source, tmp_path):
    """Does a symlink planted where a lesson goes stop delivery instead of writing through it?"""
    dest = tmp_path / "academy"
    dest.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    os.symlink(victim, dest / "data")
    with pytest.raises(PermissionError, match="symlink"):
        sync_curriculum(source, dest)
    assert victim.read_text() == "do not touch"
