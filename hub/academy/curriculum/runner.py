"""Execute curriculum notebooks in parallel, each in a killable worker subprocess with a time limit.

Each notebook runs with its working directory set to a private temporary copy of
``notebooks/`` (so a lesson that writes files leaves the repository clean), with
``ACADEMY_PROGRESS_FILE`` and ``ACADEMY_WORKDIR`` pointing into scratch (so CI never
touches a real learner's progress or ~/academy-work), and with BLAS/OpenMP threads
capped per kernel so parallel kernels do not oversubscribe the cores. Threads here only
wait on subprocesses; the notebooks' CPU work happens in their kernels.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psutil

from academy.curriculum import lint
from academy.curriculum.results import CellError, NotebookResult, RunOptions, Status
from academy.learn import METRICS_MIME, PROGRESS_ENV

ERROR_MARKER_TAG = "papermill-error-cell-tag"
# Startup chatter every kernel prints; it would bury the line that explains a crash.
_LOG_NOISE = ("Kernel is running over TCP without encryption",)
WORKDIR_ENV = "ACADEMY_WORKDIR"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Only what a lesson may read at run time travels into the private working copy.
_COPY_IGNORE = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__", ".git")


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


@dataclass
class _Job:
    """One notebook's private scratch space."""

    notebook: Path
    scratch: Path

    @property
    def output(self) -> Path:
        return self.scratch / "executed.ipynb"

    @property
    def result(self) -> Path:
        return self.scratch / "result.json"

    @property
    def log(self) -> Path:
        return self.scratch / "worker.log"

    @property
    def cwd(self) -> Path:
        return self.scratch / "work"


class _Active:
    """Worker processes still running, so an interrupt can kill every one of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self.stopping = threading.Event()

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self) -> None:
        self.stopping.set()
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_tree(proc.pid)


def kill_tree(pid: int) -> None:
    """SIGKILL a worker and everything below it: the kernel runs in its own session, so
    killing the worker's process group alone would leave a hung kernel spinning."""
    try:
        parent = psutil.Process(pid)
        victims = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for proc in victims:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)


def run_notebooks(
    notebooks: list[Path],
    options: RunOptions,
    *,
    expected_seconds: dict[str, float] | None = None,
    on_start: Callable[[Path], None] | None = None,
    on_done: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Lint and execute ``notebooks`` ``options.jobs`` at a time; results in the order given.

    Longest first shortens the parallel wall time (no long notebook left alone at the
    end): ``expected_seconds`` (from an earlier run) gives the order; notebooks without
    history go first, latest lesson first, because later lessons train bigger models.
    """
    expected = expected_seconds or {}
    position = {nb: i for i, nb in enumerate(notebooks)}
    schedule = sorted(notebooks, key=lambda nb: (-expected.get(nb.stem, float("inf")), -position[nb]))
    if options.keep_dir is not None:
        options.keep_dir.mkdir(parents=True, exist_ok=True)
        for nb in notebooks:  # a stale failure from an earlier run must not look current
            (options.keep_dir / nb.name).unlink(missing_ok=True)
    active = _Active()
    results: dict[Path, NotebookResult] = {}
    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="curriculum")
    try:
        futures = {pool.submit(_run_one, nb, options, active, on_start): nb for nb in schedule}
        for future in as_completed(futures):
            result = future.result()
            results[futures[future]] = result
            if on_done is not None:
                on_done(result)
    except BaseException:
        active.kill_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[nb] for nb in notebooks]


def _run_one(notebook: Path, options: RunOptions, active: _Active, on_start: Callable[[Path], None] | None) -> NotebookResult:
    problems = lint.lint(notebook) if options.lint else []
    if active.stopping.is_set():
        return NotebookResult(notebook.stem, notebook, Status.ERROR, problems=problems, error=CellError("Interrupted", ""))
    if on_start is not None:
        on_start(notebook)
    job = _Job(notebook, Path(tempfile.mkdtemp(prefix=f"academy-{notebook.stem}-")))
    try:
        shutil.copytree(notebook.parent, job.cwd, ignore=_COPY_IGNORE)
        started = time.monotonic()
        hang = _execute(job, options, active)
        seconds = time.monotonic() - started
        result = _collect(job, options, seconds, hang, problems)
        if result.status not in (Status.PASS, Status.DIRTY) and options.keep_dir is not None and job.output.exists():
            result.kept = options.keep_dir / notebook.name
            shutil.copyfile(job.output, result.kept)
        return result
    finally:
        shutil.rmtree(job.scratch, ignore_errors=True)


def _worker_env(job: _Job, options: RunOptions) -> dict[str, str]:
    env = dict(os.environ)
    env[PROGRESS_ENV] = str(job.scratch / "progress.jsonl")
    # Lessons that keep results beside the learner's files (~/academy-work) honour this,
    # so a test run leaves the home directory as it found it.
    env[WORKDIR_ENV] = str(job.scratch / "academy-work")
    # debugpy's frozen-modules notice would otherwise land in every worker log.
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if options.threads_per_job is not None:
        # Two kernels each spinning a thread per core fight over the same cores; an
        # explicit setting in the caller's environment still wins.
        for var in THREAD_VARS:
            env.setdefault(var, str(options.threads_per_job))
    return env


def _execute(job: _Job, options: RunOptions, active: _Active) -> str | None:
    """Run the worker for ``job``; when it hit the time limit and was killed, say how the kernel looked."""
    spec = {
        "input": str(job.notebook.resolve()),
        "output": str(job.output),
        "cwd": str(job.cwd),
        "parameters": options.parameters,
        "start_timeout": options.start_timeout,
        "result": str(job.result),
    }
    spec_path = job.scratch / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    with open(job.log, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "academy.curriculum.worker", str(spec_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_worker_env(job, options),
            cwd=job.cwd,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the workers
        )
    active.add(proc)
    if active.stopping.is_set():  # interrupted while this worker was starting
        kill_tree(proc.pid)
    try:
        proc.wait(timeout=options.timeout)
        return None
    except subprocess.TimeoutExpired:
        diagnosis = diagnose_hang(proc.pid)
        kill_tree(proc.pid)
        proc.wait()
        return diagnosis
    finally:
        active.discard(proc)


def diagnose_hang(worker_pid: int) -> str:
    """Say whether a timed-out kernel was computing or idle.

    A busy kernel means the lesson is too slow for the limit; an idle one means the cell
    is waiting (on a sleep, on input, or on a lost message), which no limit will fix.
    """
    try:
        worker = psutil.Process(worker_pid)
        kernels = [p for p in worker.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
        for kernel in kernels:
            kernel.cpu_percent(None)
        time.sleep(1.0)
        states = [f"kernel {k.pid} {k.status()} at {k.cpu_percent(None):.0f}% CPU over the last second" for k in kernels]
    except (psutil.Error, OSError) as exc:
        return f"(no diagnosis: {exc})"
    return "; ".join(states) or "no kernel process was running"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or cut short by a kill mid-write
        return None


def notebook_metrics(nb: dict[str, Any]) -> dict[str, Any]:
    """Everything the notebook published with ``academy.learn.report`` (later values win)."""
    metrics: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            if isinstance(data.get(METRICS_MIME), dict):
                metrics.update(data[METRICS_MIME])
    return metrics


def _last_started_cell(nb: dict[str, Any]) -> int | None:
    """The cell papermill started last: the one running when the kernel hung or died.

    papermill saves the notebook as each cell starts, so this holds even after a kill.
    """
    started = [i for i, c in enumerate(nb.get("cells", [])) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def _log_tail(job: _Job, lines: int = 40) -> str:
    if not job.log.exists():
        return ""
    text = strip_ansi(job.log.read_text(errors="replace"))
    kept = [line for line in text.splitlines() if not any(noise in line for noise in _LOG_NOISE)]
    return "\n".join(kept[-lines:])


def _collect(job: _Job, options: RunOptions, seconds: float, hang: str | None, problems: list[str]) -> NotebookResult:
    result = NotebookResult(job.notebook.stem, job.notebook, Status.PASS, seconds=round(seconds, 2), problems=problems)
    executed = _read_json(job.output) or {}
    # papermill's error-marker cells are inserted after it computed the failing cell's index.
    executed["cells"] = [c for c in executed.get("cells", []) if ERROR_MARKER_TAG not in lint.tags(c)]
    result.metrics = notebook_metrics(executed)
    timed_out = hang is not None
    outcome = None if timed_out else _read_json(job.result)
    cell_index: int | None = None
    if timed_out:
        result.status = Status.TIMEOUT
        result.error = CellError(
            "Timeout", f"still running after {options.timeout:g} s ({hang}); its kernel was killed", _log_tail(job, 60)
        )
        cell_index = _last_started_cell(executed)
    elif outcome is None:
        result.status = Status.ERROR
        result.error = CellError("WorkerCrashed", "the notebook worker died without a result", _log_tail(job))
        cell_index = _last_started_cell(executed)
    elif not outcome["ok"]:
        err = outcome["error"]
        cell_index = err.get("cell_index")
        if cell_index is None:
            # Not an exception inside a cell (the kernel died, or never started): the worker's
            # log, which holds the kernel's stderr, says more than the worker's own traceback.
            cell_index = _last_started_cell(executed)
            result.error = CellError(err["ename"], strip_ansi(err["evalue"] or ""), _log_tail(job))
        else:
            result.error = CellError(err["ename"], strip_ansi(err["evalue"] or ""), strip_ansi("\n".join(err["traceback"] or [])))
            result.failing_cell_source = err.get("source") or None
        result.status = Status.FAIL if cell_index is not None else Status.ERROR
    elif problems:
        result.status = Status.DIRTY
    cells = executed.get("cells", [])
    if cell_index is not None and 0 <= cell_index < len(cells):
        cell = cells[cell_index]
        result.failing_cell_source = result.failing_cell_source or lint.source(cell)
        result.failing_cell_id = cell.get("id")
        result.failing_cell_tags = lint.tags(cell)
    return result
