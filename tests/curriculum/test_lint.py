"""Do the clean and skeleton checks catch each departure from NOTEBOOKS.md, and does stripping make a notebook clean?"""
from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

from support.notebooks import skeleton, write
from academy.curriculum import lint


def problems_of(tmp_path, nb, name="07_synthetic"):
    return lint.lint(write(tmp_path, name, nb))


def test_skeleton_notebook_is_clean(tmp_path):
    """Does a notebook built to the skeleton pass every check (so the checks are not simply always failing)?"""
    assert problems_of(tmp_path, skeleton(7)) == []


def test_smoke_auto_is_a_valid_parameter(tmp_path):
    """Does the lint accept smoke = "auto" (size chosen from the device), as notebook 08 uses?"""
    nb = skeleton(7)
    nb.cells[3].source = 'smoke = "auto"\ndevice = "auto"'
    assert problems_of(tmp_path, nb) == []


def _drop_params(nb):
    nb.cells[3].metadata["tags"] = []


def _smoke_true(nb):
    nb.cells[3].source = 'smoke = True\ndevice = "auto"'


def _swap_sections(nb):
    nb.cells[13], nb.cells[14] = nb.cells[14], nb.cells[13]


def _no_assert(nb):
    nb.cells[12].source = "report(value=value)"


def _no_report(nb):
    nb.cells[12].source = "assert value == 2"


def _two_checks(nb):
    nb.cells.insert(13, new_code_cell("assert True\nreport(x=1)", metadata={"tags": ["learning-check"]}, id="extra"))


def _bad_title(nb):
    nb.cells[0].source = "# Synthetic lesson"


def _wrong_number(nb):
    nb.cells[0].source = "# 03 · Synthetic lesson"


def _no_table(nb):
    nb.cells[2].source = "## Prerequisites\nSome Python.\n\n**Time to learn**: 5 minutes"


def _one_exercise(nb):
    del nb.cells[10]


def _papermill_leftovers(nb):
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells.insert(4, new_code_cell("smoke = True", metadata={"tags": ["injected-parameters"]}, id="inj"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_drop_params, "expected one code cell tagged 'parameters', found 0"),
        (_smoke_true, "the 'parameters' cell should set smoke = False"),
        (_swap_sections, "sections out of order"),
        (_no_assert, "the 'learning-check' cell should assert the lesson's measured result"),
        (_no_report, "the 'learning-check' cell should call report(...)"),
        (_two_checks, "expected one code cell tagged 'learning-check', found 2"),
        (_bad_title, "first cell should be a markdown title '# NN · Title'"),
        (_wrong_number, "does not carry the file's number 07"),
        (_no_table, "| Concept | Importance | Notes | table"),
        (_one_exercise, "'## Exercises' should hold 2-3 exercises"),
        (_papermill_leftovers, "is papermill's 'injected-parameters' cell"),
    ],
)
def test_each_departure_is_named(tmp_path, mutate, expected):
    """Is each kind of departure from the conventions reported with a specific message?"""
    nb = skeleton(7)
    mutate(nb)
    problems = problems_of(tmp_path, nb)
    assert any(expected in p for p in problems), problems


def test_missing_and_repeated_cell_ids(tmp_path):
    """Are cells without an id, or repeating one, reported (JupyterLab's collaboration relies on stable ids)?"""
    path = write(tmp_path, "07_synthetic", skeleton(7))
    raw = json.loads(path.read_text())
    del raw["cells"][5]["id"]  # nbformat.write would quietly add one, so edit the JSON itself
    raw["cells"][6]["id"] = raw["cells"][7]["id"]
    path.write_text(json.dumps(raw))
    problems = lint.lint(path)
    assert "cell 5 has no id" in problems
    assert "cell 7 (c07-07) repeats id 'c07-07'" in problems


def test_bad_file_name_and_invalid_json(tmp_path):
    """Are a non-curriculum file name and a file that is not JSON reported, not crashed on?"""
    assert any("NN_slug.ipynb" in p for p in problems_of(tmp_path, skeleton(7), name="Untitled"))
    broken = tmp_path / "08_broken.ipynb"
    broken.write_text("{ not json")
    [problem] = lint.lint(broken)
    assert "not a notebook (invalid JSON" in problem


def test_strip_makes_an_executed_notebook_clean_and_keeps_sources(tmp_path):
    """Does strip_file remove outputs, counts and run metadata, keep every source and id, and change nothing twice?"""
    nb = skeleton(7)
    nb.cells[7].outputs = [new_output("execute_result", data={"text/plain": "2"}, execution_count=4)]
    nb.cells[7].execution_count = 4
    nb.cells[7].metadata["papermill"] = {"status": "completed"}
    nb.cells[7].metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    path = write(tmp_path, "07_synthetic", nb)
    assert lint.lint(path)
    assert lint.strip_file(path) is True
    assert lint.lint(path) == []
    again = nbformat.read(path, as_version=4)
    assert [c.source for c in again.cells] == [c.source for c in nb.cells]
    assert [c.id for c in again.cells] == [c.id for c in nb.cells]
    before = path.read_text()
    assert lint.strip_file(path) is False and path.read_text() == before
    json.loads(before)


# The lesson-module rule: notebook NN_slug imports academy_lessons.nNN_slug (notebooks/lessons/), and every
# lesson.X it names is defined there. The rule reads lessons/ beside the notebook, never the installed package.
LESSON_SOURCE = '''"""Lesson 07 support for the lint tests."""
try:
    import torch
except ImportError:
    torch = None

STEPS = 3


def check(answer):
    return answer == 2


class Helper:
    pass
'''


def _with_lessons(tmp_path, modules):
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "__init__.py").write_text('"""Lessons."""\n')
    for name, text in modules.items():
        (tmp_path / "lessons" / f"{name}.py").write_text(text)


def _lesson_notebook(content):
    nb = skeleton(7, content=content)
    nb.cells[5].source = "from academy_lessons import n07_synthetic as lesson\n" + nb.cells[5].source
    return nb


def test_a_notebook_without_its_lesson_module_is_named(tmp_path):
    """Does a notebook whose lesson module is missing from lessons/ get a problem naming the module to add?"""
    _with_lessons(tmp_path, {"n03_other": LESSON_SOURCE})
    problems = problems_of(tmp_path, skeleton(7))
    assert "no lesson module academy_lessons.n07_synthetic: add lessons/n07_synthetic.py" in problems
    importing = problems_of(tmp_path, _lesson_notebook("value = 1 + 1"))
    assert [p for p in importing if "academy_lessons" in p] == ["no lesson module academy_lessons.n07_synthetic: add lessons/n07_synthetic.py"]


def test_a_lesson_name_the_module_does_not_define_is_named(tmp_path):
    """Does `lesson.nonexistent` (or `from academy_lessons.m import missing`) fail, while names the module defines pass?"""
    _with_lessons(tmp_path, {"n07_synthetic": LESSON_SOURCE})
    nb = _lesson_notebook("lesson.check(2), lesson.STEPS, lesson.Helper(), lesson.torch\nlesson.nonexistent(2)")
    nb.cells[7].source += "\nfrom academy_lessons.n07_synthetic import check, missing"
    problems = problems_of(tmp_path, nb)
    assert problems == [
        "cell 7 (c07-07) names 'missing', which academy_lessons.n07_synthetic does not define",
        "cell 7 (c07-07) names 'nonexistent', which academy_lessons.n07_synthetic does not define",
    ]


def test_a_notebook_must_import_its_own_lesson_and_only_existing_ones(tmp_path):
    """Is a notebook that skips its own lesson module, or imports one that does not exist, reported?"""
    _with_lessons(tmp_path, {"n07_synthetic": LESSON_SOURCE})
    nb = skeleton(7)
    nb.cells[5].source = "from academy_lessons import n99_gone as lesson\n" + nb.cells[5].source
    problems = problems_of(tmp_path, nb)
    assert "does not import its lesson module: from academy_lessons import n07_synthetic as lesson" in problems
    assert "imports academy_lessons.n99_gone, which does not exist (lessons/n99_gone.py)" in problems


def test_module_names_are_read_without_importing(tmp_path):
    """Are a module's top-level names (under try/if too) read with ast, and a star import or __getattr__ left unchecked?"""
    path = tmp_path / "n07_synthetic.py"
    path.write_text(LESSON_SOURCE + "\nraise SystemExit('imported!')\n")
    assert {"torch", "STEPS", "check", "Helper"} <= lint.module_names(path)
    assert "answer" not in lint.module_names(path)
    path.write_text("from math import *\n")
    assert lint.module_names(path) is None
    path.write_text("def __getattr__(name):\n    return name\n")
    assert lint.module_names(path) is None


def test_the_curriculum_passes_the_lesson_rule_and_the_rule_bites():
    """Does every curriculum notebook have its lesson module and name only what it defines, and would a wrong name fail?"""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "notebooks"
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    assert len(notebooks) >= 13
    for path in notebooks:
        nb = lint.load(path)
        assert lint.lesson_problems(nb, path.name, folder / "lessons") == [], path.name
        broken = json.loads(json.dumps(nb).replace("lesson.", "lesson.zz_"))
        assert any("which academy_lessons.n" in p for p in lint.lesson_problems(broken, path.name, folder / "lessons")), path.name
