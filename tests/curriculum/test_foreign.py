"""Does ``academy curriculum test PATH…`` run a trainer's own notebooks as they are: any names and folders, their own data, their own conventions?

One module-scoped CLI run over the tree of ``testbed/foreign_notebooks.py`` (real kernels) covers the
expected outcome of every notebook; smaller runs check ``--require-clean``, ``--kernel``,
``--lint`` and that an interrupt still writes the JUnit report of what finished.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from support.notebooks import NOTEBOOKS
from testbed.foreign_notebooks import HANGS_CELL, RAISES_CELL, foreign_tree
from support.process import exited
from academy.cli import main
from academy.curriculum import discover
from academy.curriculum.collect import collect
from academy.curriculum.results import NotebookResult, Status

HANG_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    root = tmp_path_factory.mktemp("trainer") / "course-repo"
    pid_file = root.parent / "hang.pid"
    expected = foreign_tree(root, hang_pid_file=pid_file)
    return root, expected, pid_file


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", "250")  # keep rich from wrapping the lines we look for
    code = main(["curriculum", "test", *args])
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def outcome(tree, tmp_path_factory):
    """The whole tree through the CLI once, two at a time, drafts excluded, with -p label=nightly."""
    root, _, _ = tree
    out_dir = tmp_path_factory.mktemp("out")
    junit, keep = out_dir / "junit.xml", out_dir / "kept"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "250")
        mp.setenv("HOME", str(out_dir))
        buf = io.StringIO()  # capsys is function-scoped; this fixture is not
        with contextlib.redirect_stdout(buf):
            code = main([
                "curriculum", "test", str(root), "--exclude", "drafts", "--jobs", "2", "--timeout", str(HANG_TIMEOUT),
                "-p", "label=nightly", "--junit", str(junit), "--keep", str(keep),
            ])  # fmt: skip
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    return code, buf.getvalue(), cases, keep


def _status(case) -> str:
    for tag in ("failure", "error"):
        node = case.find(tag)
        if node is not None:
            return node.get("type")
    return "PASS"


def test_discovery_names_paths_and_skips_checkpoints(tree):
    """Are notebooks found recursively under any names, named relative to the root, with checkpoints, hidden folders and excludes left out?"""
    root, expected, _ = tree
    found = [t.name for t in discover.find_notebooks([root], ["drafts"])]
    assert sorted(found) == sorted(expected)
    assert not any(t.house for t in discover.find_notebooks([root]))
    assert "drafts/wip.ipynb" in [t.name for t in discover.find_notebooks([root])]
    single = discover.find_notebooks([root / "week1" / "Loading data.ipynb"])
    assert [t.name for t in single] == ["Loading data.ipynb"]


def test_every_notebook_gets_its_expected_outcome(tree, outcome):
    """Does each trainer notebook PASS, FAIL, TIME OUT or ERROR as it should, and the run exit 1?"""
    _, expected, _ = tree
    code, out, cases, _ = outcome
    assert code == 1, out
    assert {name: _status(case) for name, case in cases.items()} == expected, out


def test_source_tree_untouched_and_no_kernel_left(tree, outcome):
    """Does the trainer's folder stay as it was (no outputs written, no scratch files) and the hung kernel die?"""
    root, _, pid_file = tree
    assert not any(p.name in {"executed.ipynb", "__pycache__"} for p in root.rglob("*"))
    assert json.loads((root / "Intro to Python.ipynb").read_text())["cells"][1]["outputs"] == []
    assert exited(int(pid_file.read_text()))


def test_failing_cell_named_by_index_first_line_and_id(tree, outcome):
    """Is a failing cell named by its own index (injected parameters not counted), its first line and its committed id?"""
    root, _, _ = tree
    _, out, cases, keep = outcome
    failure = cases["broken/Raises Here.ipynb"].find("failure")
    assert failure.get("message") == "IndexError: list index out of range"
    committed_id = json.loads((root / "broken" / "Raises Here.ipynb").read_text())["cells"][RAISES_CELL]["id"]
    label = f"cell {RAISES_CELL} [id {committed_id}] `loss = history[-1]  # the training loop was deleted`"
    assert f"--- failing {label} ---" in failure.text
    assert label in out
    kept = json.loads((keep / "broken" / "Raises Here.ipynb").read_text())
    counts = [(c["metadata"].get("tags", []), c["execution_count"]) for c in kept["cells"] if c["cell_type"] == "code"]
    # The notebook's own cells count 1, 2, 3 as in JupyterLab; papermill's injected cell has none.
    assert counts == [(["parameters"], 1), (["injected-parameters"], None), ([], 2), ([], 3), ([], None)]


def test_timeout_names_the_running_cell(tree, outcome):
    """Is a hung notebook reported at the cell that was running (index and first line, no id in a 4.4 notebook), with an honest diagnosis?"""
    _, out, cases, keep = outcome
    error = cases["broken/hangs.ipynb"].find("error")
    assert error.get("type") == "TIMEOUT"
    assert f"--- failing cell {HANGS_CELL} `open(" in error.text and "time.sleep(3600)" in error.text
    assert "[id " not in error.text.split("---")[1]
    assert "the cell below was running" in error.get("message")
    assert "the cell was waiting" in error.get("message")  # time.sleep: kernel and runner idle
    assert (keep / "broken" / "hangs.ipynb").exists()


def test_unknown_kernel_is_named_with_a_fix(outcome):
    """Does a notebook for a kernel that is not installed get an ERROR naming the kernel and suggesting --kernel?"""
    _, _, cases, _ = outcome
    error = cases["other/stats_in_r.ipynb"].find("error")
    assert "kernel 'ir'" in error.get("message") and "--kernel NAME" in error.get("message")


def test_parameters_only_where_a_parameters_cell_is(outcome):
    """Are -p values injected into the notebook with a parameters cell, and nothing into one without (its assert proves it)?"""
    _, _, cases, _ = outcome
    assert _status(cases["week2/analysis-v2.ipynb"]) == "PASS"  # asserts label == 'nightly' and reads its own data/
    assert _status(cases["week1/Loading data.ipynb"]) == "PASS"  # asserts 'smoke' was not injected


def test_require_clean_and_kernel_override(tree, tmp_path, capsys, monkeypatch):
    """Does --require-clean make a notebook with committed outputs DIRTY (ids not demanded), and --kernel run the R-labelled one?"""
    root, _, _ = tree
    code, out = run_cli(
        capsys, monkeypatch, str(root / "week1" / "with outputs.ipynb"), str(root / "Intro to Python.ipynb"), "--require-clean",
        "--junit", str(tmp_path / "j.xml"), "--keep", str(tmp_path / "k"),
    )  # fmt: skip
    assert code == 1
    assert "with outputs.ipynb: DIRTY" in out and "cell 0 (" in out and "has committed outputs" in out
    assert "Intro to Python.ipynb: DIRTY" not in out and "has no id" not in out
    code, out = run_cli(capsys, monkeypatch, str(root / "other"), "--kernel", "python3", "--junit", str(tmp_path / "j2.xml"))
    assert code == 0, out


def test_lint_on_request_and_unknown_kernel_flag(tree, tmp_path, capsys, monkeypatch):
    """Does --lint apply the house skeleton to a trainer's notebook, and is an unknown --kernel an ERROR naming it?"""
    root, _, _ = tree
    code, out = run_cli(capsys, monkeypatch, str(root / "Intro to Python.ipynb"), "--lint", "--junit", str(tmp_path / "j.xml"))
    assert code == 1 and "should look like NN_slug.ipynb" in out
    code, out = run_cli(capsys, monkeypatch, str(root / "Intro to Python.ipynb"), "--kernel", "julia-9", "--junit", str(tmp_path / "j.xml"))
    assert code == 1 and "--kernel 'julia-9' is not installed here" in out


def test_builtin_curriculum_keeps_its_full_lint(tmp_path):
    """Are the Academy's own notebooks, given as a folder path, still house notebooks held to the skeleton (and a copy outside not)?"""
    targets = discover.find_notebooks([NOTEBOOKS], [], NOTEBOOKS)
    assert targets and all(t.house and t.name == t.path.stem for t in targets)
    from academy.curriculum.runner import _problems
    from academy.curriculum.results import RunOptions

    nb = json.loads(targets[0].path.read_text())
    nb["cells"][0]["source"] = "no title"
    assert any("first cell should be a markdown title" in p for p in _problems(targets[0], nb, RunOptions()))
    foreign = discover.find_notebooks([targets[0].path], [], tmp_path)[0]
    assert not foreign.house and _problems(foreign, nb, RunOptions()) == []


def test_timeout_between_cells_blames_the_runner(tmp_path):
    """When no cell was running at the kill (time went into the runner), is that said instead of naming a cell?"""
    snapshot = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {"papermill": {"status": "completed", "start_time": "t"}}, "outputs": []}]}
    (tmp_path / "out.ipynb").write_text(json.dumps(snapshot))
    result = NotebookResult("n.ipynb", tmp_path / "n.ipynb", Status.PASS)
    collect(result, snapshot, output=tmp_path / "out.ipynb", outcome_path=tmp_path / "r.json", log=tmp_path / "log", timeout=5, hang="the runner itself was busy, not the kernel")
    assert result.status is Status.TIMEOUT and result.failing_cell_index is None
    assert "no cell was running: the time went into the runner" in result.error.evalue


def test_interrupt_still_writes_junit_of_what_finished(tmp_path):
    """When a run is cancelled (SIGTERM), does the JUnit report hold the notebook that had already passed, with no kernel left?"""
    root = tmp_path / "repo"
    pid_file = tmp_path / "kernel.pid"
    foreign_tree(root, hang_pid_file=pid_file)
    junit = tmp_path / "j.xml"
    cli = subprocess.Popen(
        [sys.executable, "-m", "academy", "curriculum", "test", str(root / "Intro to Python.ipynb"), str(root / "broken" / "hangs.ipynb"),
         "--jobs", "2", "--junit", str(junit), "--keep", str(tmp_path / "k")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(cli.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not (pid_file.exists() and any(line.startswith("PASS") for line in seen)) and time.monotonic() < deadline and cli.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists() and any("Intro to Python.ipynb" in line for line in seen), "".join(seen)
    kernel = psutil.Process(int(pid_file.read_text()))
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=30) == 130
    kernel.wait(timeout=10)
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert list(cases) == ["Intro to Python.ipynb"] and _status(cases["Intro to Python.ipynb"]) == "PASS"


def test_same_layout_twice_and_kept_names_stay_inside(tmp_path):
    """Do two folders with the same layout get distinct names, and can no name put a kept notebook outside --keep?"""
    from academy.curriculum.results import Target
    from academy.curriculum.runner import _kept_path

    for course in ("a", "b"):
        foreign_tree(tmp_path / course)
    names = [t.name for t in discover.find_notebooks([tmp_path / "a", tmp_path / "b"])]
    assert len(names) == len(set(names))
    keep = tmp_path / "kept"
    for name in ("../../etc/evil.ipynb", "/abs/x.ipynb", "week1/ok.ipynb", "00_welcome"):
        assert keep in _kept_path(keep, Target(tmp_path / "x.ipynb", name, False)).parents


def test_clean_keeps_a_trainers_notebook_format(tree, tmp_path, capsys):
    """Does `curriculum clean PATH` strip a trainer's nbformat 4.4 notebook without adding ids or bumping its format?"""
    root, _, _ = tree
    copy = tmp_path / "old.ipynb"
    nb = json.loads((root / "Intro to Python.ipynb").read_text())
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "x\n"}]
    nb["cells"][1]["execution_count"] = 4
    copy.write_text(json.dumps(nb))
    assert main(["curriculum", "clean", str(copy)]) == 0
    cleaned = json.loads(copy.read_text())
    assert cleaned["nbformat_minor"] == 4 and not any("id" in c for c in cleaned["cells"])
    assert cleaned["cells"][1]["outputs"] == [] and cleaned["cells"][1]["execution_count"] is None


def test_hang_diagnosis_tells_runner_from_kernel(tmp_path):
    """Is a busy runner with an idle kernel diagnosed as the runner's time, not as a cell waiting, and a busy kernel as computing?

    Real processes stand in for the worker and its kernel (a kernel is found by 'ipykernel' on its command line).
    """
    from academy.curriculum.runner import diagnose_hang

    spin = [sys.executable, "-c", "import sys\nwhile True: pass", "ipykernel"]
    sleep = [sys.executable, "-c", "import time; time.sleep(120)", "ipykernel"]
    procs = []
    try:
        for runner_cmd, kernel_cmd, verdict in ((spin[:3], sleep, "the runner itself was busy"), (sleep[:3], spin, "the kernel was computing")):
            runner, kernel = subprocess.Popen(runner_cmd), subprocess.Popen(kernel_cmd)
            procs += [runner, kernel]
            time.sleep(0.5)  # past interpreter start-up, as a real hung notebook long is
            text = diagnose_hang(runner.pid, [psutil.Process(kernel.pid)])
            assert text.startswith(verdict) and "waiting" not in text, text
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
