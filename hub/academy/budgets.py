"""``academy budgets sync|show``: apply the site config's GPU-hour budgets to Slurm, and show usage per account.

``sync`` makes Slurm match ``slurm.accounting``: it adds the default account and each budget's account
(``sacctmgr -i add account``), sets each budget as ``GrpTRESMins=gres/gpu=<gpu_hours × 60>`` and adds the
course grader's Unix user (``workshops.formgrader.user``) to the default account, so that an
administrator edits YAML and runs one command instead of a root shell full of sacctmgr. It runs as
root or a Slurm operator. Learners are added to their account by the hub before their first job.
``show`` prints the figures the spawn form shows, for every account, from one sshare call.
"""
from __future__ import annotations

import argparse
import asyncio
import pwd

from academy import clitools


def register(subparsers) -> None:
    p = subparsers.add_parser("budgets", help="apply GPU-hour budgets to Slurm accounting, or show usage",
                              description=__doc__.split("\n\n")[0], epilog=clitools.EXIT_POLICY)
    p.add_argument("action", choices=["sync", "show"], help="sync: create accounts and limits; show: usage per account")
    p.set_defaults(func=_cli)


def sync_commands(accounting: dict, grader: str = "") -> list[str]:
    """The sacctmgr commands that make Slurm match ``slurm.accounting`` (each one idempotent)."""
    from academy.slurm import commands

    cmds = []
    accounts = [commands.account(a) for a in filter(None, [accounting.get("default_account", "")])]
    for budget in accounting.get("budgets", {}).values():
        if budget["account"] not in accounts:
            accounts.append(commands.account(budget["account"]))
    for name in accounts:
        cmds.append(commands.hub_command("sacctmgr", "-i", "add", "account", name, "description=academy",
                                         "organization=academy"))
    for budget in accounting.get("budgets", {}).values():
        minutes = int(round(float(budget["gpu_hours"]) * 60))
        cmds.append(commands.hub_command("sacctmgr", "-i", "modify", "account", "where", f"name={budget['account']}",
                                         "set", f"GrpTRESMins=gres/gpu={minutes}"))
    if grader and accounting.get("default_account"):
        cmds.append(commands.hub_command("sacctmgr", "-i", "add", "user", commands.unix_name(grader),
                                         f"account={accounting['default_account']}"))
    return cmds


async def apply(cmds: list[str]) -> list[str]:
    """Run each command; return the problems (sacctmgr's "Nothing new added" is success)."""
    from academy.slurm import commands

    problems = []
    for cmd in cmds:
        result = await commands.run_command(cmd)
        text = (result.stdout + result.stderr).lower()
        quiet = ("nothing new added" in text or "nothing modified" in text) and "doesn't exist" not in text
        if not result.ok and not quiet:
            problems.append(f"{cmd}: {result.message}")
    return problems


def _cli(args: argparse.Namespace) -> int:
    from academy.siteconfig import load_config
    from academy.slurm import budgets

    cfg = load_config(args.config)
    accounting = cfg["slurm"]["accounting"]
    if not accounting["enabled"]:
        return clitools.refused(args, "slurm.accounting.enabled is false in the site config: nothing to do")
    if args.action == "sync":
        grader = cfg["workshops"]["formgrader"]["user"]
        try:
            pwd.getpwnam(grader)
        except KeyError:
            grader = ""  # no grader account on this machine: nothing to register
        problems = asyncio.run(apply(sync_commands(accounting, grader)))
        for problem in problems:
            clitools.error(args, problem)
        if problems:
            return clitools.failed(args, f"{len(problems)} sacctmgr command(s) failed")
        print(f"Slurm accounts and budgets match the site config ({len(accounting['budgets'])} budget(s)).")
        return clitools.OK
    snapshot = asyncio.run(budgets.BudgetReader(refresh_seconds=0).snapshot())
    if not snapshot.available:
        return clitools.failed(args, f"GPU budgets are unavailable: {snapshot.error}")
    groups = {b["account"]: g for g, b in accounting["budgets"].items()}
    for name, usage in sorted(snapshot.accounts.items()):
        limit = budgets.hours(usage.limit_gpu_minutes) if usage.limit_gpu_minutes is not None else "-"
        left = budgets.hours(usage.left) if usage.left is not None else "-"
        print(f"{name:20} {groups.get(name, ''):16} used {budgets.hours(usage.used_gpu_minutes):>8} h  "
              f"reserved {budgets.hours(usage.reserved_gpu_minutes):>8} h  limit {limit:>8} h  left {left:>8} h")
    return clitools.OK
