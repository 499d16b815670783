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

A foreign set follows (skip it with --skip-foreign, or run only it with --foreign-only): a
generated notebook of 300 small cells (papermill's per-cell save made such notebooks
quadratically slow), and the trainer's course tree of testbed/foreign_notebooks.py (its
hanging notebook left out: it would only measure the time limit), each through ours
``--jobs 2`` (as a trainer runs it: folder paths, no parameters forced), serial papermill
and ``pytest --nbmake -n 2``. Goal: ours no slower than nbmake on both.
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
sys.path.insert(0, str(REPO))
from academy.curriculum import discover, lint  # noqa: E402  (light: no papermill, no torch)
from testbed.foreign_notebooks import foreign_tree  # noqa: E402  (the same trainer tree the tests run)

FOREIGN_LEFT_OUT = ["broken/hangs.ipynb", "drafts"]


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


def run_serial(copies: list[Path], scratch: Path, parameters: dict | None = None, label: str = "serial papermill (API)") -> Measurement:
    """The baseline: papermill's Python API with its defaults, one notebook after another in this process."""
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
                nb, scratch / nb.name, parameters={"smoke": True} if parameters is None else parameters, cwd=nb.parent,
                progress_bar=False, execution_timeout=300,
            )
            passed += 1
        except Exception as exc:  # a failing notebook still counts its time
            detail = f"{exc.ename}: {exc.evalue}" if hasattr(exc, "ename") else str(exc)[:300]
            print(f"  serial: {nb.stem} failed: {type(exc).__name__}: {detail}", file=sys.stderr)
        per[nb.stem] = round(time.monotonic() - t0, 2)
    return Measurement(label, round(time.monotonic() - start, 2), passed, len(copies), per)


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


def run_nbmake(copies: list[Path], scratch: Path, jobs: int, root: Path | None = None) -> Measurement:
    """``pytest --nbmake -n JOBS`` with an empty config so the repository's pytest settings do not apply."""
    ini = (root or copies[0].parent) / "pytest.ini"
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


def long_notebook(dest: Path, cells: int) -> Path:
    """A notebook of ``cells`` small code cells, like a long tutorial: each cell cheap, so per-cell overhead is what shows."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    body = [new_code_cell("total = 0")] + [new_code_cell(f"total += {i}\nvalues_{i} = [total] * 3") for i in range(cells - 2)]
    body.append(new_code_cell(f"assert total == {sum(range(cells - 2))}\nprint(total)"))
    path = dest / "long_tutorial.ipynb"
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=body, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}), path)
    return path


def run_ours_paths(paths: list[Path], scratch: Path, jobs: int, exclude: list[str]) -> Measurement:
    """Ours as a trainer runs it: files and folders as arguments, no parameters forced, no house rules."""
    junit = scratch / "junit.xml"
    cmd = [sys.executable, "-m", "academy", "curriculum", "test", *map(str, paths), "--jobs", str(jobs), "--timeout", "300",
           "--junit", str(junit), "--keep", str(scratch / "kept"), *[a for g in exclude for a in ("--exclude", g)]]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=scratch, capture_output=True, text=True)
    wall = round(time.monotonic() - start, 2)
    per, passed = {}, 0
    cases = list(ET.parse(junit).getroot().iter("testcase")) if junit.exists() else []
    for case in cases:
        per[case.get("name")] = float(case.get("time"))
        passed += case.find("failure") is None and case.find("error") is None
    return Measurement(f"academy curriculum test PATH --jobs {jobs}", wall, passed, len(cases), per, note=f"exit {proc.returncode}")


def foreign_sets(root: Path, jobs: int, cells: int) -> dict[str, list[Measurement]]:
    """The long notebook and the trainer tree, each through serial papermill, ours and nbmake in fresh copies."""
    def build(kind: str, scratch: Path) -> tuple[Path, list[Path]]:
        if kind == "long_notebook":
            nb = long_notebook(scratch / "repo", cells)
            return nb.parent, [nb]
        foreign_tree(scratch / "repo")
        return scratch / "repo", [t.path for t in discover.find_notebooks([scratch / "repo"], FOREIGN_LEFT_OUT)]

    found: dict[str, list[Measurement]] = {}
    for kind in ("long_notebook", "foreign"):
        found[kind] = []
        for method in ("serial", "ours", "nbmake"):
            scratch = root / f"{kind}-{method}"
            scratch.mkdir()
            repo, copies = build(kind, scratch)
            if method == "serial":
                m = run_serial(copies, scratch, parameters={}, label="serial papermill (API, defaults)")
            elif method == "ours":
                m = run_ours_paths([repo], scratch, jobs, FOREIGN_LEFT_OUT)
            else:
                m = run_nbmake(copies, scratch, jobs, root=repo)
            print(f"  {kind}: {m.method}: {m.wall_s:.1f} s ({m.passed}/{m.total} passed)")
            found[kind].append(m)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=[], help="numbers or names (default: every notebook present)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel notebooks for ours and nbmake (default: 2)")
    parser.add_argument("--skip-uncapped", action="store_true", help="skip the extra run of ours without the per-kernel thread cap")
    parser.add_argument("--skip-foreign", action="store_true", help="skip the foreign set (long notebook and trainer tree)")
    parser.add_argument("--long-cells", type=int, default=300, help="cells in the generated long notebook (default: 300)")
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
        foreign = {} if args.skip_foreign else foreign_sets(root, args.jobs, args.long_cells)

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
    # Per set: serial, ours, nbmake (the order foreign_sets runs them in).
    foreign_keys = {f"{kind}_{who}_s": ms[i].wall_s for kind, ms in foreign.items() for i, who in ((0, "serial"), (1, "ours"), (2, "nbmake"))}
    for kind, label in (("long_notebook", f"the {args.long_cells}-cell notebook"), ("foreign", "the trainer tree")):
        if kind in foreign:
            goals[f"ours no slower than nbmake on {label}"] = foreign_keys[f"{kind}_ours_s"] <= foreign_keys[f"{kind}_nbmake_s"]
    print()
    print(f"{'method':44} {'wall s':>8} {'serial/this':>12} {'passed':>8}")
    for m in measurements:
        print(f"{m.method:44} {m.wall_s:8.1f} {serial.wall_s / m.wall_s:11.2f}x {m.passed:>4}/{m.total:<3}")
    for kind, ms in foreign.items():
        print(f"\n{kind}:")
        for m in ms:
            print(f"  {m.method:42} {m.wall_s:8.1f} {ms[0].wall_s / m.wall_s:11.2f}x {m.passed:>4}/{m.total:<3}")
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
                **foreign_keys,
                "long_notebook_cells": args.long_cells if foreign else None,
                "foreign_measurements": {kind: [asdict(m) for m in ms] for kind, ms in foreign.items()},
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
