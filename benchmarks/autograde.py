"""Benchmark: `academy course autograde --jobs N` against stock serial `nbgrader autograde`, same submissions.

Usage:  .venv/bin/python benchmarks/autograde.py [--submissions 40] [--jobs 2] [--assignment a1_numpy_foundations]

Generates N submissions of one assignment with varied correctness (the golden solution, blank and partial
cases of testbed/course_golden.py, then answers with random subsets of cells left unanswered), places the
same files in two fresh state directories with the assignment released in both, and in one run grades
one with stock `nbgrader autograde` (one process, serial, unsandboxed kernels) and the other with
`academy course autograde --jobs N` (sandboxed kernels).  Both wall times include their CLI start-up.
Prints a table, confirms identical scores per student and zero gradebook errors, and writes
benchmarks/results/autograde.json.  Then (unless --no-hostile) it grades the hostile set of
testbed/hostile_submissions.py (the isolation tests' set) with `--jobs 2` (``hostile_batch_seconds``) and checks that every
honest submission in it scored as it scores graded alone (``honest_scores_exact``).  Goal: >= 1.8x on 2 cores.  Needs root (the sandbox account).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "autograde.json"
VENV_BIN = Path(sys.executable).parent
GOAL = 1.8

sys.path[:0] = [str(REPO / "hub"), str(REPO)]
import nbformat  # noqa: E402
from testbed import course_golden  # noqa: E402
from academy.course import layout as course_layout  # noqa: E402
from academy.course import release  # noqa: E402
from academy.course.grading.sandbox import ensure_account  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402


def submissions(assignment: str, released: Path, count: int, seed: int = 0) -> dict[str, nbformat.NotebookNode]:
    """`count` notebooks: the golden cases first, then random subsets of answer cells left blank."""
    rng = random.Random(seed)
    out: dict[str, nbformat.NotebookNode] = {}
    cases = course_golden.GOLDEN_CASES[assignment]
    for case in cases[:count]:
        out[f"golden-{case.student}"] = course_golden.build_submission(case, released)
    source = course_golden.source_notebook(assignment)
    answers = sorted(course_golden._answer_cells(nbformat.read(str(source), as_version=4)))
    while len(out) < count:
        wrong = frozenset(a for a in answers if rng.random() < 0.35)
        out[f"student{len(out):03d}"] = course_golden.make_submission(source, released, wrong)
    return out


def prepare(base: Path, name: str, assignment: str, count: int) -> course_layout.CourseLayout:
    layout = course_layout.resolve(str(REPO / "course"), str(base / name), str(base / name / "exchange"))
    release.release(layout, assignment, publish=False)
    released = layout.step_dir("release", ".", assignment) / f"{assignment}.ipynb"
    for student, nb in submissions(assignment, released, count).items():
        folder = layout.step_dir("submitted", student, assignment)
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
        (folder / "timestamp.txt").write_text("2030-01-01 00:00:00.000000 UTC")
    return layout


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def timed(cmd: list[str], cwd: Path, name: str) -> tuple[float, float | None, subprocess.CompletedProcess]:
    """Wall seconds, and CPU seconds of the whole process tree when a cgroup v1 cpuacct is writable.

    The CPU figure counts every kernel and worker, so it stays comparable when other jobs share the machine."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="200")
    group = CPUACCT / f"academy-bench-{name}-{os.getpid()}"
    try:
        group.mkdir()
    except OSError:
        group = None

    def enter() -> None:
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=enter)
    wall = time.perf_counter() - start
    cpu = None
    if group is not None:
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        for pid in (group / "cgroup.procs").read_text().split():  # e.g. a forkserver still exiting
            try:
                (CPUACCT / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        try:
            group.rmdir()
        except OSError:
            pass
    return wall, cpu, proc


def scores(layout, assignment: str) -> dict[str, float]:
    with Gradebook(layout.db_url) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def integrity(layout) -> str:
    db = sqlite3.connect(layout.db_url[len("sqlite:///"):])
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def hostile_batch(base: Path) -> tuple[float, bool, dict]:
    """The isolation tests' hostile set (fork bomb, memory and scratch hogs, tampering, leaks, floods) next to
    honest submissions, graded with `--jobs 2`; honest scores are compared with each graded alone."""
    from testbed import hostile_submissions as hostile, tiny_course
    layouts = {}
    for name in ("hostile", "alone"):
        course = base / name / "course"
        tiny_course.write_source(course)
        with open(course / "nbgrader_config.py", "a") as fh:
            fh.write(f"\nc.SandboxPolicy.scratch_size = {hostile.SCRATCH}\nc.SandboxPolicy.memory_limit = "
                     f"{hostile.MEMORY}\nc.SandboxPolicy.max_processes = {hostile.PROCS}\n")
        layout = course_layout.resolve(str(course), str(base / name / "state"), str(base / name / "exchange"))
        release.release(layout, tiny_course.ASSIGNMENT, publish=False)
        released = layout.step_dir("release", ".", tiny_course.ASSIGNMENT) / f"{tiny_course.NOTEBOOK}.ipynb"
        for student, answers in hostile.CASES.items():
            if name == "alone" and student not in hostile.HONEST:
                continue
            folder = layout.step_dir("submitted", student, tiny_course.ASSIGNMENT)
            folder.mkdir(parents=True)
            nbformat.write(tiny_course.make_submission(released, answers), folder / f"{tiny_course.NOTEBOOK}.ipynb")
            (folder / "timestamp.txt").write_text("2030-01-01 00:00:00.000000 UTC")
        layouts[name] = layout

    def cmd(layout, jobs: int, *students: str) -> list[str]:
        return [sys.executable, "-m", "academy", "course", "--course-dir", str(layout.course_dir), "--state-dir",
                str(layout.state_dir), "autograde", tiny_course.ASSIGNMENT, "--jobs", str(jobs),
                "--cell-timeout", "30", "--notebook-timeout", "90", *students]

    seconds, _, _ = timed(cmd(layouts["hostile"], 2), REPO, "hostile")
    alone = {}
    for student in sorted(hostile.HONEST):
        timed(cmd(layouts["alone"], 1, "--students", student), REPO, "alone")
        alone[student] = scores(layouts["alone"], tiny_course.ASSIGNMENT)[student]
    batch = scores(layouts["hostile"], tiny_course.ASSIGNMENT)
    in_batch = {s: batch.get(s) for s in alone}
    return seconds, in_batch == alone and len(alone) == len(hostile.HONEST), {"alone": alone, "in_batch": in_batch}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignment", default="a1_numpy_foundations")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat both methods in ABBA order and keep each one's fastest run (shared machines)")
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile batch")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root: the sandbox runs student code as the academy-grader account", file=sys.stderr)
        return 2
    ensure_account("academy-grader")
    with tempfile.TemporaryDirectory(prefix="academy-bench-") as tmp:
        base = Path(tmp)
        stock, ours = (prepare(base, name, args.assignment, args.submissions) for name in ("stock", "ours"))
        load_before = os.getloadavg()[0]
        stock_cmd = [str(VENV_BIN / "nbgrader"), "autograde", args.assignment, "--force"]
        ours_cmd = [sys.executable, "-m", "academy", "course", "--course-dir", str(ours.course_dir), "--state-dir",
                    str(ours.state_dir), "autograde", args.assignment, "--jobs", str(args.jobs)]
        runs: dict[str, list] = {"stock": [], "ours": []}
        for round_no in range(max(1, args.rounds)):
            order = ["stock", "ours"] if round_no % 2 == 0 else ["ours", "stock"]
            for name in order:
                cmd, cwd = (stock_cmd, stock.root) if name == "stock" else (ours_cmd, REPO)
                runs[name].append(timed(cmd, cwd, name))
        stock_s, stock_cpu, stock_proc = min(runs["stock"], key=lambda r: r[0])
        ours_s, ours_cpu, ours_proc = min(runs["ours"], key=lambda r: r[0])
        load_after = os.getloadavg()[0]
        stock_scores, our_scores = scores(stock, args.assignment), scores(ours, args.assignment)
        failed = sum(1 for p in ours.reports_dir(args.assignment).glob("*.json")
                     if json.loads(p.read_text())["status"] != "graded")
        errors = {
            "stock_exit": stock_proc.returncode, "ours_exit": ours_proc.returncode,
            "stock_integrity": integrity(stock), "ours_integrity": integrity(ours), "ours_failed_submissions": failed,
        }
        hostile_s, honest_exact, honest_detail = (None, None, {}) if args.no_hostile else hostile_batch(base)
    identical = stock_scores == our_scores and len(our_scores) == args.submissions
    ratio = stock_s / ours_s
    gradebook_errors = int(errors["stock_integrity"] != "ok") + int(errors["ours_integrity"] != "ok") + failed
    rows = [("stock nbgrader autograde (serial)", stock_s, stock_cpu),
            (f"academy course autograde --jobs {args.jobs}", ours_s, ours_cpu)]
    print(f"\n{args.submissions} submissions of {args.assignment} on {os.cpu_count()} cores "
          f"(load average {load_before:.1f} before, {load_after:.1f} after)")
    print(f"{'method':45} {'wall s':>8} {'s/submission':>13} {'CPU s':>8}")
    for name, secs, cpu in rows:
        print(f"{name:45} {secs:8.1f} {secs / args.submissions:13.2f} {cpu if cpu is None else round(cpu, 1)!s:>8}")
    print(f"speed-up {ratio:.2f}x (goal >= {GOAL}x): {'met' if ratio >= GOAL else 'NOT met'}")
    print(f"identical scores: {identical}; gradebook errors: {gradebook_errors}; details: {errors}")
    if hostile_s is not None:
        print(f"hostile batch (--jobs 2): {hostile_s:.1f} s; honest scores as graded alone: {honest_exact} "
              f"{honest_detail}")
    if not identical:
        diff = {k: (stock_scores.get(k), our_scores.get(k)) for k in set(stock_scores) | set(our_scores)
                if stock_scores.get(k) != our_scores.get(k)}
        print(f"score differences (stock, ours): {diff}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "assignment": args.assignment, "submissions": args.submissions, "jobs": args.jobs, "rounds": args.rounds,
        "all_walls_s": {k: [round(r[0], 2) for r in v] for k, v in runs.items()},
        "cores": os.cpu_count(), "machine": platform.platform(), "stock_serial_s": round(stock_s, 2),
        "ours_s": round(ours_s, 2), "stock_cpu_s": stock_cpu, "ours_cpu_s": ours_cpu,
        "load_average_before": load_before, "load_average_after": load_after, "speedup": round(ratio, 3), "goal": GOAL, "goal_met": ratio >= GOAL,
        "identical_scores": identical, "gradebook_errors": gradebook_errors, "details": errors,
        "hostile_batch_seconds": None if hostile_s is None else round(hostile_s, 2),
        "honest_scores_exact": honest_exact, "honest_scores": honest_detail,
        "score_histogram": {str(k): list(our_scores.values()).count(k) for k in sorted(set(our_scores.values()))},
    }, indent=1))
    print(f"wrote {RESULTS}")
    return 0 if identical and gradebook_errors == 0 and honest_exact is not False else 1


if __name__ == "__main__":
    sys.exit(main())
