"""Benchmark: the curriculum runner against serial papermill and ``pytest --nbmake -n 2`` on the same notebooks.

Usage:  .venv/bin/python benchmarks/curriculum.py [--notebooks 00 03 07] [--jobs 2]

Every method runs copies of the notebooks whose parameters cell says ``smoke = True``
(nbmake cannot pass parameters), each method in its own scratch copy of notebooks/; ours
runs them with ``--no-lint`` since the edited parameters cell is not the committed one.
Ours caps BLAS/OpenMP threads per kernel at cores/jobs by default; the extra
"uncapped" row shows the runner without that cap, for an apples-to-apples view. All
methods get the worker's ``poll_in_slices`` guard against nbclient's rare lost-reply
hang, so the timings compare scheduling, not luck; serial also has a 300 s cell limit.
Goals: ours >= 1.7x faster than serial, no slower than nbmake, whole smoke track < 600 s.
It also measures the machine's own parallel ceiling (N spinning processes against one),
because on a shared or SMT machine no runner can exceed it.
Prints a table and writes benchmarks/results/curriculum.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "curriculum.json"
GOAL_VS_SERIAL = 1.7
GOAL_TRACK_S = 600.0

sys.path.insert(0, str(REPO / "hub"))
from academy.curriculum import discover, lint  # noqa: E402  (light: no papermill, no torch)


@dataclass
class Measurement:
    """One method's run over the whole selection."""

    method: str
    wall_s: float
    passed: int
    total: int
    per_notebook_s: dict[str, float] = field(default_factory=dict)
    note: str = ""


SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(15_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def parallel_ceiling(jobs: int) -> float:
    """How much faster ``jobs`` CPU-bound processes finish than one after another, on this machine now.

    No runner can beat this ratio; on a shared or SMT machine it is well below ``jobs``.
    """
    def spin(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return max(float(p.communicate()[0]) for p in procs)

    one = min(spin(1) for _ in range(2))
    together = min(spin(jobs) for _ in range(2))
    return round(jobs * one / together, 2)


def smoke_copy(notebooks: list[Path], dest: Path) -> list[Path]:
    """Copy notebooks/ (data included) to ``dest`` with each parameters cell switched to smoke = True."""
    shutil.copytree(notebooks[0].parent, dest, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
    copies = []
    for path in notebooks:
        nb = lint.load(path)
        for cell in nb["cells"]:
            if "parameters" in lint.tags(cell):
                src, n = re.subn(r"^smoke\s*=\s*False\b", "smoke = True", lint.source(cell), flags=re.MULTILINE)
                cell["source"] = src if n else lint.source(cell) + "\nsmoke = True\n"
        target = dest / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        copies.append(target)
    return copies


def run_serial(copies: list[Path], scratch: Path) -> Measurement:
    """The baseline: papermill's Python API, one notebook after another in this process."""
    from academy.batchimports import skip_iri_grammar
    skip_iri_grammar()  # the same import shortcut our workers take
    import papermill

    from academy.curriculum.worker import poll_in_slices

    poll_in_slices()  # same lost-reply guard as ours, so a rare upstream hang cannot skew the timing

    per, passed = {}, 0
    start = time.monotonic()
    for nb in copies:
        t0 = time.monotonic()
        try:
            papermill.execute_notebook(
                nb, scratch / nb.name, parameters={"smoke": True}, cwd=nb.parent, progress_bar=False, execution_timeout=300
            )
            passed += 1
        except Exception as exc:  # a failing notebook still counts its time
            detail = f"{exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else str(exc)[:300]
            print(f"  serial: {nb.stem} failed: {type(exc).__name__}: {detail}", file=sys.stderr)
        per[nb.stem] = round(time.monotonic() - t0, 2)
    return Measurement("serial papermill (API)", round(time.monotonic() - start, 2), passed, len(copies), per)


def run_ours(copies: list[Path], scratch: Path, jobs: int, threads: int | None, label: str) -> Measurement:
    junit = scratch / "junit.xml"
    cmd = [sys.executable, "-m", "academy", "curriculum", "test", "--dir", str(copies[0].parent), "--jobs", str(jobs),
           "--smoke", "--no-lint", "--junit", str(junit), "--keep", str(scratch / "kept"), *[c.stem for c in copies]]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
    wall = round(time.monotonic() - start, 2)
    per, passed = {}, 0
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            per[case.get("name")] = float(case.get("time"))
            passed += case.find("failure") is None and case.find("error") is None
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
    return Measurement(label, wall, passed, len(copies), per, note=f"exit {proc.returncode}")


def run_nbmake(copies: list[Path], scratch: Path, jobs: int) -> Measurement:
    """``pytest --nbmake -n JOBS`` with an empty config so the repository's pytest settings do not apply."""
    ini = copies[0].parent / "pytest.ini"
    ini.write_text("[pytest]\n")
    # The same lost-reply guard as ours and serial, loaded into every xdist worker.
    (ini.parent / "conftest.py").write_text("from academy.curriculum.worker import poll_in_slices\n\npoll_in_slices()\n")
    junit = scratch / "nbmake-junit.xml"
    cmd = [sys.executable, "-m", "pytest", "--nbmake", "-n", str(jobs), "-c", str(ini), "--rootdir", str(ini.parent),
           "-p", "no:cacheprovider", "-q", "--nbmake-timeout=300", f"--junitxml={junit}", *map(str, copies)]  # fmt: skip
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True, env=env)
    wall = round(time.monotonic() - start, 2)
    per, passed = {}, 0
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = Path(case.get("name", "")).stem or case.get("name")
            per[name] = float(case.get("time"))
            passed += case.find("failure") is None and case.find("error") is None
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
    return Measurement(f"pytest --nbmake -n {jobs}", wall, passed, len(copies), per, note=f"exit {proc.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=[], help="numbers or names (default: every notebook present)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel notebooks for ours and nbmake (default: 2)")
    parser.add_argument("--skip-uncapped", action="store_true", help="skip the extra run of ours without the per-kernel thread cap")
    args = parser.parse_args(argv)
    try:
        notebooks = discover.select(discover.curriculum_notebooks(REPO / "notebooks"), args.notebooks)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not notebooks:
        print("error: no notebooks to benchmark", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    print(f"{len(notebooks)} notebook(s): {' '.join(nb.stem for nb in notebooks)}; {cores} cores; jobs={args.jobs}")

    ceiling_before = parallel_ceiling(args.jobs)
    print(f"this machine runs {args.jobs} CPU-bound processes {ceiling_before:.2f}x faster than one after another")
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="academy-bench-") as tmp:
        root = Path(tmp)
        # Keep every method's progress events and lesson run files out of the home directory.
        os.environ["ACADEMY_PROGRESS_FILE"] = str(root / "progress.jsonl")
        os.environ["ACADEMY_WORKDIR"] = str(root / "academy-work")

        def fresh(name: str) -> tuple[list[Path], Path]:
            scratch = root / name
            scratch.mkdir()
            return smoke_copy(notebooks, scratch / "notebooks"), scratch

        plan = [
            ("serial", lambda c, s: run_serial(c, s)),
            ("ours", lambda c, s: run_ours(c, s, args.jobs, None, f"academy curriculum test --jobs {args.jobs}")),
            ("nbmake", lambda c, s: run_nbmake(c, s, args.jobs)),
        ]
        if not args.skip_uncapped:
            plan.append(("ours-uncapped", lambda c, s: run_ours(c, s, args.jobs, cores, f"ours --jobs {args.jobs} --threads {cores}")))
        for name, run in plan:
            copies, scratch = fresh(name)
            m = run(copies, scratch)
            print(f"  {m.method}: {m.wall_s:.1f} s ({m.passed}/{m.total} passed)")
            measurements.append(m)

    ceiling = round((ceiling_before + parallel_ceiling(args.jobs)) / 2, 2)
    serial, ours, nbmake = measurements[0], measurements[1], measurements[2]
    vs_serial = serial.wall_s / ours.wall_s
    vs_nbmake = nbmake.wall_s / ours.wall_s
    goals = {
        f"ours >= {GOAL_VS_SERIAL}x faster than serial": vs_serial >= GOAL_VS_SERIAL,
        "ours no slower than nbmake": vs_nbmake >= 1.0,
        f"ours under {GOAL_TRACK_S:.0f} s": ours.wall_s < GOAL_TRACK_S,
        "every notebook passed under every method": all(m.passed == m.total for m in measurements),
    }
    print()
    print(f"{'method':44} {'wall s':>8} {'serial/this':>12} {'passed':>8}")
    for m in measurements:
        print(f"{m.method:44} {m.wall_s:8.1f} {serial.wall_s / m.wall_s:11.2f}x {m.passed:>4}/{m.total:<3}")
    print(f"\nmachine's parallel ceiling for {args.jobs} processes (mean of before/after): {ceiling:.2f}x; "
          f"ours reached {vs_serial / ceiling:.0%} of it")
    print()
    for goal, met in goals.items():
        print(f"  [{'met' if met else 'MISSED'}] {goal}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "curriculum",
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": {"cores": cores, "python": platform.python_version(), "platform": platform.platform()},
                "notebooks": [nb.stem for nb in notebooks],
                "jobs": args.jobs,
                "measurements": [asdict(m) for m in measurements],
                "ratios": {
                    "serial_over_ours": round(vs_serial, 3),
                    "nbmake_over_ours": round(vs_nbmake, 3),
                    "machine_parallel_ceiling": ceiling,
                    "ours_share_of_ceiling": round(vs_serial / ceiling, 3),
                },
                "goals": goals,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
