"""One CLI voice: every `academy` command reports errors on stderr as `academy <command>: …` with the documented exit codes."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from academy import cli, clitools

REPO = Path(__file__).resolve().parents[2]

# A usage error for every top-level command, and the command words argparse must name.
USAGE_ERRORS = {
    "up": (["up", "--bogus"], "academy up"),
    "doctor": (["doctor", "--port", "eighty"], "academy doctor"),
    "accounts": (["accounts", "add"], "academy accounts add"),
    "config": (["config", "bogus"], "academy config"),
    "curriculum": (["curriculum", "test", "--timeout", "-5"], "academy curriculum test"),
    "course": (["course", "autograde"], "academy course autograde"),
    "workshop": (["workshop", "create", "w1"], "academy workshop create"),
    "env": (["env", "create"], "academy env create"),
    "link": (["link", "--profile", "cpu"], "academy link"),
    "project": (["project", "new", "batch-job"], "academy project new"),
    "teams": (["teams", "--budget", "0"], "academy teams"),
    "budgets": (["budgets", "spend"], "academy budgets"),
}

# Every option that counts jobs, with the words that reach it.
JOBS = [["curriculum", "test"], ["course", "autograde", "t1"], ["workshop", "autograde", "w1"]]


def run_main(capsys, argv: list[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


def all_options(parser: argparse.ArgumentParser):
    """(prog, action) for every option of every sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                yield from all_options(sub)
        elif action.option_strings:
            yield parser.prog, action


def test_every_command_has_a_usage_error_case():
    """Does this file check a usage error for every top-level command there is?"""
    assert set(USAGE_ERRORS) == set(cli.COMMANDS)


@pytest.mark.parametrize("command", sorted(USAGE_ERRORS))
def test_usage_error_names_the_command_on_stderr_with_exit_2(command, capsys):
    """Does a usage error print `academy <command>: …` on stderr, nothing on stdout, and exit 2?"""
    argv, prog = USAGE_ERRORS[command]
    code, out, err = run_main(capsys, argv)
    assert code == clitools.REFUSED == 2
    assert out == ""
    assert last_line(err).startswith(f"{prog}: error: "), err


def test_a_mistyped_command_is_a_usage_error(capsys):
    """Is an unknown command (or none) refused by `academy` itself with exit 2?"""
    code, _, err = run_main(capsys, ["bogus"])
    assert code == 2 and last_line(err).startswith("academy: error: argument COMMAND: invalid choice: 'bogus'")
    code, _, err = run_main(capsys, [])
    assert code == 2 and "required: COMMAND" in err


@pytest.mark.parametrize("words", JOBS, ids=[" ".join(w[:2]) for w in JOBS])
def test_jobs_zero_is_refused(words, capsys):
    """Is `--jobs 0` (and a non-number) refused with a clear message wherever --jobs exists?"""
    prog = "academy " + " ".join(words[:2])
    for value, why in (("0", "0 must be at least 1"), ("two", "'two' is not a whole number")):
        code, _, err = run_main(capsys, [*words, "--jobs", value])
        assert code == 2 and last_line(err).startswith(f"{prog}: error: argument "), err
        assert last_line(err).endswith(f"--jobs: {why}"), err


def test_every_jobs_and_count_option_uses_the_shared_types():
    """Does every --jobs use positive_int, and is no number option left with a bare int or float type?"""
    options = list(all_options(cli.build_parser()))
    jobs = {prog for prog, action in options if "--jobs" in action.option_strings}
    assert jobs == {"academy " + " ".join(w[:2]) for w in JOBS}
    assert all(a.type is clitools.positive_int for _, a in options if "--jobs" in a.option_strings)
    bare = [f"{prog} {a.option_strings[-1]}" for prog, a in options if a.type in (int, float)]
    assert bare == []


def test_lists_are_passed_one_way():
    """Is every list of ids a repeatable option that also splits commas, and no option a comma-only string?"""
    options = list(all_options(cli.build_parser()))
    lists = {f"{prog} {a.option_strings[-1]}" for prog, a in options if isinstance(a, clitools.ListOption)}
    assert {"academy course setup --students", "academy course collect --students", "academy course autograde --students",
            "academy workshop create --user", "academy workshop participants --remove",
            "academy workshop warmstart --retry"} <= lists
    appended = [a for _, a in options if isinstance(a, argparse._AppendAction)]
    assert all("repeatable" in (a.help or "") for a in appended)  # -p and --exclude: values that may hold commas
    comma_only = [f"{prog} {a.option_strings[-1]}" for prog, a in options
                  if re.search(r"comma[- ]separated", a.help or "") and not isinstance(a, clitools.ListOption)]
    assert comma_only == []
    args = cli.build_parser().parse_args(["course", "collect", "t1", "--students", "ann,bob", "--students", "cas"])
    assert args.students == ["ann", "bob", "cas"]
    assert cli.build_parser().parse_args(["course", "collect", "t1"]).students == []


def test_help_epilog_states_the_exit_policy(capsys):
    """Does `academy --help` list every exit code of the policy, and does the README's CLI section say the same?"""
    code, out, _ = run_main(capsys, ["--help"])
    assert code == 0
    policy = out[out.index("exit codes"):]
    for number in (clitools.OK, clitools.FAILED, clitools.REFUSED, clitools.INTERRUPTED):
        assert f"\n  {number} " in policy
    assert "stderr as `academy <command>: <message>`" in policy
    readme = (REPO / "README.md").read_text()
    for row in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert row in readme


def test_curriculum_help_stays_light():
    """Does `academy curriculum --help` run without importing bcrypt, jsonschema, torch, nbgrader or JupyterHub?"""
    command = "curriculum"
    heavy = ["bcrypt", "jsonschema", "torch", "nbgrader", "jupyterhub", "papermill", "nbformat", "sqlalchemy"]
    probe = (
        "import json, sys, contextlib, io\n"
        "from academy.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        main([{command!r}, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "print(json.dumps({'code': code, 'help': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    seen = json.loads(proc.stdout)
    assert seen["code"] == 0 and f"usage: academy {command}" in seen["help"]
    assert cli.COMMANDS[command] in seen["modules"]  # the check is not vacuous: the command's module did load
    loaded = [m for m in seen["modules"] if m.split(".")[0] in heavy]
    assert loaded == [], loaded
    others = [m for name, m in cli.COMMANDS.items() if name != command and m in seen["modules"]]
    assert others == [], others  # only the command asked for is imported


def test_module_names_match_their_commands():
    """Is each command registered by academy/<command>.py or academy/<command>/cli.py, and by that module alone?"""
    for name, module in cli.COMMANDS.items():
        assert module in (f"academy.{name}", f"academy.{name}.cli"), (name, module)
        sub = argparse.ArgumentParser(prog="academy").add_subparsers()
        __import__(module, fromlist=["register"]).register(sub)
        assert list(sub.choices) == [name], (module, list(sub.choices))


@pytest.fixture
def missing(tmp_path) -> str:
    return str(tmp_path / "no-such.yaml")


def failure_cases(tmp_path: Path, missing: str) -> dict[str, tuple[list[str], int, str]]:
    dirty = tmp_path / "scratch.ipynb"
    dirty.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": "a1", "metadata": {}, "source": "1", "execution_count": 3,
                   "outputs": [{"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "1"}}]}],
    }))
    return {
        "up": (["--config", missing, "up"], 2, "academy up: "),
        "doctor": (["--config", missing, "doctor"], 1, "academy doctor: 1 check(s) failed: config"),
        "accounts": (["accounts", "add", "Bad@Name"], 2, "academy accounts add: invalid username(s): Bad@Name"),
        "config": (["--config", missing, "config", "check"], 2, "academy config check: "),
        "curriculum": (["curriculum", "lint", str(dirty)], 1, "academy curriculum lint: 1 notebook(s) not clean"),
        "course": (["course", "--course-dir", str(tmp_path / "none"), "--state-dir", str(tmp_path / "s"), "status"], 2,
                   f"academy course status: course directory {tmp_path / 'none'} does not exist"),
        "workshop": (["--config", missing, "workshop", "list"], 2, "academy workshop list: "),
        "env": (["env", "remove", "Bad/../name"], 2, "academy env remove: name 'Bad/../name'"),
        "link": (["link", "--profile", "cpu", "--hours", "2", "--path", "../x.ipynb"], 2, "academy link: path: '../x.ipynb'"),
        "project": (["project", "new", "batch-job", "../x"], 2, "academy project new: project name '../x': a name, not a path"),
        "teams": (["--config", missing, "teams"], 2, "academy teams: "),
        "budgets": (["--config", missing, "budgets", "show"], 2, "academy budgets: "),
    }


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_a_failure_says_why_on_stderr_with_its_exit_code(command, tmp_path, missing, capsys, monkeypatch):
    """Does a representative failure of each command exit non-zero with `academy <command>: …` as stderr's last line?"""
    monkeypatch.setenv("HOME", str(tmp_path))
    argv, expected, prefix = failure_cases(tmp_path, missing)[command]
    code, _, err = run_main(capsys, argv)
    assert code == expected, err
    assert last_line(err).startswith(prefix), err
    assert "Traceback" not in err


def test_workshop_without_a_running_hub_is_refused(tmp_path, capsys):
    """Is a workshop command without the hub's service token refused with exit 2 and the hint to start the hub?"""
    config = tmp_path / "academy.yaml"
    config.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n")
    code, _, err = run_main(capsys, ["--config", str(config), "workshop", "show", "w1"])
    assert code == 2
    assert last_line(err) == ("academy workshop show: no service token in the state directory; "
                              "start the hub with `academy up` first")
