"""Execute notebooks in parallel, each in a killable worker subprocess with a time limit.

Each notebook runs with its working directory set to a private temporary copy of its
own folder (so support files beside it are there, and a notebook that writes files
leaves the repository clean), with
``ACADEMY_PROGRESS_FILE`` and ``ACADEMY_WORKDIR`` pointing into scratch (so CI never
touches a real learner's progress or ~/academy-work), and with BLAS/OpenMP threads
capped per kernel so parallel kernels do not oversubscribe the cores. Threads here only
wait on subprocesses; the notebooks' CPU work happens in their kernels.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from academy.curriculum import lint
from academy.curriculum.collect import collect
from academy.curriculum.results import CellError, NotebookResult, RunOptions, Status, Target
from academy.home import AUTHOR_ONLY
from academy.learn import PROGRESS_ENV

WORKDIR_ENV = "ACADEMY_WORKDIR"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
BUSY_CPU = 10.0  # percent of a core over a second: more than a process waiting on a sleep or a socket uses
# What never belongs in a working copy. The Academy's lessons read only data beside them;
# a trainer's notebook may %run a notebook beside it, so theirs keep other notebooks.
_SKIP = (".ipynb_checkpoints", "__pycache__", ".git", ".hg", ".svn")
_COPY_IGNORE_HOUSE = shutil.ignore_patterns("*.ipynb", *_SKIP)
_COPY_IGNORE = shutil.ignore_patterns(*_SKIP)


def _copy_ignore(target: Target) -> Callable[[str, list[str]], set[str]]:
    """What a working copy leaves out; the house's also lacks ``lessons/``, as a learner's home does."""
    if not target.house:
        return _COPY_IGNORE
    top = target.path.parent

    def ignore(folder: str, names: list[str]) -> set[str]:
        skipped = set(_COPY_IGNORE_HOUSE(folder, names))
        return skipped | (AUTHOR_ONLY & set(names)) if Path(folder) == top else skipped

    return ignore


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


def kill_tree(pid: int, also: list[psutil.Process] | None = None) -> None:
    """SIGKILL a worker and everything below it: the kernel runs in its own session, so
    killing the worker's process group alone would leave a hung kernel spinning.
    ``also``: processes found below it earlier (a worker that exited leaves its kernel orphaned)."""
    victims = list(also or [])
    try:
        parent = psutil.Process(pid)
        victims += parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        pass
    for proc in victims:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)


def installed_kernels() -> set[str]:
    from jupyter_client.kernelspec import KernelSpecManager

    return set(KernelSpecManager().find_kernel_specs())


def run_notebooks(
    notebooks: list[Target] | list[Path],
    options: RunOptions,
    *,
    expected_seconds: dict[str, float] | None = None,
    on_start: Callable[[Path], None] | None = None,
    on_done: Callable[[NotebookResult], None] | None = None,
) -> list[NotebookResult]:
    """Lint and execute ``notebooks`` ``options.jobs`` at a time; results in the order given.

    A plain ``Path`` is a notebook of the Academy's curriculum (named by its stem).
    Longest first shortens the parallel wall time (no long notebook left alone at the
    end): ``expected_seconds`` (from an earlier run) gives the order; notebooks without
    history go first, latest first, because later lessons train bigger models.
    On an interrupt every worker is killed and the interrupt re-raised; ``on_done`` has
    by then seen every result that finished.
    """
    targets = [Target.of(nb) for nb in notebooks]
    expected = expected_seconds or {}
    position = {t: i for i, t in enumerate(targets)}
    schedule = sorted(targets, key=lambda t: (-expected.get(t.name, float("inf")), -position[t]))
    if options.keep_dir is not None:
        options.keep_dir.mkdir(parents=True, exist_ok=True)
        for t in targets:  # a stale failure from an earlier run must not look current
            _kept_path(options.keep_dir, t).unlink(missing_ok=True)
    kernels = installed_kernels()
    active = _Active()
    results: dict[Target, NotebookResult] = {}
    pool = ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="curriculum")
    try:
        futures = {pool.submit(_run_one, t, options, active, on_start, kernels): t for t in schedule}
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
    return [results[t] for t in targets]


def _kept_path(keep_dir: Path, target: Target) -> Path:
    # A name is relative to the folder given, or the path as given: never let it climb out of keep_dir.
    parts = [p for p in Path(target.name).parts if p not in ("..", ".") and p != Path(target.name).anchor]
    name = "/".join(parts) or target.path.name
    return keep_dir / (name if name.endswith(".ipynb") else f"{name}.ipynb")


def _problems(target: Target, nb: dict, options: RunOptions) -> list[str]:
    """House rules for the Academy's curriculum (or with --lint); only --require-clean for the rest."""
    if options.lint if options.lint is not None else target.house:
        return lint.clean_problems(nb) + lint.skeleton_problems(nb, target.path.name)
    return lint.output_problems(nb) if options.require_clean else []


def _missing_kernel(nb: dict, options: RunOptions, kernels: set[str]) -> CellError | None:
    if options.kernel is not None:
        if options.kernel in kernels:
            return None
        return CellError("NoSuchKernel", f"--kernel {options.kernel!r} is not installed here (installed: {', '.join(sorted(kernels)) or 'none'})")
    wanted = (nb.get("metadata", {}).get("kernelspec") or {}).get("name") or "python3"
    if wanted in kernels:
        return None
    return CellError(
        "NoSuchKernel",
        f"the notebook asks for kernel {wanted!r}, which is not installed here "
        f"(installed: {', '.join(sorted(kernels)) or 'none'}); run with --kernel NAME to use another",
    )


def _run_one(target: Target, options: RunOptions, active: _Active, on_start: Callable[[Path], None] | None, kernels: set[str]) -> NotebookResult:
    notebook = target.path
    try:
        committed = lint.load(notebook)
    except (OSError, ValueError) as exc:
        return NotebookResult(target.name, notebook, Status.ERROR, error=CellError("NotANotebook", str(exc)))
    problems = _problems(target, committed, options)
    if active.stopping.is_set():
        return NotebookResult(target.name, notebook, Status.ERROR, problems=problems, error=CellError("Interrupted", ""))
    missing = _missing_kernel(committed, options, kernels)
    if missing is not None:
        return NotebookResult(target.name, notebook, Status.ERROR, problems=problems, error=missing)
    if on_start is not None:
        on_start(notebook)
    job = _Job(notebook, Path(tempfile.mkdtemp(prefix="academy-nb-")))
    try:
        shutil.copytree(notebook.parent, job.cwd, ignore=_copy_ignore(target))
        started = time.monotonic()
        hang = _execute(job, options, active)
        seconds = time.monotonic() - started
        result = NotebookResult(target.name, notebook, Status.PASS, seconds=round(seconds, 2), problems=problems)
        collect(result, committed, output=job.output, outcome_path=job.result, log=job.log, timeout=options.timeout, hang=hang)
        if result.status not in (Status.PASS, Status.DIRTY) and options.keep_dir is not None and job.output.exists():
            result.kept = _kept_path(options.keep_dir, target)
            result.kept.parent.mkdir(parents=True, exist_ok=True)
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
    """Run the worker for ``job``; when it hit the time limit, say how it looked, let it write
    what ran (the running cell included), then kill it and its kernel."""
    spec = {
        "input": str(job.notebook.resolve()),
        "output": str(job.output),
        "cwd": str(job.cwd),
        "parameters": options.parameters,
        "kernel": options.kernel,
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
        try:
            below = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            below = []
        diagnosis = diagnose_hang(proc.pid, below)
        proc.send_signal(signal.SIGTERM)  # the worker writes its snapshot and exits
        try:
            proc.wait(timeout=options.snapshot_grace)
        except subprocess.TimeoutExpired:
            pass
        kill_tree(proc.pid, below)
        proc.wait()
        return diagnosis
    finally:
        active.discard(proc)


def diagnose_hang(worker_pid: int, below: list[psutil.Process]) -> str:
    """Say where a timed-out notebook's time was going: the kernel computing, the kernel idle, or the runner.

    A busy kernel means the notebook is too slow for the limit; an idle kernel with an
    idle runner means the cell is waiting (on a sleep, input, or a lost message), which no
    limit will fix; a busy runner means the time went into the runner itself.
    """
    try:
        worker = psutil.Process(worker_pid)
        kernels = [p for p in below if "ipykernel" in " ".join(p.cmdline())]
        for proc in [worker, *kernels]:
            proc.cpu_percent(None)
        time.sleep(1.0)
        runner_cpu = worker.cpu_percent(None)
        kernel_cpu = {k.pid: (k.status(), k.cpu_percent(None)) for k in kernels}
    except (psutil.Error, OSError) as exc:
        return f"no diagnosis: {exc}"
    states = [f"kernel {pid} {state} at {cpu:.0f}% CPU" for pid, (state, cpu) in kernel_cpu.items()]
    states.append(f"runner at {runner_cpu:.0f}% CPU over the last second")
    # Relative, not absolute: on a loaded machine a computing process may get a fifth of a core,
    # while a waiting one gets none.
    top_kernel = max((cpu for _, cpu in kernel_cpu.values()), default=0.0)
    if top_kernel >= BUSY_CPU and top_kernel >= runner_cpu:
        verdict = "the kernel was computing: too slow for the limit"
    elif runner_cpu >= BUSY_CPU:
        verdict = "the runner itself was busy, not the kernel"
    elif kernels:
        verdict = "kernel and runner idle: the cell was waiting (a sleep, input, or a lost message)"
    else:
        verdict = "no kernel process was running"
    return f"{verdict}; " + ", ".join(states)
