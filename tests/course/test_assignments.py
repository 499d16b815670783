"""Does the graded course (course/) release cleanly and grade exactly as designed?

Unmarked tests read the source notebooks only (metadata, points, messages, config: seconds). Tests marked
``grading`` build a temporary nbgrader course on the real nbgrader API with course/nbgrader_config.py,
release every assignment and autograde golden submissions (testbed/course_golden.py) in real kernels.
"""
from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets.config import Config, PyFileConfigLoader

from support.skip import need
from testbed.course_golden import (ASSIGNMENTS, COURSE_DIR, COURSE_ID, GOLDEN_CASES, POINTS, SOURCE_DIR, GoldenCase,
                           build_submission, make_submission, source_notebook)

NAMES = [a.name for a in ASSIGNMENTS]
ALL_CASES = [case for cases in GOLDEN_CASES.values() for case in cases]
SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
STUB = "raise NotImplementedError()"


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(str(source_notebook(name)), as_version=4)


def _test_cells(nb) -> dict[str, nbformat.NotebookNode]:
    return {_meta(c)["grade_id"]: c for c in nb.cells
            if c.cell_type == "code" and _meta(c).get("grade") and not _meta(c).get("solution")}


def _manual_cells(nb) -> dict[str, nbformat.NotebookNode]:
    return {_meta(c)["grade_id"]: c for c in nb.cells
            if _meta(c).get("task") or (c.cell_type == "markdown" and _meta(c).get("grade"))}


def _answer_cells(nb, cell_type: str = "code") -> dict[str, nbformat.NotebookNode]:
    return {_meta(c)["grade_id"]: c for c in nb.cells if c.cell_type == cell_type and _meta(c).get("solution")}


def _points(cells) -> float:
    return sum(float(_meta(c)["points"]) for c in cells.values())


def _fmt(points: float) -> str:
    return f"{points:g}"


def _course_config() -> Config:
    return PyFileConfigLoader("nbgrader_config.py", path=str(COURSE_DIR)).load_config()


# --- source notebooks: no kernel needed -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_has_valid_nbgrader_metadata(name):
    """Is the source notebook valid nbformat with schema-3 nbgrader metadata, unique ids and positive points?"""
    nb = _read(name)
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)
    ids = [_meta(c)["grade_id"] for c in nb.cells if _meta(c)]
    assert len(ids) == len(set(ids)), f"{name}: duplicate grade_ids {sorted(i for i in ids if ids.count(i) > 1)}"
    for cell in nb.cells:
        meta = _meta(cell)
        assert meta.get("schema_version") == 3, f"{name}: cell {cell.id} lacks nbgrader schema_version 3"
        if meta.get("grade") or meta.get("task"):
            assert float(meta["points"]) > 0, f"{name}: graded cell {meta['grade_id']} has no points"
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{name}: cell {cell.id} is committed with output"
    assert nb.metadata.kernelspec.name == "python3", f"{name}: kernelspec must be python3"
    tests = _test_cells(nb)
    assert all(_meta(c)["locked"] for c in tests.values()), f"{name}: autograder test cells must be locked"
    assert len(_answer_cells(nb)) >= 3, f"{name}: needs several autograded answer cells"
    assert all(SOLUTION_MARKERS[0] in c.source for c in _answer_cells(nb).values()), \
        f"{name}: every code answer cell needs a ### BEGIN SOLUTION region so the stub keeps the signature"
    hidden = [gid for gid, c in tests.items() if HIDDEN_MARKERS[0] in c.source]
    assert len(hidden) >= 3, f"{name}: expected hidden tests in most test cells, found them in {hidden}"
    stray = [c.id for c in nb.cells if HIDDEN_MARKERS[0] in c.source and c.id not in tests]
    assert not stray, f"{name}: hidden tests outside autograder test cells would not be removed: {stray}"
    assert _manual_cells(nb), f"{name}: needs at least one trainer-graded answer or task"


@pytest.mark.parametrize("name", NAMES)
def test_points_add_up_as_documented(name):
    """Do the cells' points match the notebook header, each question heading, the README and course_golden?"""
    nb = _read(name)
    expected = POINTS[name]
    auto, manual = _points(_test_cells(nb)), _points(_manual_cells(nb))
    assert (auto, manual) == (expected.autograded, expected.manual), \
        f"{name}: cells give {auto} autograded + {manual} manual points, course_golden documents " \
        f"{expected.autograded} + {expected.manual}"
    header = f"({_fmt(expected.total)} points: {_fmt(auto)} autograded, {_fmt(manual)} by your trainer)"
    assert header in nb.cells[0].source, f"{name}: first cell should state {header!r}"
    heading, stated, counted = None, 0.0, 0.0
    for cell in nb.cells + [nbformat.v4.new_markdown_cell("## end")]:
        found = re.match(r"## .*\((\d+) points?", cell.source) if cell.cell_type == "markdown" else None
        if cell.source.startswith("## "):
            assert heading is None or stated == counted, \
                f"{name}: heading {heading!r} promises {stated:g} points, its cells carry {counted:g}"
            heading, stated, counted = cell.source.splitlines()[0], float(found[1]) if found else 0.0, 0.0
        elif _meta(cell).get("grade") or _meta(cell).get("task"):
            counted += float(_meta(cell)["points"])
    row = rf"\| {name} \|.*\| {_fmt(auto)} \| {_fmt(manual)} \| {_fmt(expected.total)} \|"
    readme = (COURSE_DIR / "README.md").read_text()
    assert re.search(row, readme), f"course/README.md needs a table row for {name} with {auto:g} | {manual:g} | total"


@pytest.mark.parametrize("name", NAMES)
def test_every_assert_says_what_is_wrong(name):
    """Does every assert in the test cells, hidden ones included, carry a message for the learner?"""
    for grade_id, cell in _test_cells(_read(name)).items():
        tree = ast.parse(cell.source)
        silent = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None]
        assert not silent, f"{name}/{grade_id}: asserts without a message on lines {silent}"
        bare = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call) and not node.exc.args]
        assert not bare, f"{name}/{grade_id}: raise without a message on lines {bare}"


def test_course_config_reads_sources_from_the_repo(tmp_path):
    """Does the config keep the repo's source notebooks while all state follows whatever root is set?"""
    cfg = _course_config()
    assert "root" not in cfg.CourseDirectory, "nbgrader_config.py must leave CourseDirectory.root to the caller"
    cfg.CourseDirectory.root = str(tmp_path)
    coursedir = CourseDirectory(config=cfg)
    assert coursedir.course_id == COURSE_ID
    assert Path(coursedir.format_path(coursedir.source_directory, ".", NAMES[0])).resolve() == SOURCE_DIR / NAMES[0]
    assert Path(coursedir.format_path(coursedir.release_directory, ".", NAMES[0])).resolve() == \
        tmp_path / "release" / NAMES[0]
    assert coursedir.db_url == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert Execute(config=cfg).timeout == 30, "nbgrader's Execute should inherit ExecutePreprocessor.timeout"
    assert LimitOutput(config=cfg).max_lines == 200


def test_make_submission_rejects_unknown_cells():
    """Does make_submission name the real answer cells when given an id that is not one?"""
    path = source_notebook(NAMES[0])
    with pytest.raises(ValueError, match="answer cells are .*standardize"):
        make_submission(path, path, {"no_such_cell"})


@pytest.mark.parametrize("name", NAMES)
def test_golden_cases_are_consistent(name):
    """Does every golden case's expected score equal the autograded points minus the points of its failing tests?"""
    nb = _read(name)
    tests = _test_cells(nb)
    answers = set(_answer_cells(nb)) | set(_answer_cells(nb, "markdown"))
    cases = GOLDEN_CASES[name]
    assert {c.kind for c in cases} == {"solution", "blank", "partial"}, f"{name}: needs solution, blank and partials"
    assert len({c.student for c in cases}) == len(cases), f"{name}: golden student ids must be unique"
    for case in cases:
        assert case.failing <= set(tests), f"{case.case_id}: failing lists unknown tests {case.failing - set(tests)}"
        assert case.expected_score == POINTS[name].autograded - _points({g: tests[g] for g in case.failing}), \
            f"{case.case_id}: expected_score does not match the points of its failing tests"
        assert (case.wrong_cells | set(case.overrides)) <= answers, f"{case.case_id}: unknown answer cells"
        if case.kind == "blank":
            assert case.failing == set(tests), f"{case.case_id}: a blank notebook must fail every test"
        if case.kind == "partial":
            assert case.wrong_cells or case.overrides, f"{case.case_id}: a partial case must get something wrong"


# --- the real thing: release and autograde -----------------------------------------------------------


@dataclass(frozen=True)
class Course:
    """A temporary nbgrader course using course/nbgrader_config.py with its root moved to tmp."""

    root: Path
    config: Config
    api: NbGraderAPI

    def released(self, name: str) -> Path:
        return self.root / "release" / name / f"{name}.ipynb"


@dataclass(frozen=True)
class GradeReport:
    """What the gradebook says about one autograded submission."""

    code_score: float
    max_code_score: float
    written_score: float
    max_written_score: float
    needs_manual_grade: bool
    cell_scores: dict[str, float]
    seconds: float


def _has_python3_kernel() -> bool:
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return False
    return True


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        # nbgrader's Gradebook runs the `alembic` command when it creates a database; with an unactivated
        # venv that command is only found next to the interpreter.
        mp.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
        # One BLAS/OpenMP thread per kernel, as the pipeline's sandbox does: the workloads are tiny and
        # spinning thread pools on a busy 2-core runner make each scikit-learn fit many times slower.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.setenv(var, "1")
        need(shutil.which("alembic") is not None, "alembic command (nbgrader needs it to create a gradebook)")
        need(_has_python3_kernel(), "the python3 Jupyter kernel")
        root = tmp_path_factory.mktemp("ai-factory-101")
        cfg = _course_config()
        cfg.CourseDirectory.root = str(root)
        cfg.Exchange.root = str(root / "exchange")  # never touch a real exchange on this machine
        api = NbGraderAPI(config=cfg)
        for name in NAMES:
            result = api.generate_assignment(name)
            if not result["success"]:
                pytest.fail(f"generate_assignment {name} failed:\n{result.get('log', '')}\n{result.get('error', '')}")
        yield Course(root=root, config=cfg, api=api)


def _secret_lines(nb) -> set[str]:
    """Lines only instructors may see (solution regions, hidden tests, model answers) that occur nowhere else."""
    secret, public = set(), set()
    for cell in nb.cells:
        model_answer = cell.cell_type == "markdown" and _meta(cell).get("solution")
        inside = False
        for line in cell.source.splitlines():
            text = line.strip()
            if SOLUTION_MARKERS[0] in text or HIDDEN_MARKERS[0] in text:
                inside = True
            elif SOLUTION_MARKERS[1] in text or HIDDEN_MARKERS[1] in text:
                inside = False
            else:
                (secret if inside or model_answer else public).add(text)
    return {text for text in secret - public if len(text) >= 8}


@pytest.mark.grading
@pytest.mark.parametrize("name", NAMES)
def test_released_notebook_hides_solutions_and_hidden_tests(course, name):
    """Does the released notebook keep every cell but show no solution, model answer or hidden-test line?"""
    source, released = _read(name), nbformat.read(str(course.released(name)), as_version=4)
    assert [_meta(c).get("grade_id") for c in released.cells] == [_meta(c).get("grade_id") for c in source.cells]
    text = "\n".join(c.source for c in released.cells)
    for marker in SOLUTION_MARKERS + HIDDEN_MARKERS:
        assert marker not in text, f"{name}: released notebook still contains {marker!r}"
    leaked = _secret_lines(source) & {line.strip() for line in text.splitlines()}
    assert not leaked, f"{name}: released notebook leaks instructor-only lines: {sorted(leaked)[:5]}"
    assert len(_secret_lines(source)) >= 20, f"{name}: expected many instructor-only lines to check"
    for grade_id, cell in _answer_cells(released).items():
        assert STUB in cell.source, f"{name}/{grade_id}: released answer cell lacks the NotImplementedError stub"
    for grade_id, cell in _answer_cells(released, "markdown").items():
        assert cell.source == "YOUR ANSWER HERE", f"{name}/{grade_id}: released written answer shows text"


def _autograde(course: Course, case: GoldenCase, api: NbGraderAPI | None = None) -> GradeReport:
    api = api or course.api
    target = course.root / "submitted" / case.student / case.assignment / f"{case.assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build_submission(case, course.released(case.assignment)), str(target))
    start = time.perf_counter()
    result = api.autograde(case.assignment, case.student)
    seconds = time.perf_counter() - start
    if not result["success"]:
        pytest.fail(f"autograde {case.case_id} failed:\n{result.get('log', '')}\n{result.get('error', '')}")
    with Gradebook(api.coursedir.db_url, COURSE_ID) as gb:
        sub = gb.find_submission(case.assignment, case.student)
        nb_sub = gb.find_submission_notebook(case.assignment, case.assignment, case.student)
        return GradeReport(
            code_score=sub.code_score, max_code_score=sub.max_code_score,
            written_score=sub.written_score, max_written_score=sub.max_written_score,
            needs_manual_grade=sub.needs_manual_grade,
            cell_scores={grade.name: grade.score for grade in nb_sub.grades}, seconds=seconds,
        )


@pytest.mark.grading
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's own session handling
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.case_id)
def test_autograde_awards_the_golden_score(course, case, record_property):
    """Does nbgrader, with hidden tests restored, award this golden submission exactly its expected score?"""
    report = _autograde(course, case)
    record_property("autograde_seconds", round(report.seconds, 2))
    print(f"{case.case_id}: {report.code_score:g}/{report.max_code_score:g} in {report.seconds:.1f} s")
    tests = _test_cells(_read(case.assignment))
    scores = {gid: report.cell_scores[gid] for gid in tests}
    detail = f"{case.case_id} ({case.why}): per-test scores {scores}"
    assert report.max_code_score == POINTS[case.assignment].autograded, detail
    assert {gid for gid, score in scores.items() if score == 0} == case.failing, detail
    assert report.code_score == case.expected_score, detail
    assert report.max_written_score == POINTS[case.assignment].manual, detail
    if case.kind == "blank":
        assert report.written_score == 0 and not report.needs_manual_grade, \
            f"{detail}: an untouched written answer should score 0 without a trainer"
    else:
        assert report.needs_manual_grade, f"{detail}: a written answer must wait for the trainer"


@pytest.mark.grading
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_endless_loop_costs_only_its_own_question(course):
    """Does a cell that hits the per-cell timeout score 0 while every other question is still graded?"""
    cfg = copy.deepcopy(course.config)
    cfg.ExecutePreprocessor.timeout = 3  # the committed 30 s would make this test needlessly slow
    looping = GoldenCase("a1_numpy_foundations", "endless_loop", "partial", 12, frozenset({"test_standardize"}),
                         "an endless loop in standardize", overrides={"standardize": "def standardize(X):\n"
                                                                      "    while True:\n        pass"})
    report = _autograde(course, looping, api=NbGraderAPI(config=cfg))
    assert report.cell_scores["test_standardize"] == 0, f"the looping question must score 0: {report.cell_scores}"
    assert report.code_score == looping.expected_score, f"other questions must keep their points: {report.cell_scores}"
