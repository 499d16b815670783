"""The ``academy`` command line: one argparse entry point that gathers each area's sub-command."""
from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes ``register(subparsers)``; keeping the list here makes the CLI's
# surface visible in one place while each area owns its own options.
SUBCOMMANDS = [
    "academy.up",
    "academy.doctor",
    "academy.accounts",
    "academy.schemadoc",
    "academy.curriculum.cli",
    "academy.course.cli",
    "academy.workshop.cli",
    "academy.envs",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="academy",
        description="AI Factory Academy: JupyterHub on Slurm GPU nodes, a tested curriculum and a graded course.",
    )
    parser.add_argument("--config", help="site config YAML (default: $ACADEMY_CONFIG or hub/academy.yaml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
