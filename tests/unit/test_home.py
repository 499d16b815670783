"""Curriculum delivery into a home: copy what is missing, update what is untouched, keep user edits."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from academy.home import MANIFEST, author_only, sync_as_user, sync_curriculum


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


def test_the_lesson_code_never_reaches_a_home(source, tmp_path):
    """Is the curriculum's lessons/ folder (checkers and solutions) left out, while a deeper folder of that name is content?"""
    (source / "lessons").mkdir()
    (source / "lessons" / "__init__.py").write_text('"""Lessons."""')
    (source / "lessons" / "n01.py").write_text("SOLUTION = 42")
    (source / "data" / "lessons").mkdir()
    (source / "data" / "lessons" / "notes.txt").write_text("a data folder that happens to be called lessons")
    dest = tmp_path / "home" / "academy"
    report = sync_curriculum(source, dest)
    assert sorted(report.copied) == ["01.ipynb", "data/corpus.txt", "data/lessons/notes.txt"]
    assert not (dest / "lessons").exists()
    assert sync_curriculum(source, dest).copied == []


def test_a_home_copy_of_the_real_curriculum_has_notebooks_and_data_but_no_lesson_code(tmp_path):
    """Does the real notebooks/ delivered by the child process (as a spawn runs it) bring every notebook and data file and no lessons/?"""
    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    assert (notebooks / "lessons" / "__init__.py").is_file(), "the lesson package should live beside the notebooks"
    dest = tmp_path / "ai-factory-academy"
    report = sync_as_user(notebooks, dest)
    delivered = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.name != MANIFEST}
    assert delivered == set(report.copied)
    assert {p.name for p in notebooks.glob("*.ipynb")} <= delivered and len(list(notebooks.glob("*.ipynb"))) >= 13
    assert {f"data/{p.name}" for p in (notebooks / "data").iterdir()} <= delivered
    assert not (dest / "lessons").exists() and not [d for d in delivered if d.endswith(".py")]


def test_author_only_names_the_lesson_folder_and_what_is_in_it(tmp_path):
    """Is a path in (or equal to) the curriculum's lessons/ recognised, and nothing else (data, notebooks, paths outside)?"""
    base = tmp_path / "notebooks"
    (base / "lessons").mkdir(parents=True)
    assert author_only(base, base / "lessons") and author_only(base, base / "lessons" / "n00_welcome.py")
    assert author_only(base, base / "data" / ".." / "lessons")
    assert not author_only(base, base / "data") and not author_only(base, base / "00_welcome.ipynb")
    assert not author_only(base, base) and not author_only(base, tmp_path / "lessons")


def test_a_workshop_cannot_release_the_lesson_code(tmp_path):
    """Does releasing "lessons" (or a path into it) as a workshop lesson fail with a clear problem before anything is copied?"""
    from academy.workshop.actions import Context
    from academy.workshop.forms import InvalidRequest
    from academy.workshop.release import _release_lesson

    base = tmp_path / "notebooks"
    (base / "lessons").mkdir(parents=True)
    (base / "data").mkdir()
    (base / "lessons" / "n00_welcome.py").write_text("SOLUTION = 42")
    ctx = Context({"curriculum": {"source": str(base), "target": "academy"}, "backend": "local"}, None, None)
    for name in ("lessons", "lessons/", "./lessons", "data/../lessons"):
        with pytest.raises(InvalidRequest) as err:
            _release_lesson(ctx, None, name)
        [problem] = err.value.problems
        assert problem.field == "lessons" and "is the lesson code" in problem.message, name
