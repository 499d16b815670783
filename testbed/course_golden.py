"""Golden submissions for the graded course: student notebooks built from the source, and their exact scores.

Shared by tests/course/test_assignments.py (the course content), the ``academy course`` pipeline tests and benchmarks/autograde.py,
so both grade the same notebooks against the same numbers. A case's ``expected_score`` is worked out by hand
from the notebook (which test cells a wrong answer breaks); a fast test checks it equals the autograded total
minus the points of ``failing``, and the grading tests check nbgrader really awards it.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPO = Path(__file__).resolve().parents[1]
COURSE_DIR = REPO / "course"
SOURCE_DIR = COURSE_DIR / "source"
COURSE_ID = "ai-factory-101"

_SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


@dataclass(frozen=True)
class AssignmentPoints:
    """The points an assignment is worth, as documented in course/README.md."""

    name: str
    autograded: float
    manual: float

    @property
    def total(self) -> float:
        return self.autograded + self.manual


ASSIGNMENTS: tuple[AssignmentPoints, ...] = (
    AssignmentPoints("a1_numpy_foundations", autograded=16, manual=4),
    AssignmentPoints("a2_ml_pipeline", autograded=16, manual=4),
    AssignmentPoints("a3_pytorch_training", autograded=16, manual=4),
    AssignmentPoints("a4_attention", autograded=16, manual=4),
)
POINTS = {a.name: a for a in ASSIGNMENTS}


@dataclass(frozen=True)
class GoldenCase:
    """One submission and the autograded score nbgrader must give it.

    kind "solution" submits the instructor's source notebook unchanged, "blank" the released notebook
    unchanged, "partial" a released notebook answered from the source except ``wrong_cells`` (left as
    released) and ``overrides`` (answer cells replaced by the given plausible-but-wrong code).
    """

    assignment: str
    student: str
    kind: str
    expected_score: float
    failing: frozenset[str]
    why: str
    wrong_cells: frozenset[str] = frozenset()
    overrides: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def case_id(self) -> str:
        return f"{self.assignment}-{self.student}"


_NAIVE_SOFTMAX = '''\
def softmax(z, axis=-1):
    """Turn scores into probabilities along `axis`."""
    exps = np.exp(z)
    return exps / exps.sum(axis=axis, keepdims=True)'''

_SHARED_PIPELINE = '''\
_pipeline = Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])


def build_pipeline():
    """Return a new, unfitted scaler + logistic-regression pipeline."""
    return _pipeline'''

_LINEAR_MODEL = '''\
def make_model():
    """Return a fresh network from 2 input features to 2 class logits."""
    return nn.Sequential(nn.Linear(2, 32), nn.Linear(32, 2))'''

_UNBATCHED_SCORES = '''\
def attention_scores(Q, K):
    """Scaled dot products of every query with every key: shape (..., n_q, n_k)."""
    return Q @ K.T / np.sqrt(Q.shape[-1])'''

_TESTS = {
    "a1_numpy_foundations": frozenset({"test_standardize", "test_distances", "test_softmax",
                                       "test_softmax_stable", "test_one_hot"}),
    "a2_ml_pipeline": frozenset({"test_split", "test_pipeline", "test_cv", "test_grid", "test_final"}),
    "a3_pytorch_training": frozenset({"test_model", "test_train_step", "test_train", "test_accuracy", "test_run"}),
    "a4_attention": frozenset({"test_scores", "test_mask", "test_attention", "test_attention_reference",
                               "test_heads"}),
}


def _standard_cases(assignment: str) -> tuple[GoldenCase, GoldenCase]:
    full = POINTS[assignment].autograded
    return (
        GoldenCase(assignment, "solution", "solution", full, frozenset(),
                   "the instructor's source notebook earns every autograded point"),
        GoldenCase(assignment, "blank", "blank", 0, _TESTS[assignment],
                   "an untouched released notebook earns nothing"),
    )


GOLDEN_CASES: dict[str, tuple[GoldenCase, ...]] = {
    "a1_numpy_foundations": _standard_cases("a1_numpy_foundations") + (
        GoldenCase("a1_numpy_foundations", "skipped_standardize", "partial", 12, frozenset({"test_standardize"}),
                   "one unanswered question costs exactly its own points",
                   wrong_cells=frozenset({"standardize"})),
        GoldenCase("a1_numpy_foundations", "naive_softmax", "partial", 14, frozenset({"test_softmax_stable"}),
                   "a softmax that overflows passes the visible tests but not the hidden stability test",
                   overrides={"softmax": _NAIVE_SOFTMAX}),
    ),
    "a2_ml_pipeline": _standard_cases("a2_ml_pipeline") + (
        GoldenCase("a2_ml_pipeline", "skipped_grid_search", "partial", 10, frozenset({"test_grid", "test_final"}),
                   "skipping the search also breaks question 5, which needs best_C",
                   wrong_cells=frozenset({"grid_search"})),
        GoldenCase("a2_ml_pipeline", "shared_pipeline", "partial", 12, frozenset({"test_pipeline"}),
                   "returning one shared pipeline passes the visible tests but not the hidden freshness test",
                   overrides={"build_pipeline": _SHARED_PIPELINE}),
    ),
    "a3_pytorch_training": _standard_cases("a3_pytorch_training") + (
        GoldenCase("a3_pytorch_training", "skipped_accuracy", "partial", 10, frozenset({"test_accuracy", "test_run"}),
                   "without accuracy() the final run cannot report val_accuracy either",
                   wrong_cells=frozenset({"accuracy"})),
        GoldenCase("a3_pytorch_training", "linear_model", "partial", 9, frozenset({"test_model", "test_run"}),
                   "a model without a non-linearity passes the shape tests but cannot learn the rings",
                   overrides={"make_model": _LINEAR_MODEL}),
    ),
    "a4_attention": _standard_cases("a4_attention") + (
        GoldenCase("a4_attention", "skipped_heads", "partial", 12, frozenset({"test_heads"}),
                   "one unanswered question costs exactly its own points",
                   wrong_cells=frozenset({"heads"})),
        GoldenCase("a4_attention", "unbatched_scores", "partial", 6,
                   frozenset({"test_scores", "test_attention", "test_attention_reference"}),
                   "scores that only work for one sequence pass the visible tests but fail every hidden batched test",
                   overrides={"scores": _UNBATCHED_SCORES}),
    ),
}


def source_notebook(assignment: str) -> Path:
    """Path of an assignment's instructor notebook in the repository."""
    return SOURCE_DIR / assignment / f"{assignment}.ipynb"


def strip_solution_markers(source: str) -> str:
    """The answer a student would write: the solution cell without nbgrader's solution delimiters."""
    return "\n".join(line for line in source.split("\n") if line.strip() not in _SOLUTION_MARKERS)


def _answer_cells(nb: NotebookNode) -> dict[str, NotebookNode]:
    return {cell.metadata["nbgrader"]["grade_id"]: cell for cell in nb.cells
            if cell.metadata.get("nbgrader", {}).get("solution")}


def make_submission(source_nb_path: Path | str, released_nb_path: Path | str, wrong_cells: Set[str],
                    *, overrides: Mapping[str, str] | None = None) -> NotebookNode:
    """A student copy of the released notebook with every answer cell solved except ``wrong_cells``.

    Answer cells are the nbgrader solution cells (code and written). Those in ``wrong_cells`` keep the
    released stub, those in ``overrides`` get the given source, all others get the source notebook's answer.
    Everything else (cell ids, checksums, locked cells) stays as released, as in a real submission.
    """
    overrides = dict(overrides or {})
    source = nbformat.read(str(source_nb_path), as_version=4)
    released = nbformat.read(str(released_nb_path), as_version=4)
    answers = _answer_cells(source)
    unknown = (set(wrong_cells) | set(overrides)) - set(answers)
    if unknown:
        raise ValueError(f"not answer cells of {Path(source_nb_path).name}: {sorted(unknown)}; "
                         f"answer cells are {sorted(answers)}")
    submission = copy.deepcopy(released)
    for grade_id, cell in _answer_cells(submission).items():
        if grade_id in overrides:
            cell.source = overrides[grade_id]
        elif grade_id not in wrong_cells:
            cell.source = strip_solution_markers(answers[grade_id].source)
    return submission


def build_submission(case: GoldenCase, released_nb_path: Path | str) -> NotebookNode:
    """The notebook a golden case submits, given the released copy of its assignment."""
    if case.kind == "solution":
        return nbformat.read(str(source_notebook(case.assignment)), as_version=4)
    if case.kind == "blank":
        return nbformat.read(str(released_nb_path), as_version=4)
    if case.kind == "partial":
        return make_submission(source_notebook(case.assignment), released_nb_path, case.wrong_cells,
                               overrides=case.overrides)
    raise ValueError(f"unknown golden case kind {case.kind!r}: expected solution, blank or partial")
