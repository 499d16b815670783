"""Lesson 12 support: write, submit and follow a Slurm batch job from a notebook (argument lists only), run torchrun, and the exercises."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from academy.learn import exercise

NOTEBOOK = "12_notebook_to_batch_job"
SCRIPT_SOURCE = Path(__file__).with_name("n12_ddp_train.py")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_TIME_RE = re.compile(r"^(?:\d{1,2}-)?\d{1,2}:\d{2}:\d{2}$")
_MEM_RE = re.compile(r"^\d{1,6}[KMG]$")
_JOB_ID_RE = re.compile(r"^(\d+)(?:;\S*)?$")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


def new_run_dir(base: Path) -> Path:
    """A fresh directory per run (time stamp and process id), so two runs never read each other's files."""
    stem = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    Path(base).mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        run = Path(base) / (stem if n == 0 else f"{stem}-{n}")
        try:
            run.mkdir()
            return run
        except FileExistsError:
            continue  # the same kernel ran the cell twice within one second
    raise RuntimeError(f"could not create a new run directory under {base}")


def write_script(workdir: Path) -> Path:
    """Copy the lesson's standalone training script into ``workdir`` (where a batch job can read it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / "train_ddp.py"
    shutil.copyfile(SCRIPT_SOURCE, target)
    return target


# ---------------------------------------------------------------- the batch script

@dataclass
class BatchSpec:
    """What a job asks Slurm for, checked before any of it reaches a script."""

    job_name: str = "academy-12"
    time: str = "00:10:00"
    cpus: int = 2
    mem: str = "2G"
    gpus: int = 0
    partition: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.job_name):
            raise ValueError(f"job name {self.job_name!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if not _TIME_RE.fullmatch(self.time):
            raise ValueError(f"time {self.time!r}: use HH:MM:SS or D-HH:MM:SS")
        if not _MEM_RE.fullmatch(self.mem):
            raise ValueError(f"mem {self.mem!r}: use a number with K, M or G, e.g. 4G")
        if not 1 <= int(self.cpus) <= 256:
            raise ValueError(f"cpus must be between 1 and 256, got {self.cpus}")
        if not 0 <= int(self.gpus) <= 8:
            raise ValueError(f"gpus must be between 0 and 8, got {self.gpus}")
        if self.partition is not None and not _NAME_RE.fullmatch(self.partition):
            raise ValueError(f"partition {self.partition!r}: use letters, digits, '.', '_' or '-'")


def render_batch_script(spec: BatchSpec, workdir: Path, command: list[str]) -> str:
    """A bash batch script; the command is quoted word by word, so no argument can become shell code."""
    workdir = Path(workdir).resolve()
    if "\n" in str(workdir) or any("\n" in c for c in command):
        raise ValueError("paths and arguments may not contain newlines")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={spec.job_name}",
        f"#SBATCH --output={workdir}/slurm-%j.out",
        f"#SBATCH --time={spec.time}",
        "#SBATCH --ntasks=1",
        f"#SBATCH --cpus-per-task={int(spec.cpus)}",
        f"#SBATCH --mem={spec.mem}",
    ]
    if spec.gpus:
        lines.append(f"#SBATCH --gpus={int(spec.gpus)}")
    if spec.partition:
        lines.append(f"#SBATCH --partition={spec.partition}")
    lines += [
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        'echo "job $SLURM_JOB_ID on $(hostname) started $(date -Is)"',
        shlex.join(command),
        'echo "finished $(date -Is)"',
        "",
    ]
    return "\n".join(lines)


def batch_script_preview(job_name: str, minutes: int, cpus: int, mem_gb: int, gpus: int) -> str:
    """The widget's callback: the script these choices produce, or the one-line reason they are rejected."""
    try:
        spec = BatchSpec(job_name=job_name, time=f"{minutes // 60:02d}:{minutes % 60:02d}:00", cpus=cpus, mem=f"{mem_gb}G", gpus=gpus)
    except ValueError as exc:
        return f"# rejected: {exc}"
    return render_batch_script(spec, Path("~/academy-work/12_batch").expanduser(),
                               ["python", "train_ddp.py", "--steps", "2000", "--out", "result.json"])


def batch_script_builder():
    """Controls for name, time, CPUs, memory and GPUs with a live preview of the batch script."""
    import ipywidgets as widgets

    name = widgets.Text(value="academy-12", description="job name")
    minutes = widgets.IntSlider(value=10, min=1, max=240, description="minutes")
    cpus = widgets.IntSlider(value=2, min=1, max=32, description="CPUs")
    mem = widgets.IntSlider(value=4, min=1, max=256, description="mem (GB)")
    gpus = widgets.IntSlider(value=0, min=0, max=4, description="GPUs")
    preview = widgets.Textarea(layout=widgets.Layout(width="95%", height="260px"), disabled=True)
    box = widgets.VBox([widgets.HBox([name, minutes]), widgets.HBox([cpus, mem, gpus]), preview])

    def redraw(_change: Any = None) -> None:
        preview.value = batch_script_preview(name.value, minutes.value, cpus.value, mem.value, gpus.value)

    for w in (name, minutes, cpus, mem, gpus):
        w.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- talking to Slurm

def _slurm_env() -> dict[str, str]:
    # A notebook server is itself a Slurm job: its SLURM_* variables (memory, GPUs, job id)
    # must not leak into the new job's submission. SLURM_CONF says where the cluster is, so it stays.
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") or k == "SLURM_CONF"}


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_slurm_env())


@dataclass
class SlurmCheck:
    available: bool
    reason: str


def slurm_status() -> SlurmCheck:
    """Is there a Slurm cluster we can submit to? ``sbatch`` on PATH is not enough: the controller must answer."""
    if shutil.which("sbatch") is None:
        return SlurmCheck(False, "sbatch is not on PATH: this server is not a Slurm login or compute node")
    try:
        done = _run(["sinfo", "--noheader", "--format=%P %a"], timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SlurmCheck(False, f"sinfo did not answer: {exc}")
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return SlurmCheck(False, f"sbatch is installed but no Slurm controller answers ({first})")
    return SlurmCheck(True, "partitions: " + ", ".join(done.stdout.split()[::2]))


def parse_job_id(output: str) -> str:
    """The job id from ``sbatch --parsable`` output (``123`` or ``123;cluster``)."""
    text = output.strip()
    m = _JOB_ID_RE.match(text)
    if not m:
        raise ValueError(f"sbatch did not print a job id: {text[:200]!r}")
    return m.group(1)


def submit(script: Path) -> str:
    """``sbatch --parsable SCRIPT`` as an argument list; returns the job id or raises with sbatch's message."""
    done = _run(["sbatch", "--parsable", str(script)])
    if done.returncode != 0:
        raise RuntimeError(f"sbatch failed: {done.stderr.strip() or done.stdout.strip()}")
    return parse_job_id(done.stdout)


def job_state(job_id: str) -> str:
    """PENDING/RUNNING from squeue while the job is queued; the final state from sacct, or scontrol without accounting."""
    if not job_id.isdigit():
        raise ValueError(f"not a job id: {job_id!r}")
    q = _run(["squeue", "--noheader", "--jobs", job_id, "--format=%T"])
    if q.returncode == 0 and q.stdout.strip():
        return q.stdout.split()[0]
    a = _run(["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", job_id, "--format=State"])
    if a.returncode == 0 and a.stdout.strip():
        return a.stdout.split()[0].split()[0]
    # Clusters without accounting still remember finished jobs for a few minutes (MinJobAge).
    c = _run(["scontrol", "show", "job", job_id])
    m = re.search(r"JobState=(\w+)", c.stdout)
    return m.group(1) if m else "UNKNOWN"


@dataclass
class JobOutcome:
    job_id: str
    state: str
    seconds: float
    states_seen: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"


def wait_for(job_id: str, timeout: float, poll: float = 2.0) -> JobOutcome:
    """Poll until the job reaches a final state; on timeout cancel it so it does not run unattended."""
    start = time.monotonic()
    seen: list[str] = []
    while True:
        state = job_state(job_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in FINAL_STATES:
            return JobOutcome(job_id, state, time.monotonic() - start, seen)
        if time.monotonic() - start > timeout:
            _run(["scancel", job_id])
            return JobOutcome(job_id, "TIMEOUT_WAITING", time.monotonic() - start, seen)
        time.sleep(poll)


# ---------------------------------------------------------------- running locally

@dataclass
class LocalRun:
    returncode: int
    seconds: float
    log: str
    result: dict | None


def run_local(command: list[str], cwd: Path, result_path: Path, timeout: float = 600, echo: bool = False) -> LocalRun:
    """Run a command (argument list) in ``cwd``; the result JSON counts only when this run succeeded and wrote it.

    With ``echo`` each output line is printed as it arrives (torchrun's thread banner left out), so a
    training run shows its progress while the notebook waits instead of only at the end.
    """
    result_path = Path(cwd) / result_path
    # A result left by an earlier run must never pass for this one's.
    result_path.unlink(missing_ok=True)
    start = time.perf_counter()
    lines: list[str] = []
    timed_out = threading.Event()
    # Its own session, so a timeout kills every rank torchrun started, not just torchrun.
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", start_new_session=True) as process:
        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished just as time ran out
                pass

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            for line in process.stdout:
                lines.append(line)
                if echo and not _torchrun_banner(line):
                    print(line, end="", flush=True)
            code = process.wait()
        finally:
            watchdog.cancel()
    log = "".join(lines)
    if timed_out.is_set():
        code, log = -1, f"timed out after {timeout} s\n{log}"
    result = json.loads(result_path.read_text()) if code == 0 and result_path.exists() else None
    return LocalRun(code, time.perf_counter() - start, log, result)


def _torchrun_banner(line: str) -> bool:
    """torchrun's starred notice that it set OMP_NUM_THREADS=1: noise next to the training's own lines."""
    return line.startswith("*") or "OMP_NUM_THREADS" in line


@dataclass
class LocalJob:
    """A command running in the background with its output going to a log file, the way a batch job does."""

    process: subprocess.Popen
    log_path: Path
    result_path: Path
    started: float

    def wait(self, timeout: float = 600) -> LocalRun:
        """Wait for the command; past ``timeout`` its whole process group is killed so nothing runs on unattended."""
        try:
            code = self.process.wait(timeout=max(0.0, timeout - (time.perf_counter() - self.started)))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            code = -1
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if code == -1:
            log += f"\nkilled after {timeout} s"
        result = json.loads(self.result_path.read_text()) if code == 0 and self.result_path.exists() else None
        return LocalRun(code, time.perf_counter() - self.started, log, result)


def start_local(command: list[str], cwd: Path, log_path: Path, result_path: Path) -> LocalJob:
    """Start a command (argument list) in the background, stdout and stderr into ``log_path`` (relative to ``cwd``)."""
    cwd = Path(cwd)
    log_path, result_path = cwd / log_path, cwd / result_path
    result_path.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        # Its own session, so a timeout can kill the command together with any children it started.
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return LocalJob(process, log_path, result_path, time.perf_counter())


def torchrun_command(script: Path, nproc: int, args: list[str]) -> list[str]:
    """``torchrun --standalone`` through this kernel's Python, so the same environment runs every rank."""
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", str(script), *args]


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "sbatch_command", title="Submitting without a shell",
    hint="Return a list: the program, then each option and argument as its own element. The path stays one element, spaces and all.",
    solution="```python\ndef sbatch_command(script_path):\n    return [\"sbatch\", \"--parsable\", str(script_path)]\n```",
)
def sbatch_command_exercise(fn) -> str:
    path = Path("/home/learner/my runs/job;rm -rf ~.sh")
    got = fn(path)
    if isinstance(got, str):
        raise AssertionError("That is one string: run through a shell, the space and the ';' in this path would split it "
                             "and run 'rm -rf ~'. Return a list of arguments instead.")
    assert isinstance(got, (list, tuple)), f"Return a list of strings, not {type(got).__name__}."
    got = [str(x) for x in got]
    assert got and got[0] == "sbatch", "The first element is the program to run: 'sbatch'."
    assert str(path) in got, "The script path should appear as ONE element, exactly as given (do not quote or split it)."
    assert "--parsable" in got, "Add '--parsable' so sbatch prints just the job id, which is easy to read back."
    assert got[-1] == str(path), "Options go before the script path; anything after it is passed to the script itself."
    return "subprocess.run(that_list) never starts a shell, so no file name can become a command."


@exercise(
    NOTEBOOK, "parse_job_id", title="Reading the job id",
    hint="sbatch --parsable prints 'JOBID' or 'JOBID;CLUSTER' and a newline. Strip, split on ';', check the first part is all digits, "
         "and raise ValueError otherwise.",
    solution="```python\ndef parse_job_id(output):\n    first = output.strip().split(';')[0]\n    if not first.isdigit():\n"
             "        raise ValueError(f'no job id in {output!r}')\n    return first\n```",
)
def parse_job_id_exercise(fn) -> str:
    for text, want in [("4242\n", "4242"), ("17;academy\n", "17"), ("  903  ", "903")]:
        got = fn(text)
        assert str(got) == want, f"For sbatch output {text!r} the job id is {want!r}, you returned {got!r}."
    for bad in ["sbatch: error: invalid partition specified: gpu", ""]:
        try:
            got = fn(bad)
        except ValueError:
            continue
        except Exception as exc:  # the learner's code may fail in any way; say what we expected
            raise AssertionError(f"For {bad!r} raise ValueError, not {type(exc).__name__}.") from None
        raise AssertionError(f"For the error output {bad!r} you returned {got!r}: raise ValueError so a failed "
                             "submission is never mistaken for a job.")
    return None


@exercise(
    NOTEBOOK, "shard", title="Sharding data across ranks",
    hint="Rank r can take every world_size-th index, starting at r: range(rank, n, world_size).",
    solution="```python\ndef shard_indices(n, rank, world_size):\n    return list(range(rank, n, world_size))\n```",
)
def shard_exercise(fn) -> str:
    for n, world in [(10, 2), (12, 3), (7, 4)]:
        shards = [list(fn(n, r, world)) for r in range(world)]
        flat = [i for s in shards for i in s]
        if len(flat) > len(set(flat)):
            raise AssertionError(f"With n={n} and {world} ranks some indices go to two ranks: each sample should be seen once per epoch.")
        assert sorted(flat) == list(range(n)), f"With n={n} and {world} ranks the shards together should cover 0..{n - 1} exactly once."
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1, f"Shard sizes {sizes} are unbalanced: the slowest rank would hold everyone up."
    return "DistributedSampler does the same, after shuffling the indices with a seed shared by all ranks."
