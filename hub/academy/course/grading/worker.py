"""Grade ONE submission with nbgrader's own Autograde converter in a private copy of the course.

The worker gets a :class:`JobSpec`: it copies the collected submission and a snapshot of the gradebook
into its own job directory, points nbgrader's ``CourseDirectory`` there and runs the unmodified
``Autograde`` converter, with only the ``Execute`` step swapped for :class:`~academy.course.grading.kernel.
SandboxExecute`.  It never touches the real gradebook: the parent merges the job's gradebook afterwards
(:mod:`academy.course.grading.merge`), so any number of workers can run at once and the real gradebook has a
single writer.  The outcome, with one clear line for failures, goes to ``result.json``.

Runs in a forked process of the local pool, or as ``python -m academy.course.grading.worker SPEC.json`` in a
Slurm array task.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
import warnings
from dataclasses import asdict

from academy.batchimports import skip_iri_grammar

skip_iri_grammar()  # before nbgrader imports jsonschema, in the forkserver and in each Slurm task

from nbgrader.converters import Autograde  # noqa: E402
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import Execute
from nbgrader.utils import capture_log
from sqlalchemy.exc import SAWarning
from traitlets.config import Config, PyFileConfigLoader

from academy.course.exchange import MAX_DEPTH  # folders a submission may nest, as collect allows
from academy.course.grading import cells, depth, limits
from academy.course.grading.cells import FairCells
from academy.course.grading.jobs import JobResult, JobSpec, job_paths
from academy.course.grading.kernel import SandboxExecute


class SubmissionTooLarge(Exception):
    """Over the one size limit that ``submit`` also enforces (:mod:`academy.course.grading.limits`)."""


def _copy_submission(src: str, dst: str) -> None:
    """Copy plain files and folders only, within the submission size limit; ids already validated.

    Links (say, to another student's file) and devices are left behind with a note that names them, so the
    trainer and the student see why a file was missing.  Folders have a limit of their own (as many as files)
    and nesting the exchange's depth limit, so no tree of empty folders or endless nesting gets through.
    """
    count = total = folders = 0
    skipped: list[str] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        rel = os.path.relpath(dirpath, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        if rel != "." and rel.count(os.sep) + 1 > MAX_DEPTH:
            raise SubmissionTooLarge(f"submission too large: folders nested deeper than {MAX_DEPTH} levels")
        skipped += [os.path.join(rel, d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
        folders += len(dirnames)  # counted apart: collect keeps only folders that hold files, submit counts files
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                skipped.append(os.path.normpath(os.path.join(rel, name)))
                continue
            count, total = count + 1, total + os.path.getsize(path)
            if count > limits.SUBMISSION_MAX_FILES or total > limits.SUBMISSION_MAX_BYTES:
                raise SubmissionTooLarge(limits.too_large(count, total))
            shutil.copyfile(path, os.path.join(dst, rel, name), follow_symlinks=False)
            if name.endswith(".ipynb"):
                note = depth.flatten_if_deep(os.path.join(dst, rel, name))
                if note:
                    _NOTES.append(note)
        if folders > limits.SUBMISSION_MAX_FILES:
            raise SubmissionTooLarge(f"submission too large: more than {limits.SUBMISSION_MAX_FILES} folders")
    if skipped:
        shown = ", ".join(repr(os.path.normpath(p)) for p in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        _NOTES.append(f"{len(skipped)} link(s) or special file(s) in the submission were ignored "
                      f"(only plain files are graded): {shown}")


_NOTES: list[str] = []  # notes from preparing the submission (one job at a time per worker)


def _config(spec: JobSpec, paths: dict[str, str]) -> Config:
    cfg = PyFileConfigLoader(os.path.basename(spec.config_file), os.path.dirname(spec.config_file)).load_config()
    cfg.CourseDirectory.root = paths["root"]
    cfg.CourseDirectory.db_url = f"sqlite:///{paths['db']}"
    steps = cfg.Autograde.get("autograde_preprocessors") or Autograde.class_traits()["autograde_preprocessors"].default()
    cfg.Autograde.autograde_preprocessors = [SandboxExecute if step is Execute else step for step in steps]
    sanitize = cfg.Autograde.get("sanitize_preprocessors") or Autograde.class_traits()["sanitize_preprocessors"].default()
    cfg.Autograde.sanitize_preprocessors = [FairCells] + [s for s in sanitize if s is not FairCells]
    cfg.FairCells.event_log = paths["events"]
    cfg.SandboxKernelManager.event_log = paths["events"]
    cfg.SandboxKernelManager.kernel_log = paths["kernel_log"]
    if spec.sandbox_user:
        cfg.SandboxKernelManager.sandbox_user = spec.sandbox_user
    for key, value in spec.settings.items():
        section, trait = key.split(".", 1)
        cfg[section][trait] = value
    return cfg


def _events(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _explain(text: str, events: list[dict], notebook_limit: int) -> str:
    """Turn nbgrader's log of a failed run into one line a trainer can act on."""
    timed = [e for e in events if e.get("event") == "notebook_time_limit"]
    if timed:
        seconds = timed[-1].get("seconds", notebook_limit)
        return f"a notebook ran longer than its {seconds} s wall-time limit; its kernel was killed"
    hits = limits.explain(events)
    if hits and ("DeadKernelError" in text or "Kernel died" in text):
        return "the kernel died: the submission " + "; ".join(hits)
    checks = [
        ("NoSuchKernel", "the notebook asks for a kernel that is not allowed for grading"),
        ("No notebooks were matched", "no notebook of this assignment was submitted"),
        ("No notebooks found", "no notebook of this assignment was submitted"),
        ("IsADirectoryError", "a submitted notebook's name is a folder, not a notebook file"),
        ("NotJSONError", "a submitted .ipynb file is not a notebook (not valid notebook JSON)"),
        ("does not appear to be JSON", "a submitted .ipynb file is not a notebook (not valid notebook JSON)"),
        ("ValidationError", "a submitted notebook is not valid nbformat"),
        ("DeadKernelError", "the kernel died during grading (exit call, self-kill, or a CPU/memory limit)"),
        ("Kernel died", "the kernel died during grading (exit call, self-kill, or a CPU/memory limit)"),
        ("Timeout waiting for IOPub", "a cell ran past the per-cell time limit and ignored the interrupt"),
        ("UnresponsiveKernelError", "the kernel stopped responding and could not be interrupted"),
        ("SchemaTooOldError", "a notebook uses an old nbgrader metadata format"),
        ("RecursionError", "a submitted notebook is nested too deeply to be graded"),
    ]
    for needle, message in checks:
        if needle in text:
            return message
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith(" ")]
    return (lines[-1] if lines else "grading failed")[:300]


def _flags(events: list[dict]) -> list[str]:
    """One line per test cell around which what tests rely on had been changed."""
    flags = []
    for e in events:
        if e.get("event") == "tampering":
            where = "before test cell" if e.get("when") == "before" else "while running test cell"
            flags.append(f"{where} {e.get('cell')}: " + "; ".join(e.get("changes", []))[:500])
    return flags[:20]


def cfg_scratch(spec: JobSpec) -> str:
    return str(spec.settings.get("SandboxKernelManager.scratch_root", ""))


def _clear_scratch(path: str) -> None:
    """Delete every sandbox folder this job's kernels left (a kernel that died may skip its cleanup)."""
    if path and os.path.isdir(path):
        for name in os.listdir(path):
            shutil.rmtree(os.path.join(path, name), ignore_errors=True)


def run_job(spec: JobSpec) -> JobResult:
    """Grade one submission in the job directory and write ``result.json``; never raises."""
    start = time.monotonic()
    # nbgrader's own add_submission trips this SQLAlchemy warning on every new submission; it is harmless.
    warnings.filterwarnings("ignore", category=SAWarning)
    paths = job_paths(spec.job_dir)
    result = JobResult(student=spec.student, assignment=spec.assignment, status="failed")
    try:
        os.makedirs(paths["root"], exist_ok=True)
        submitted = os.path.join(paths["root"], "submitted", spec.student, spec.assignment)
        _NOTES.clear()
        _copy_submission(spec.submitted_dir, submitted)
        shutil.copyfile(spec.snapshot_db, paths["db"])
        cfg = _config(spec, paths)
        coursedir = CourseDirectory(config=cfg)
        coursedir.assignment_id, coursedir.student_id = spec.assignment, spec.student
        converter = Autograde(coursedir=coursedir, config=cfg)
        converter.force = True
        converter.create_student = True
        outcome = capture_log(converter)
        result.log = outcome.get("log", "")[-20000:]
        if outcome["success"]:
            result.status = "graded"
        events = _events(paths["events"])
        result.flags = _flags(events)
        result.notes = (["the submission " + hit for hit in limits.explain(events)] + cells.explain(events)
                        + list(_NOTES))
        if not outcome["success"]:
            limit = cfg.SandboxKernelManager.get("notebook_time_limit", 300)
            result.message = _explain(result.log + "\n" + outcome.get("error", ""), events, limit)
            # nbgrader's "see the above traceback" points into its log: keep that log, not just the last line.
            result.traceback = (result.log + "\n" + outcome.get("error", ""))[-20000:]
    except SubmissionTooLarge as exc:
        result.message = str(exc)
    except Exception as exc:  # the parent must always get a result file, whatever went wrong here
        result.message = f"grader error: {type(exc).__name__}: {exc}"[:300]
        result.traceback = traceback.format_exc()[-20000:]
    finally:
        _clear_scratch(cfg_scratch(spec))
    result.seconds = round(time.monotonic() - start, 3)
    tmp = paths["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(result), fh)
    os.replace(tmp, paths["result"])
    return result


def main(argv: list[str] | None = None) -> int:
    """Slurm entry point: ``python -m academy.course.grading.worker SPEC.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m academy.course.grading.worker SPEC.json", file=sys.stderr)
        return 2
    result = run_job(JobSpec.load(argv[0]))
    return 0 if result.status == "graded" else 1


if __name__ == "__main__":
    sys.exit(main())
