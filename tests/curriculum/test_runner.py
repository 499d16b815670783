"""Tests of ``academy curriculum test`` on small synthetic notebooks run by real kernels.

One module-scoped run covers a passing notebook and one of each way to fail (raises,
hangs, breaks its learning check, committed dirty, missing a heading, kernel dies); the CLI tests
then check exit codes, the JUnit file and the kept notebooks on smaller selections.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest
from nbformat.v4 import new_output

from support.notebooks import skeleton, write
from academy.cli import main
from academy.curriculum import RunOptions, Status, discover, run_notebooks

HANG_TIMEOUT = 12.0  # long enough for a loaded CI core to start a kernel, short enough to keep the suite lean


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    """A notebooks/ directory with one passing and five broken notebooks, plus a data file."""
    root = tmp_path_factory.mktemp("curriculum")
    nbs = root / "notebooks"
    (nbs / "data").mkdir(parents=True)
    (nbs / "data" / "numbers.txt").write_text("1\n2\n")
    pid_file = root / "hang.pid"
    write(
        nbs,
        "00_passes",
        skeleton(
            0,
            content="total = sum(int(x) for x in open('data/numbers.txt'))\nopen('artifact.txt', 'w').write('scratch')",
            learning_check="assert total == 3, f'total {total} should be 3'\nreport(total=total, smoke=smoke, device=device)",
        ),
    )
    write(nbs, "01_raises", skeleton(1, content="ratio = 1\nraise ZeroDivisionError('learning rate schedule divided by zero')"))
    write(nbs, "02_hangs", skeleton(2, content=f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(3600)"))
    write(
        nbs,
        "03_breaks_check",
        skeleton(3, learning_check="val_loss = 9.5\nassert val_loss < 2.2, f'validation loss {val_loss:.2f} should fall below 2.2'\nreport(val_loss=val_loss)"),
    )
    dirty = skeleton(4)
    dirty.cells[7].outputs = [new_output("stream", name="stdout", text="left over\n")]
    dirty.cells[7].execution_count = 7
    write(nbs, "04_dirty", dirty)
    headless = skeleton(5)
    headless.cells[1].source = "## Goals\n1. Run a cell"
    write(nbs, "05_no_overview", headless)
    write(nbs, "06_kernel_dies", skeleton(6, content="import os\nos._exit(9)  # what the OOM killer does to a kernel"))
    return nbs


@pytest.fixture(scope="module")
def outcome(suite, tmp_path_factory):
    """Every synthetic notebook run once, two at a time, with HOME pointed at a scratch directory."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        options = RunOptions(jobs=2, timeout=HANG_TIMEOUT, parameters={"smoke": True}, keep_dir=suite.parent / "kept", threads_per_job=1)
        results = run_notebooks(discover.curriculum_notebooks(suite), options)
    return {r.name: r for r in results}, home


def test_passing_notebook_reports_metrics(outcome):
    """Does a good notebook PASS with the metrics its learning check reported and the smoke parameter applied?"""
    results, _ = outcome
    good = results["00_passes"]
    assert good.status is Status.PASS, good.summary()
    assert good.metrics == {"total": 3, "smoke": True, "device": "auto"}
    assert good.error is None and good.kept is None and good.seconds > 0


def test_run_leaves_repository_and_home_clean(suite, outcome):
    """Do notebooks run in a scratch copy (files they write stay out of notebooks/) and log progress to a temp file?"""
    _, home = outcome
    assert not (suite / "artifact.txt").exists()
    assert not (home / ".academy").exists()
    assert sorted(p.name for p in suite.iterdir()) == sorted(
        ["data", "00_passes.ipynb", "01_raises.ipynb", "02_hangs.ipynb", "03_breaks_check.ipynb", "04_dirty.ipynb", "05_no_overview.ipynb", "06_kernel_dies.ipynb"]
    )


def test_raising_cell_is_named_with_source_and_error(outcome):
    """Does a cell that raises make the notebook FAIL with that cell's source, id and the exception?"""
    bad = outcome[0]["01_raises"]
    assert bad.status is Status.FAIL
    assert (bad.error.ename, bad.error.evalue) == ("ZeroDivisionError", "learning rate schedule divided by zero")
    assert "raise ZeroDivisionError" in bad.failing_cell_source
    assert bad.failing_cell_id == "c01-07" and bad.failing_cell_index == 7
    assert "Traceback" in bad.error.traceback and "\x1b[" not in bad.error.traceback
    assert bad.kept is not None and bad.kept.exists()


def test_hung_notebook_times_out_and_its_kernel_dies(suite, outcome):
    """Is a hanging notebook stopped at the limit, reported TIMEOUT at its running cell, and its kernel killed?"""
    hung = outcome[0]["02_hangs"]
    assert hung.status is Status.TIMEOUT
    assert HANG_TIMEOUT <= hung.seconds < HANG_TIMEOUT + 15
    assert "time.sleep(3600)" in hung.failing_cell_source
    kernel_pid = int((suite.parent / "hang.pid").read_text())
    assert not psutil.pid_exists(kernel_pid) or psutil.Process(kernel_pid).status() == psutil.STATUS_ZOMBIE


def test_broken_learning_check_is_called_out(outcome):
    """Does a learning-check assert that no longer holds FAIL with the assert message, marked as the learning check?"""
    broken = outcome[0]["03_breaks_check"]
    assert broken.status is Status.FAIL
    assert broken.learning_check_failed
    assert broken.error.ename == "AssertionError"
    assert broken.error.evalue == "validation loss 9.50 should fall below 2.2"
    assert broken.summary().startswith("learning check failed: AssertionError")


def test_dirty_and_off_skeleton_notebooks_are_flagged(outcome):
    """Do committed outputs and a missing required heading make otherwise-running notebooks DIRTY, with reasons?"""
    results, _ = outcome
    dirty, headless = results["04_dirty"], results["05_no_overview"]
    assert dirty.status is Status.DIRTY and headless.status is Status.DIRTY
    assert "cell 7 (c04-07) has committed outputs" in dirty.problems
    assert "cell 7 (c04-07) has execution_count 7" in dirty.problems
    assert "missing section heading '## Overview'" in headless.problems


def test_dead_kernel_is_blamed_on_its_cell(outcome):
    """When the kernel dies mid-cell (as under the OOM killer), is the notebook FAIL at that cell, not a runner crash?"""
    dead = outcome[0]["06_kernel_dies"]
    assert dead.status is Status.FAIL
    assert dead.error.ename == "DeadKernelError"
    assert "os._exit(9)" in dead.failing_cell_source and dead.failing_cell_id == "c06-07"


def run_cli(capsys, monkeypatch, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", "200")  # keep rich from wrapping the lines we look for
    code = main(["curriculum", "test", *args])
    return code, capsys.readouterr().out


def test_cli_failure_exit_junit_and_kept_notebook(suite, tmp_path, capsys, monkeypatch):
    """Does the CLI exit non-zero, name the failing notebook with its cell and error, and write JUnit and the kept notebook?"""
    junit, keep = tmp_path / "junit.xml", tmp_path / "kept"
    code, out = run_cli(capsys, monkeypatch, "--dir", str(suite), "--jobs", "2", "--smoke", "--junit", str(junit), "--keep", str(keep), "0", "breaks_check")
    assert code == 1
    assert "03_breaks_check: FAIL" in out and "validation loss 9.50 should fall below 2.2" in out
    assert "cell 12 [id c03-12] `val_loss = 9.5` (the learning check)" in out
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"00_passes", "03_breaks_check"}
    assert cases["00_passes"].find("failure") is None
    failure = cases["03_breaks_check"].find("failure")
    assert failure.get("message").startswith("learning check failed: AssertionError: validation loss 9.50")
    assert "assert val_loss < 2.2" in failure.text and "--- traceback ---" in failure.text
    assert {p.get("name") for p in cases["00_passes"].iter("property")} == {"metric.total", "metric.smoke", "metric.device"}
    assert sorted(p.name for p in keep.iterdir()) == ["03_breaks_check.ipynb"]


def test_cli_passes_parameters_and_exits_zero(suite, tmp_path, capsys, monkeypatch):
    """Does an all-passing selection exit 0 with --device reaching the notebook and the metrics in the table?"""
    code, out = run_cli(capsys, monkeypatch, "--dir", str(suite), "--smoke", "--device", "cpu", "--junit", str(tmp_path / "j.xml"), "--keep", str(tmp_path / "k"), "00")
    assert code == 0, out
    assert "device=cpu" in out and "smoke=True" in out and "all 1 passed" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["99"], "no curriculum notebook matches '99'"),
        (["--dir", "/nonexistent/notebooks"], "does not exist"),
    ],
)
def test_cli_rejects_unknown_notebooks(suite, capsys, monkeypatch, args, message):
    """Is a typo in a notebook name or directory a clear one-line error with exit code 2, running nothing?"""
    if "--dir" not in args:
        args = ["--dir", str(suite), *args]
    code = main(["curriculum", "test", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.startswith("academy curriculum test: ")


@pytest.mark.parametrize(
    "args",
    [["-p", "lr"], ["-p", "import=1"], ["-p", "smoke=True"], ["--device", "gpu; rm -rf /"], ["--jobs", "0"], ["--timeout", "-5"]],
)
def test_cli_rejects_bad_options(args, capsys):
    """Are malformed parameters, reserved names, unsafe devices and silly limits rejected by argparse (exit 2)?"""
    with pytest.raises(SystemExit) as exc:
        main(["curriculum", "test", *args])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_selection_and_parameter_parsing(suite):
    """Do numbers, stems, slugs and file names select notebooks in curriculum order, and -p values get typed?"""
    notebooks = discover.curriculum_notebooks(suite)
    names = [p.stem for p in discover.select(notebooks, ["3", "01_raises.ipynb", "passes", "03"])]
    assert names == ["00_passes", "01_raises", "03_breaks_check"]
    assert discover.parse_parameter("lr=1e-3") == ("lr", 0.001)
    assert discover.parse_parameter("steps=20") == ("steps", 20)
    assert discover.parse_parameter("smoke=true") == ("smoke", True)
    assert discover.parse_parameter("sizes=[1, 2]") == ("sizes", [1, 2])
    assert discover.parse_parameter("name='tiny gpt'") == ("name", "tiny gpt")


def test_worker_env_keeps_kernels_from_fighting(tmp_path, monkeypatch):
    """Does the runner cap BLAS/OpenMP threads per kernel (an explicit OMP_NUM_THREADS still wins) and keep lesson files in scratch?"""
    from academy.curriculum.runner import _Job, _worker_env

    job = _Job(tmp_path / "x.ipynb", tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = _worker_env(job, RunOptions(jobs=2, threads_per_job=1))
    assert env["OMP_NUM_THREADS"] == "1" and env["ACADEMY_PROGRESS_FILE"] == str(tmp_path / "progress.jsonl")
    assert env["ACADEMY_WORKDIR"] == str(tmp_path / "academy-work")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert _worker_env(job, RunOptions(jobs=2, threads_per_job=1))["OMP_NUM_THREADS"] == "3"
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_sigterm_kills_every_kernel(tmp_path):
    """When CI cancels a run with SIGTERM, does the CLI exit 130 and leave no kernel running?"""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    pid_file = tmp_path / "kernel.pid"
    write(nbs, "00_hangs", skeleton(0, content=f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(3600)"))
    cli = subprocess.Popen(
        [sys.executable, "-m", "academy", "curriculum", "test", "--dir", str(nbs), "--junit", str(tmp_path / "j.xml"), "--keep", str(tmp_path / "k")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and cli.poll() is None:
        time.sleep(0.2)
    assert pid_file.exists(), "the hanging notebook never started"
    kernel = psutil.Process(int(pid_file.read_text()))
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=30) == 130
    kernel.wait(timeout=10)
    assert not kernel.is_running()


def test_schedule_starts_longest_first(tmp_path):
    """Are notebooks started longest-first from history, and latest-lesson-first without it (results still in order)?"""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for i in range(3):
        write(nbs, f"0{i}_quick", skeleton(i))
    notebooks = discover.curriculum_notebooks(nbs)
    options = RunOptions(jobs=1, timeout=120, parameters={"smoke": True})
    started: list[str] = []
    results = run_notebooks(notebooks, options, expected_seconds={"00_quick": 9.0, "01_quick": 1.0}, on_start=lambda nb: started.append(nb.stem))
    assert started == ["02_quick", "00_quick", "01_quick"]
    assert [r.name for r in results] == ["00_quick", "01_quick", "02_quick"]
    assert all(r.ok for r in results)


def test_the_house_working_copy_lacks_the_lesson_code_as_a_home_does(tmp_path):
    """Does a curriculum notebook run without lessons/ beside it (as in a learner's home), while a trainer's folder keeps its own lessons/?"""
    from academy.curriculum.results import Target

    probe = "import os\nseen = [os.path.exists(p) for p in ('lessons', 'data/lessons/notes.txt', 'data/numbers.txt')]"
    for folder in ("notebooks", "course"):
        (tmp_path / folder / "lessons").mkdir(parents=True)
        (tmp_path / folder / "lessons" / "__init__.py").write_text("SOLUTION = 42\n")
        (tmp_path / folder / "data" / "lessons").mkdir(parents=True)
        (tmp_path / folder / "data" / "lessons" / "notes.txt").write_text("content that happens to sit in a folder called lessons")
        (tmp_path / folder / "data" / "numbers.txt").write_text("1\n")
    house = write(tmp_path / "notebooks", "00_home_like", skeleton(0, content=probe, learning_check="assert seen == [False, True, True], seen\nreport(n=1)"))
    trainer = write(tmp_path / "course", "intro", skeleton(0, content=probe, learning_check="assert seen == [True, True, True], seen\nreport(n=1)"))
    options = RunOptions(jobs=1, timeout=120, parameters={"smoke": True}, threads_per_job=1)
    results = run_notebooks([Target(house, "00_home_like", True), Target(trainer, "intro.ipynb", False)], options)
    assert [(r.name, r.status) for r in results] == [("00_home_like", Status.PASS), ("intro.ipynb", Status.PASS)], [r.summary() for r in results]
