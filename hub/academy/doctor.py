"""``academy doctor``: check the installation and print a readable table; non-zero on any failure."""
from __future__ import annotations

import argparse
import importlib

from rich.console import Console
from rich.table import Table

from academy import clitools
from academy.doctor_checks import (
    DoctorCheck,
    check_curriculum,
    check_port,
    check_profile_cores,
    check_profile_memory,
    check_profiles,
    check_proxy,
    check_state_dir,
    check_user_reachable,
)
from academy.runtime import RunFacts
from academy.siteconfig import config_file, load_config
from academy.validation import ConfigError


SLURM_CHECKS = "academy.spawners.slurm.doctor"


def backend_checks(cfg: dict) -> list[DoctorCheck]:
    """Scheduler checks come from the backend's own module, so doctor stays backend-agnostic."""
    if cfg["backend"] != "slurm":
        return []
    try:
        module = importlib.import_module(SLURM_CHECKS)
        return list(module.check_slurm(cfg))
    except Exception as exc:  # a broken backend must show up as a failed check, not a traceback
        return [DoctorCheck("slurm", False, f"Slurm checks could not run: {type(exc).__name__}: {exc}")]


def collect(config: str | None, port: int | None = None) -> list[DoctorCheck]:
    try:
        # As `academy up --port` does, so doctor checks the port the hub will use.
        cfg = load_config(config, RunFacts(port=port or None))
    except ConfigError as exc:
        return [DoctorCheck("config", False, str(exc))]
    checks = [DoctorCheck("config", True, f"{config_file(config)} ({cfg['backend']} backend, {cfg['auth']['type']} auth)")]
    checks += [check_port(cfg), check_proxy(cfg), check_state_dir(cfg), check_profiles(cfg), check_profile_memory(cfg), check_profile_cores(cfg),
               check_curriculum(cfg), check_user_reachable(cfg)]
    checks += backend_checks(cfg)
    from academy.course.protect import course_checks  # sources and state closed to learners
    checks += course_checks(cfg)
    from academy.course.grading.cleanup import doctor_check as grading_leftovers  # sandbox folders a killed grader left
    checks.append(grading_leftovers())
    return checks


def run(args: argparse.Namespace) -> int:
    checks = collect(args.config, args.port)
    table = Table("check", "status", "detail", title="academy doctor")
    for check in checks:
        status = "[red]FAIL[/red]" if not check.ok else "[yellow]warn[/yellow]" if check.warning else "[green]ok[/green]"
        table.add_row(check.name, status, check.detail)
    Console(width=max(100, Console().width)).print(table)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        return clitools.failed(args, f"{len(failed)} check(s) failed: {', '.join(failed)}")
    print("academy doctor: all checks passed")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="check config, ports, proxy, state dir and (slurm) the scheduler")
    p.add_argument("--port", type=clitools.port_number, help="public port to check (overrides hub.port, as `academy up --port` does)")
    p.set_defaults(func=run)
