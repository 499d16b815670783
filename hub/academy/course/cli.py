"""``academy course …``: the graded-course pipeline on the command line (progress bars, summary tables).

Sub-commands: setup (root: grader account, exchange, roster), release, fetch and submit (students),
collect, autograde (``--jobs N``, ``--backend local|slurm``), feedback, export, status.  The course comes
from the site config's ``course:`` section (``academy --config``; ``--course ID`` picks one of several);
``--course-dir``, ``--state-dir``, ``--exchange-dir`` and ``--db-url`` (or their ACADEMY_* variables)
override it (academy.course.site).  Students' fetch and submit need only the exchange root and the
course id.  Errors are one clear line on stderr and a non-zero exit code (``academy.clitools``:
1 when some students or submissions failed, 2 when a step was refused before it changed anything).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from academy import clitools
from academy.course.layout import CourseLayout, LayoutError, check_id

console = Console()


def _site(args) -> dict:
    from academy.siteconfig import load_config
    return load_config(getattr(args, "config", None))


def _layout(args) -> CourseLayout:
    """The trainer's course: flags, then ACADEMY_* variables, then the site config's ``course:`` section."""
    from academy.course.site import layout_for_site
    return layout_for_site(_site(args), args.course, args.course_dir, args.state_dir, args.exchange_dir, args.db_url)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _account_prefix(args) -> str:
    """Unix account prefix of the students: explicit, else the local backend's (hub user ann is acad-ann)."""
    if args.account_prefix is not None:
        return args.account_prefix
    from academy.accounts import LOCAL_UNIX_PREFIX
    from academy.siteconfig import load_config
    from academy.validation import ConfigError
    try:
        backend = load_config(getattr(args, "config", None))["backend"]
    except ConfigError as exc:
        raise LayoutError(f"cannot tell the students' Unix accounts: {exc} (or pass --account-prefix)") from None
    return LOCAL_UNIX_PREFIX if backend == "local" else ""


def cmd_setup(args) -> int:
    from academy.course import exchange, roster
    from academy.course.grading import sandbox
    from academy.course.protect import close_course
    layout = _layout(args)
    layout.ensure()
    closed = close_course(layout)  # solutions and hidden tests: owner (and the Formgrader's group) only
    if closed:
        console.print(closed)
    user = sandbox.ensure_account(args.grader_user or _site(args)["course"]["grader_user"])
    members = roster.Roster()
    if args.students:
        members = roster.from_list(",".join(args.students))
    elif args.hub_group:
        members = roster.from_hub(args.hub_url, args.hub_group)
    prefix = _account_prefix(args)
    skipped = exchange.setup(layout, members.students, prefix)
    if skipped:
        # Students who have not spawned yet get their local-backend account now instead of being skipped.
        made = _make_local_accounts(args, skipped, prefix)
        if made:
            exchange.setup(layout, made, prefix)
            console.print(f"made local accounts and homes for {', '.join(made)}")
        skipped = [s for s in skipped if s not in made]
    from nbgrader.api import Gradebook
    with Gradebook(layout.db_url, layout.course_id) as gb:
        for student in members.students:
            gb.update_or_create_student(student)
    console.print(f"grader account {user.name} (uid {user.uid}); exchange {exchange.course_root(layout)}; "
                  f"{len(members.students) - len(skipped)} student folders")
    if members.instructors:
        console.print(f"instructors (no student folder): {', '.join(members.instructors)}")
    for student in skipped:
        clitools.error(args, f"no Unix account {student!r}: no exchange folder made")
    return clitools.failed(args, f"{len(skipped)} student(s) without an exchange folder") if skipped else clitools.OK


def _make_local_accounts(args, students: list[str], prefix: str) -> list[str]:
    """On the local backend as root: the acad- accounts and homes the spawner would make; returns those made."""
    import os

    from academy.accounts import LOCAL_UNIX_PREFIX
    if prefix != LOCAL_UNIX_PREFIX or os.geteuid() != 0:
        return []
    from academy import localusers
    from academy.configurer import state_path
    from academy.siteconfig import load_config
    cfg = load_config(getattr(args, "config", None))
    homes = cfg["local"]["homes_dir"] or state_path(cfg, "homes")
    for student in students:
        localusers.prepare_home(student, homes, prefix)
    return list(students)


def cmd_release(args) -> int:
    from academy.course.release import release
    result = release(_layout(args), args.assignment, publish=not args.no_publish)
    where = result.published_to or result.release_dir
    console.print(f"released {result.assignment}: {', '.join(result.notebooks)} -> {where}")
    return 0


def cmd_fetch(args) -> int:
    from academy.course import learner
    console.print(f"fetched {args.assignment} into {learner.fetch(args)}")
    return 0


def cmd_submit(args) -> int:
    from academy.course import learner
    stamp, note = learner.submit(args)
    console.print(f"submitted {args.assignment} at {stamp} (the system's time of your submission; "
                  "a later submission replaces it)" + (f"; {note}" if note else ""))
    return 0


def cmd_fetch_feedback(args) -> int:
    from academy.course import learner
    for path in learner.fetch_feedback(args):
        console.print(f"feedback: {path}")
    return 0


def cmd_collect(args) -> int:
    from academy.course.exchange import ExchangeError, collect_one, inbound_students
    layout = _layout(args)
    layout.ensure()
    check_id(args.assignment, "assignment")
    students = args.students or inbound_students(layout)
    table = Table("student", "submitted at (system time)", "files", title=f"collect {args.assignment}")
    errors = []
    with _progress() as bar:
        task = bar.add_task("collecting", total=len(students))
        for student in students:
            check_id(student, "student id")
            try:
                receipt = collect_one(layout, args.assignment, student)
                if receipt:
                    table.add_row(student, receipt.submitted_at, str(len(receipt.files)))
            except ExchangeError as exc:
                errors.append(student)
                table.add_row(student, f"[red]{exc}[/]", "")
            bar.advance(task)
    console.print(table)
    if errors:
        return clitools.failed(args, f"{len(errors)} submission(s) not collected: {', '.join(errors)}")
    return clitools.OK


def _settings(args) -> dict:
    settings = {}
    if args.cell_timeout is not None:
        settings["Execute.timeout"] = args.cell_timeout
    if args.notebook_timeout is not None:
        settings["SandboxKernelManager.notebook_time_limit"] = args.notebook_timeout
    if args.memory_mb is not None:
        settings["SandboxPolicy.memory_limit"] = args.memory_mb * 1024 * 1024
    if args.sandbox_user:
        settings["SandboxKernelManager.sandbox_user"] = check_id(args.sandbox_user, "sandbox user")
    return settings


def cmd_autograde(args) -> int:
    from academy.batchimports import skip_iri_grammar
    skip_iri_grammar()  # this process only reads notebooks and the gradebook
    if args.backend == "local":
        from academy.course.grading.pool import warm_up
        warm_up()  # the grader processes import nbgrader while this one does the same
    from academy.course.autograde import AutogradeRequest, autograde
    from academy.course.site import default_jobs
    layout = _layout(args)
    if args.jobs is None:
        args.jobs = default_jobs(_site(args))
    request = AutogradeRequest(assignment=args.assignment, jobs=args.jobs, backend=args.backend,
                               students=args.students,
                               settings=_settings(args))
    with _progress() as bar:
        task = bar.add_task(f"autograde {args.assignment} ({args.backend}, {args.jobs} jobs)", total=None)
        done = autograde(layout, request, on_start=lambda n: bar.update(task, total=n),
                         on_report=lambda r: bar.advance(task))
    table = Table("student", "status", "score", "seconds", "message", title=f"autograde {args.assignment}")
    for r in done:
        colour = "green" if r.status == "graded" else "red"
        status = f"[{colour}]{r.status}[/]" + (" [yellow]flagged[/]" if r.flagged else "")
        table.add_row(r.student, status, f"{r.score:g}/{r.max_score:g}", f"{r.seconds:.1f}",
                      r.message)
    console.print(table)
    failed = sum(r.status != "graded" for r in done)
    console.print(f"{len(done) - failed} graded, {failed} failed (failed submissions score 0 and are flagged)")
    if failed:
        names = ", ".join(r.student for r in done if r.status != "graded")
        return clitools.failed(args, f"{failed} of {len(done)} submission(s) failed to grade: {names}")
    return clitools.OK


def cmd_feedback(args) -> int:
    from academy.course.feedback import feedback
    with _progress() as bar:
        task = bar.add_task(f"feedback {args.assignment}", total=None)
        results = feedback(_layout(args), args.assignment, send=not args.no_return,
                           on_result=lambda r: bar.advance(task))
    table = Table("student", "status", "message", title=f"feedback {args.assignment}")
    for r in results:
        table.add_row(r.student, r.status, r.message)
    console.print(table)
    missed = [f"{r.student} ({r.status})" for r in results if r.status in {"failed", "withheld", "not graded"}]
    if missed:
        return clitools.failed(args, f"no feedback returned for {len(missed)} student(s): {', '.join(missed)}")
    return clitools.OK


def cmd_export(args) -> int:
    from academy.course.export import export
    layout = _layout(args)
    grades, tests = export(layout, Path(args.out or layout.state_dir / "export"), args.assignment)
    from academy.course.protect import close_state
    close_state(layout)  # grades by name: never readable by learners, also in a traversable state dir
    console.print(f"wrote {grades} and {tests}")
    return 0


def cmd_cleanup(args) -> int:
    from academy.course.grading.cleanup import remove_leftovers
    removed = remove_leftovers()
    for path in removed:
        console.print(f"removed {path}")
    console.print(f"{len(removed)} leftovers removed")
    return 0


def cmd_status(args) -> int:
    from academy.course.status import assignment_status, course_status, student_help
    layout = _layout(args)
    try:
        rows = [assignment_status(layout, args.assignment)] if args.assignment else course_status(layout)
    except PermissionError as exc:  # a student: say what they can do, not which file they may not read
        return clitools.refused(args, student_help(layout, exc))
    table = Table("assignment", "released", "in exchange", "collected", "graded", "failed", "flagged", "feedback",
                  "mean score", title=f"course {layout.course_id}")
    for s in rows:
        table.add_row(s.assignment, "yes" if s.released else "no", "-" if s.submitted is None else str(s.submitted),
                      str(s.collected), str(s.graded), str(s.failed), str(s.flagged), str(s.feedback),
                      "-" if s.mean_score is None else f"{s.mean_score:g}/{s.max_score:g}")
    console.print(table)
    return 0


def _run(func):
    def wrapped(args) -> int:
        from academy.course.exchange import ExchangeError
        from academy.course.learner import LearnerError
        from academy.course.release import ReleaseError
        from academy.course.roster import RosterError
        from academy.course.grading.sandbox import SandboxError
        try:
            return func(args)
        except (LayoutError, ExchangeError, LearnerError, ReleaseError, RosterError, SandboxError, PermissionError,
                FileNotFoundError) as exc:
            return clitools.refused(args, str(exc))
    return wrapped


def register(subparsers) -> None:
    course = subparsers.add_parser("course", help="the graded nbgrader course: release, grade, feedback")
    course.add_argument("--course", metavar="ID", help="which course of the site config's course.courses (required when "
                        "there are several; students: one of $ACADEMY_COURSE_IDS)")
    course.add_argument("--course-dir", help="trainers: course files (default: $ACADEMY_COURSE_DIR, else the site config's)")
    course.add_argument("--state-dir", help="trainers: course state (default: $ACADEMY_STATE_DIR, else the site config's, "
                        "else <hub.state_dir>/courses/<id>)")
    course.add_argument("--exchange-dir", help="shared exchange root (default: $ACADEMY_EXCHANGE_DIR, else course.exchange_dir)")
    course.add_argument("--db-url", help="trainers: gradebook SQLAlchemy URL (default: $ACADEMY_GRADEBOOK_URL, else the site "
                        "config's, else SQLite in the course state)")
    sub = course.add_subparsers(dest="course_command", metavar="STEP")
    sub.required = True

    p = sub.add_parser("setup", help="root: create the grader account, exchange folders and roster")
    p.add_argument("--grader-user", help="unprivileged account that runs student code (default: course.grader_user)")
    clitools.list_option(p, "--students", metavar="ID", help="student ids (instead of a hub group)")
    p.add_argument("--hub-group", help="hub group whose members are the students")
    p.add_argument("--hub-url", default="http://127.0.0.1:8000", help="hub base URL for --hub-group")
    p.add_argument("--account-prefix", help="students' Unix accounts are PREFIX+id (default: 'acad-' when the "
                   "site runs the local backend, else none); an account named just id is used when that is missing")
    p.set_defaults(func=_run(cmd_setup))

    p = sub.add_parser("release", help="generate the student version, check for hidden-test leaks, publish")
    p.add_argument("assignment")
    p.add_argument("--no-publish", action="store_true", help="generate and check only")
    p.set_defaults(func=_run(cmd_release))

    p = sub.add_parser("fetch", help="student: copy a released assignment into the current folder")
    p.add_argument("assignment")
    p.add_argument("--dest", help="folder to fetch into (default: current folder)")
    p.set_defaults(func=_run(cmd_fetch))

    p = sub.add_parser("submit", help="student: submit ./ASSIGNMENT (or --path)")
    p.add_argument("assignment")
    p.add_argument("--path", help="folder to submit (default: ./ASSIGNMENT)")
    p.set_defaults(func=_run(cmd_submit))

    p = sub.add_parser("fetch-feedback", help="student: copy my returned feedback into ./ASSIGNMENT/feedback/")
    p.add_argument("assignment", nargs="?", help="one assignment (default: every one with feedback)")
    p.add_argument("--dest", help="folder holding the assignment folders (default: current folder)")
    p.set_defaults(func=_run(cmd_fetch_feedback))
    for name in ("fetch", "submit", "fetch-feedback"):
        # SUPPRESS: an absent option must not overwrite `academy course --course ID` given before the step.
        sub.choices[name].add_argument("--course", default=argparse.SUPPRESS, help="course id (default: the only one "
                                       "in $ACADEMY_COURSE_IDS, else the site config's only course)")

    p = sub.add_parser("collect", help="root: copy submissions in with a system-taken timestamp")
    p.add_argument("assignment")
    clitools.list_option(p, "--students", metavar="ID", help="student ids (default: everyone with an exchange folder)")
    p.set_defaults(func=_run(cmd_collect))

    p = sub.add_parser("autograde", help="grade collected submissions in parallel, sandboxed")
    p.add_argument("assignment")
    p.add_argument("--jobs", type=clitools.positive_int, help="submissions graded at once (default: course.limits.jobs, "
                   "else one per CPU core)")
    p.add_argument("--backend", choices=["local", "slurm"], default="local",
                   help="local process pool (default) or a Slurm job array")
    clitools.list_option(p, "--students", metavar="ID", help="student ids (default: every collected submission)")
    p.add_argument("--cell-timeout", type=clitools.positive_int, help="seconds per cell (nbgrader Execute.timeout)")
    p.add_argument("--notebook-timeout", type=clitools.positive_int, help="wall-clock seconds per notebook")
    p.add_argument("--memory-mb", type=clitools.positive_int, help="memory limit of each kernel in MiB")
    p.add_argument("--sandbox-user", help="account that runs student code (default: academy-grader)")
    p.set_defaults(func=_run(cmd_autograde))

    p = sub.add_parser("feedback", help="generate feedback without hidden tests and return it")
    p.add_argument("assignment")
    p.add_argument("--no-return", action="store_true", help="generate only, do not return through the exchange")
    p.set_defaults(func=_run(cmd_feedback))

    p = sub.add_parser("export", help="grades.csv (per student and assignment) and tests.csv (per test)")
    p.add_argument("--assignment", help="only this assignment")
    p.add_argument("--out", help="output folder (default: <state>/export)")
    p.set_defaults(func=_run(cmd_export))

    p = sub.add_parser("status", help="how far each assignment has come through the pipeline")
    p.add_argument("assignment", nargs="?")
    p.set_defaults(func=_run(cmd_status))

    p = sub.add_parser("cleanup", help="remove sandbox folders and cgroups a killed grading run left (root)")
    p.set_defaults(func=_run(cmd_cleanup))
