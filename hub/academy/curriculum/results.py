"""Named records shared by the curriculum runner, its reports and its tests."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class Status(str, enum.Enum):
    """How one notebook fared. Only PASS counts as success."""

    PASS = "PASS"
    FAIL = "FAIL"  # a cell raised (including a broken learning-check assert)
    TIMEOUT = "TIMEOUT"  # the whole notebook ran past --timeout and its kernel was killed
    DIRTY = "DIRTY"  # it ran, but the committed file has outputs or breaks the skeleton
    ERROR = "ERROR"  # the runner itself could not execute it (no kernel, worker crashed)

    @property
    def ok(self) -> bool:
        return self is Status.PASS


@dataclass
class CellError:
    """The exception a notebook cell raised, as papermill's ``PapermillExecutionError`` carries it."""

    ename: str
    evalue: str
    traceback: str = ""  # ANSI colours stripped, frames joined with newlines

    def one_line(self) -> str:
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename


@dataclass(frozen=True)
class Target:
    """One notebook to run: its file, the name results carry, and whether house rules apply."""

    path: Path
    name: str  # the stem for the Academy's curriculum; the path relative to the given root otherwise
    house: bool = True  # the Academy's own curriculum: skeleton and parameters conventions are linted

    @classmethod
    def of(cls, item: "Target | Path") -> "Target":
        return item if isinstance(item, Target) else cls(Path(item), Path(item).stem, True)


@dataclass
class NotebookResult:
    """The outcome of linting and running one curriculum notebook."""

    name: str  # file stem, e.g. "03_classical_ml", or a trainer's "week1/intro.ipynb"
    path: Path
    status: Status
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: CellError | None = None
    failing_cell_source: str | None = None
    failing_cell_id: str | None = None  # from the notebook as committed; None when it has no ids
    failing_cell_index: int | None = None  # the notebook's own cell index (papermill's injected cell not counted)
    failing_cell_tags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # clean/skeleton problems from ``lint``
    kept: Path | None = None  # where the executed notebook of a failure was kept

    @property
    def ok(self) -> bool:
        return self.status.ok

    @property
    def learning_check_failed(self) -> bool:
        return "learning-check" in self.failing_cell_tags

    def cell_label(self) -> str:
        """The failing cell as a reader finds it: index, id (when the notebook has ids) and first line."""
        if self.failing_cell_index is None and not self.failing_cell_id:
            return "cell"
        label = "cell" if self.failing_cell_index is None else f"cell {self.failing_cell_index}"
        if self.failing_cell_id:
            label += f" [id {self.failing_cell_id}]"
        first = next((line.strip() for line in (self.failing_cell_source or "").splitlines() if line.strip()), "")
        if first:
            label += f" `{first[:80]}`"
        return label

    def summary(self) -> str:
        """One line saying why it did not pass (empty for a pass)."""
        if self.status is Status.PASS:
            return ""
        if self.status is Status.TIMEOUT:
            return self.error.one_line() if self.error else "timed out"
        if self.error is not None:
            prefix = "learning check failed: " if self.learning_check_failed else ""
            return prefix + self.error.one_line()
        if self.problems:
            return "; ".join(self.problems)
        return self.status.value


@dataclass
class RunOptions:
    """What ``run_notebooks`` needs besides the notebooks: parallelism, limits and parameters."""

    jobs: int = 1
    timeout: float = 300.0
    parameters: dict[str, Any] = field(default_factory=dict)
    keep_dir: Path | None = None
    threads_per_job: int | None = None  # BLAS/OpenMP threads per kernel; None leaves the environment alone
    lint: bool | None = None  # None: house rules for the Academy's curriculum only; True: for every notebook; False: none
    require_clean: bool = False  # committed outputs and execution counts fail any notebook, not only the Academy's
    kernel: str | None = None  # overrides every notebook's kernelspec
    start_timeout: float = 60.0
    snapshot_grace: float = 5.0  # seconds a timed-out worker gets to write what ran before it is killed

    def __post_init__(self) -> None:
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs must be a whole number of at least 1, not {self.jobs!r}")
        if not self.timeout or self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")
        if self.threads_per_job is not None and self.threads_per_job < 1:
            raise ValueError(f"threads per job must be at least 1, not {self.threads_per_job!r}")
