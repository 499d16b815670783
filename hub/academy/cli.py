"""The ``academy`` command line: one argparse entry point that gathers each area's sub-command."""
from __future__ import annotations

import argparse
import importlib
import sys

from academy import clitools

# Command -> the module that registers it (``register(subparsers)``): ``academy/<command>.py``, or
# ``academy/<command>/cli.py`` for an area with its own package. Keeping the list here makes the
# CLI's surface visible in one place while each area owns its own options.
COMMANDS = {
    "up": "academy.up",
    "doctor": "academy.doctor",
    "accounts": "academy.accounts",
    "config": "academy.config",
    "curriculum": "academy.curriculum.cli",
    "course": "academy.course.cli",
    "workshop": "academy.workshop.cli",
    "env": "academy.env",
    "link": "academy.link",
    "project": "academy.project.cli",
    "teams": "academy.teams.cli",
    "budgets": "academy.budgets",
}


def chosen_command(argv: list[str]) -> str | None:
    """The command ``argv`` names, if any, so that only its module is imported (``--help`` stays light)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word == "--config":
            skip = True
        elif word in COMMANDS:
            return word
        elif not word.startswith("-"):
            return None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) one command's with the others as bare names."""
    parser = argparse.ArgumentParser(
        prog="academy",
        description="AI Factory Academy: JupyterHub on Slurm GPU nodes, a tested curriculum and a graded course.",
        epilog=clitools.EXIT_POLICY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="site config YAML (default: $ACADEMY_CONFIG or hub/academy.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name)  # never chosen: argv names `only`
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(argv))
    args, extra = parser.parse_known_args(argv)
    leaf = clitools.leaf_parser(parser, args)
    if extra:  # argparse would name only `academy`; the command's own usage says more
        leaf.error(f"unrecognized arguments: {' '.join(extra)}")
    args.command_prog = leaf.prog
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return clitools.INTERRUPTED
    except Exception as exc:
        if not clitools.is_refusal(exc):
            raise
        return clitools.refused(args, str(exc))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
