"""``academy curriculum``: test (lint + parallel papermill run), lint, and clean the curriculum or any trainer's notebooks."""
from __future__ import annotations

import argparse
import os
import re
import signal
import threading
import time
from pathlib import Path

from academy import clitools
from academy.curriculum import discover, lint
from academy.curriculum.results import RunOptions, Status, Target

DEFAULT_JUNIT = Path("test-output/curriculum-junit.xml")
DEFAULT_KEEP = Path("test-output/curriculum-failures")
DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
KERNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # what jupyter_client accepts as a kernelspec name
# Set by their own flags so a run's mode is always explicit in its report.
RESERVED_PARAMETERS = {"smoke": "--smoke/--full", "device": "--device"}


def _parameter(text: str) -> tuple[str, object]:
    try:
        name, value = discover.parse_parameter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if name in RESERVED_PARAMETERS:
        raise argparse.ArgumentTypeError(f"set {name} with {RESERVED_PARAMETERS[name]}, not -p")
    return name, value


def _device(text: str) -> str:
    if not DEVICE_RE.match(text):
        raise argparse.ArgumentTypeError(f"device {text!r} must be auto, cpu, cuda, cuda:N or mps")
    return text


def _kernel(text: str) -> str:
    if not KERNEL_RE.match(text):
        raise argparse.ArgumentTypeError(f"kernel name {text!r} may hold only letters, digits, '.', '_' and '-'")
    return text


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("curriculum", help="test, lint and clean the notebook curriculum")
    actions = parser.add_subparsers(dest="curriculum_command", metavar="ACTION")
    actions.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "notebooks", nargs="*", metavar="PATH",
            help="notebook files or folders (searched recursively), or curriculum lessons by number or name, e.g. 3 or 03_classical_ml (default: the whole curriculum)",
        )  # fmt: skip
        p.add_argument("--dir", type=Path, default=None, help="the Academy's curriculum directory (default: ./notebooks or $ACADEMY_NOTEBOOKS_DIR)")
        p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip notebooks or folders matching this glob, e.g. 'drafts/*' (repeatable)")

    test = actions.add_parser("test", help="run notebooks in parallel through papermill and check they pass and are clean")
    common(test)
    test.add_argument("-j", "--jobs", type=clitools.positive_int, default=os.cpu_count() or 1, help="notebooks run at once (default: CPU count)")
    test.add_argument("--timeout", type=clitools.positive_float, default=300.0, help="seconds per notebook before its kernel is killed (default: 300)")
    mode = test.add_mutually_exclusive_group()
    mode.add_argument("--smoke", dest="smoke", action="store_true", default=None, help="tiny CI-sized run (default when CI=true)")
    mode.add_argument("--full", dest="smoke", action="store_false", help="realistic sizes, for a GPU node")
    test.add_argument("-p", "--parameter", dest="parameters", action="append", type=_parameter, default=[], metavar="NAME=VALUE", help="extra notebook parameter (repeatable)")
    test.add_argument("--device", type=_device, default=None, help="device parameter: auto, cpu, cuda, cuda:N (default: the notebook's 'auto')")
    test.add_argument("--threads", type=clitools.positive_int, default=None, help="BLAS/OpenMP threads per kernel (default: CPU count / jobs)")
    rules = test.add_mutually_exclusive_group()
    rules.add_argument("--lint", dest="lint", action="store_true", default=None, help="apply the Academy's skeleton and clean rules to every notebook, not only the curriculum's")
    rules.add_argument("--no-lint", dest="lint", action="store_false", default=None, help="skip the clean/skeleton checks (for edited copies; CI keeps them)")
    test.add_argument("--require-clean", action="store_true", help="a notebook committed with outputs or execution counts is DIRTY (always so for the curriculum)")
    test.add_argument("--kernel", type=_kernel, default=None, metavar="NAME", help="run every notebook on this kernelspec instead of its own")
    test.add_argument("--junit", type=Path, default=DEFAULT_JUNIT, help=f"JUnit XML report (default: {DEFAULT_JUNIT})")
    test.add_argument("--keep", type=Path, default=DEFAULT_KEEP, help=f"where executed notebooks of failures go (default: {DEFAULT_KEEP})")
    test.set_defaults(func=cmd_test)

    check = actions.add_parser("lint", help="check notebooks are committed clean and follow the skeleton (fast, no kernels)")
    common(check)
    check.set_defaults(func=cmd_lint)

    clean = actions.add_parser("clean", help="strip outputs, execution counts and run metadata in place")
    common(clean)
    clean.set_defaults(func=cmd_clean)


def _chosen(args: argparse.Namespace, console) -> list[Target] | None:
    """The notebooks the arguments name: files and folders as given, anything else a curriculum lesson."""
    directory = args.dir or discover.default_notebooks_dir()
    paths = [Path(a) for a in args.notebooks if Path(a).exists()]
    names = [a for a in args.notebooks if not Path(a).exists()]
    try:
        targets = discover.find_notebooks(paths, args.exclude, directory) if paths else []
        if names or not paths:
            lessons = discover.select(discover.curriculum_notebooks(directory), names)
            if not names:
                for stray in discover.stray_notebooks(directory):
                    console.print(f"[yellow]warning:[/] {stray.name} is not a curriculum notebook (NN_slug.ipynb); not run")
            targets += [Target(nb, nb.stem, True) for nb in lessons if not discover.excluded(nb.name, args.exclude)]
    except (FileNotFoundError, ValueError) as exc:
        hint = " (and no file or folder of that name exists)" if names and "matches" in str(exc) else ""
        clitools.error(args, f"{exc}{hint}")
        return None
    unique = list({t.path.resolve(): t for t in targets}.values())
    if not unique:
        clitools.error(args, f"no notebooks in {', '.join(map(str, paths)) or directory}")
        return None
    return unique


def cmd_test(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from academy.curriculum import report
    from academy.curriculum.runner import run_notebooks

    console = Console()
    notebooks = _chosen(args, console)
    if notebooks is None:
        return clitools.REFUSED
    smoke = in_ci() if args.smoke is None else args.smoke
    parameters = dict(args.parameters)
    parameters["smoke"] = smoke
    if args.device:
        parameters["device"] = args.device
    jobs = min(args.jobs, len(notebooks))
    cores = os.cpu_count() or 1
    options = RunOptions(
        jobs=jobs,
        timeout=args.timeout,
        parameters=parameters,
        keep_dir=args.keep,
        threads_per_job=args.threads or max(1, cores // jobs),
        lint=args.lint,
        require_clean=args.require_clean,
        kernel=args.kernel,
    )
    mode = "smoke" if smoke else "full"
    console.print(
        f"Running {len(notebooks)} notebook(s), {mode} mode, {jobs} at a time "
        f"({os.environ.get('OMP_NUM_THREADS', options.threads_per_job)} BLAS/OpenMP thread(s) each), "
        f"{args.timeout:g} s limit each"
    )

    running: list[str] = []
    finished = []
    names = {t.path: t.name for t in notebooks}
    lock = threading.Lock()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:
        task = progress.add_task("starting", total=len(notebooks))

        def on_start(nb: Path) -> None:
            with lock:
                running.append(names.get(nb, nb.stem))
                progress.update(task, description="running " + ", ".join(running))

        def on_done(result) -> None:
            with lock:
                finished.append(result)
                if result.name in running:
                    running.remove(result.name)
                progress.update(task, advance=1, description="running " + ", ".join(running) if running else "done")
            style = report.STYLES[result.status]
            progress.console.print(f"[{style}]{result.status.value:7}[/] {result.name} ({result.seconds:.1f} s)")

        started = time.monotonic()
        # CI cancels with SIGTERM: turn it into the KeyboardInterrupt path that kills every kernel.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
        try:
            results = run_notebooks(
                notebooks, options, expected_seconds=report.previous_seconds(args.junit), on_start=on_start, on_done=on_done
            )
        except KeyboardInterrupt:
            # What finished is still worth a report: CI uploads it even for a cancelled run.
            order = {t.name: i for i, t in enumerate(notebooks)}
            done = sorted(finished, key=lambda r: order.get(r.name, 0))
            report.write_junit(args.junit, done, time.monotonic() - started)
            clitools.error(args, f"interrupted: {len(done)} of {len(notebooks)} notebook(s) finished; JUnit report: {args.junit}")
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
        wall = time.monotonic() - started
    report.print_report(console, results, wall, mode, "Curriculum" if all(t.house for t in notebooks) else "Notebooks")
    report.write_junit(args.junit, results, wall)
    console.print(f"JUnit report: {args.junit}")
    bad = [f"{r.name} ({r.status.value})" for r in results if r.status is not Status.PASS]
    if bad:
        return clitools.failed(args, f"{len(bad)} of {len(results)} notebook(s) did not pass: {', '.join(bad)}")
    return clitools.OK


def cmd_lint(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    notebooks = _chosen(args, console)
    if notebooks is None:
        return clitools.REFUSED
    bad = 0
    for target in notebooks:
        # House rules for the curriculum; for a trainer's notebook only what a regression run needs.
        try:
            problems = lint.lint(target.path) if target.house else lint.output_problems(lint.load(target.path))
        except ValueError as exc:
            problems = [str(exc)]
        if problems:
            bad += 1
            console.print(f"[yellow]{target.name}[/]")
            for problem in problems:
                console.print(f"  • {problem}")
    console.print(f"{len(notebooks) - bad} of {len(notebooks)} notebook(s) clean (and, for the curriculum, on skeleton)")
    return clitools.failed(args, f"{bad} notebook(s) not clean or off skeleton") if bad else clitools.OK


def cmd_clean(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console()
    notebooks = _chosen(args, console)
    if notebooks is None:
        return clitools.REFUSED
    for target in notebooks:
        try:
            changed = lint.strip_file(target.path, ids=target.house)
        except ValueError as exc:
            return clitools.failed(args, str(exc))
        console.print(f"{'cleaned' if changed else 'already clean'}: {target.name}")
    return 0
