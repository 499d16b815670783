"""One voice for every ``academy`` command: the exit-code policy, error lines on stderr, shared argument types.

Imports only the standard library, so that ``academy <command> --help`` stays fast and light.
"""
from __future__ import annotations

import argparse
import sys

OK = 0
FAILED = 1
REFUSED = 2
INTERRUPTED = 130

EXIT_POLICY = f"""\
exit codes (every command):
  {OK}    success
  {FAILED}    the command ran, but some or all of its items failed (a notebook, a submission,
       a check, a participant, a teardown step); what succeeded is kept, and the last
       line on stderr says what failed
  {REFUSED}    refused before anything was changed: a usage error, invalid input or site
       config, or a pre-flight check (busy port, hub never started, no permission)
  {INTERRUPTED}  interrupted (Ctrl-C or SIGTERM)
Errors and failures go to stderr as `academy <command>: <message>`; reports go to stdout.
Lists: repeat the option (--students ann --students bob); ids may also be comma-separated."""


class Refused(Exception):
    """Raise to stop a command before it changed anything: one line on stderr, exit code 2."""


def command_name(args: argparse.Namespace) -> str:
    """``academy course autograde``: the words the user typed to reach this command (set by ``cli.main``)."""
    return getattr(args, "command_prog", None) or "academy"


def error(args: argparse.Namespace, message: str) -> None:
    """Print ``academy <command>: <message>`` on stderr."""
    print(f"{command_name(args)}: {message}", file=sys.stderr, flush=True)


def failed(args: argparse.Namespace, message: str) -> int:
    """Say on stderr which items failed; returns the exit code for a partial failure."""
    error(args, message)
    return FAILED


def refused(args: argparse.Namespace, message: str) -> int:
    """Say on stderr why nothing was done; returns the exit code for a refusal."""
    error(args, message)
    return REFUSED


def is_refusal(exc: BaseException) -> bool:
    """Is this an error that means the request or the site config was refused (invalid config)?"""
    # Looked up, not imported: the config machinery (jsonschema) stays out of commands that never load it.
    validation = sys.modules.get("academy.validation")
    return isinstance(exc, Refused) or (validation is not None and isinstance(exc, validation.ConfigError))


def leaf_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The sub-command parser ``args`` came from; its ``prog`` is e.g. ``academy workshop create``."""
    while True:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, sub.dest, None) if sub else None
        if chosen not in (sub.choices if sub else {}):
            return parser
        parser = sub.choices[chosen]


# --- argument types ------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """A whole number of at least 1 (``--jobs``, limits, counts that cannot be zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0 (counts where 0 means none)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    """A number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 seconds")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


class ListOption(argparse.Action):
    """The one way to pass a list of ids: repeat the option; a value may also hold several, comma-separated."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items += [v.strip() for v in str(values).split(",") if v.strip()]
        setattr(namespace, self.dest, items)


def list_option(parser: argparse.ArgumentParser, *flags: str, help: str, **kwargs) -> argparse.Action:
    """Add a repeatable list option (default: the empty list)."""
    return parser.add_argument(*flags, action=ListOption, default=[], help=f"{help} (repeatable; or comma-separated)", **kwargs)
