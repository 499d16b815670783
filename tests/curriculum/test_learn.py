"""Tests of academy.learn: check/hint/solution feedback, the progress log, and the widget buttons in a real kernel."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from academy import learn
from academy.learn import METRICS_MIME, ProgressNotSavedWarning, exercise, feedback_buttons, pick_device, report

FIELDS = {"time", "user", "notebook", "exercise", "kind", "passed", "message"}


@pytest.fixture
def progress(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "progress" / "events.jsonl"
    monkeypatch.setenv(learn.PROGRESS_ENV, str(path))
    monkeypatch.setenv("JUPYTERHUB_USER", "ada")
    return path


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def make_double():
    @exercise("99_testing", "double", hint="Multiply by two.", solution="```python\nreturn x * 2\n```", title="Double it")
    def double_exercise(fn):
        assert fn(0) == 0, "double(0) should be 0: start from the input, not a constant."
        got = fn(3)
        assert got == 6, f"double(3) gave {got!r}, expected 6."
        return "Well done."

    return double_exercise


def test_right_answer_is_praised_and_logged(progress, capsys):
    """Does a right answer print ✅ with the checker's extra remark and log a passed check?"""
    ex = make_double()
    assert ex.check(lambda x: 2 * x)
    out = capsys.readouterr().out
    assert "✅ Double it: Correct! Well done." in out
    assert "Stuck?" not in out
    [event] = events(progress)
    assert (event["kind"], event["passed"], event["exercise"], event["notebook"]) == ("check", True, "double", "99_testing")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda x: x + 3, "double(0) should be 0: start from the input, not a constant."),
        (lambda x: x * 3 if x else 0, "double(3) gave 9, expected 6."),
        (lambda x: (_ for _ in ()).throw(NotImplementedError), "Not attempted yet: replace the placeholder with your code."),
        (lambda x: x / "a", "Your code raised TypeError"),
    ],
    ids=["wrong-start", "wrong-factor", "not-attempted", "crashes"],
)
def test_wrong_answer_gets_specific_feedback_without_raising(progress, capsys, answer, expected):
    """Does a wrong, unattempted or crashing answer print ❌ with the specific reason, log it, and not raise?"""
    ex = make_double()
    assert not ex.check(answer)
    out = capsys.readouterr().out
    assert f"❌ Double it: {expected}" in out
    assert "Hint / Solution" in out
    [event] = events(progress)
    assert event["passed"] is False and event["message"].startswith(expected)
    assert ex.results[-1].passed is False


def test_hint_and_solution_print_and_log(progress, capsys):
    """Do hint() and solution() show their text and log events whose passed is null?"""
    ex = make_double()
    assert ex.hint() == "Multiply by two."
    assert "return x * 2" in ex.solution()
    out = capsys.readouterr().out
    assert "💡 Hint: Multiply by two." in out and "📖 Solution:\n```python\nreturn x * 2" in out
    assert [(e["kind"], e["passed"]) for e in events(progress)] == [("hint", None), ("solution", None)]


def test_progress_lines_have_the_documented_fields(progress):
    """Is each progress line one JSON object with exactly the documented fields and types?"""
    ex = make_double()
    ex.check(lambda x: x)
    ex.hint()
    lines = progress.read_text().splitlines()
    assert len(lines) == 2
    for event in map(json.loads, lines):
        assert set(event) == FIELDS
        when = dt.datetime.fromisoformat(event["time"])
        assert when.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 60
        assert event["user"] == "ada"
        assert event["kind"] in learn.EVENT_KINDS
        assert event["passed"] in (True, False, None)
        assert isinstance(event["message"], str)


def test_long_messages_are_capped(progress):
    """Is a huge feedback message cut to the documented limit so one event stays one short line?"""
    event = learn.record_event("99_testing", "x", "check", False, "y" * 5000)
    assert len(event["message"]) == learn.MESSAGE_LIMIT
    assert len(events(progress)[0]["message"]) == learn.MESSAGE_LIMIT


def test_unknown_event_kind_is_rejected(progress):
    """Is a programming slip in an event kind rejected with a clear error instead of polluting the log?"""
    with pytest.raises(ValueError, match="check, hint, solution"):
        learn.record_event("99_testing", "x", "peek", None)


def test_concurrent_processes_keep_lines_whole(tmp_path):
    """Do two processes appending at once leave every line whole and parseable (no torn lines)?"""
    path = tmp_path / "shared.jsonl"
    n = 2000
    script = textwrap.dedent(
        """
        import sys, time
        from academy.learn import record_event
        who, start, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
        while time.time() < start:  # both writers begin together, so their appends really overlap
            time.sleep(0.001)
        for i in range(n):
            record_event("99_testing", f"{who}-{i}", "check", i % 2 == 0, who * 450)
        """
    )
    env = {"PATH": "/usr/bin:/bin", learn.PROGRESS_ENV: str(path), "JUPYTERHUB_USER": "ada"}
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", script, who, start, str(n)], env=env) for who in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    got = events(path)
    assert len(got) == 2 * n
    writers = [e["exercise"][0] for e in got]
    assert sum(a != b for a, b in zip(writers, writers[1:])) > 1, "the two writers never overlapped"
    for who in "ab":
        mine = [e for e in got if e["exercise"].startswith(f"{who}-")]
        assert len(mine) == n and all(e["message"] == who * 450 for e in mine)


def test_unwritable_progress_warns_once_and_lesson_continues(tmp_path, monkeypatch, capsys):
    """When the progress file cannot be written (its 'directory' is a file), is there one warning and no exception?"""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv(learn.PROGRESS_ENV, str(blocker / "progress.jsonl"))
    ex = make_double()
    with pytest.warns(ProgressNotSavedWarning, match="progress not saved"):
        assert ex.check(lambda x: 2 * x)
    assert "✅" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProgressNotSavedWarning)  # a second warning would now raise
        assert ex.hint() == "Multiply by two."


def test_default_progress_path_is_in_home(monkeypatch, tmp_path):
    """Without the override, do events go to ~/.academy/progress.jsonl?"""
    monkeypatch.delenv(learn.PROGRESS_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert learn.progress_path() == tmp_path / ".academy" / "progress.jsonl"


def test_buttons_reveal_hint_and_solution(progress):
    """Do the Hint and Solution buttons, clicked, log a reveal each (driven without a browser)?"""
    ex = make_double()
    box = feedback_buttons(ex)
    hint_btn, sol_btn = box.children[0].children
    assert (hint_btn.description, sol_btn.description) == ("Hint", "Solution")
    hint_btn.click()
    sol_btn.click()
    assert [e["kind"] for e in events(progress)] == ["hint", "solution"]


def test_solution_button_renders_markdown_code_fences(progress):
    """Does the Solution button show the solution's code fence as a code block (no raw fence), replacing the hint?"""
    ex = exercise("99_testing", "fenced", hint="Use `2 * x`.", solution="```python\ndef double(x):\n    return 2 * x\n```")(
        lambda fn: None)
    box = feedback_buttons(ex)
    hint_btn, sol_btn = box.children[0].children
    shown = box.children[1]
    hint_btn.click()
    assert "<code>2 * x</code>" in shown.value and "<strong>Hint:</strong>" in shown.value
    sol_btn.click()
    assert '<pre><code class="language-python">def double(x):\n    return 2 * x\n</code></pre>' in shown.value
    assert "```" not in shown.value and "Hint" not in shown.value
    assert [e["kind"] for e in events(progress)] == ["hint", "solution"]


def test_solution_button_escapes_html_in_a_solution(progress):
    """Can a solution text that holds HTML or a javascript: link put live markup into the page? (It must not.)"""
    hostile = '<script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3))\n\n```py" onclick="alert(4)\n</code><b>\n```'
    ex = exercise("99_testing", "hostile", hint="h", solution=hostile)(lambda fn: None)
    box = feedback_buttons(ex)
    box.children[0].children[1].click()
    html = box.children[1].value
    assert "<script" not in html and "<img" not in html and "<b>" not in html and 'href="javascript:' not in html
    assert 'onclick="' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;/code&gt;&lt;b&gt;" in html


def test_report_outside_a_kernel_prints_plain_json_safe_metrics(capsys):
    """Does report() turn numpy scalars and NaN into JSON-safe values and print them outside a kernel?"""
    np = pytest.importorskip("numpy")
    clean = report(loss=np.float32(0.25), steps=np.int64(3), bad=float("nan"), name="x")
    assert clean == {"loss": 0.25, "steps": 3, "bad": "nan", "name": "x"}
    json.dumps(clean, allow_nan=False)
    assert "Lesson metrics: loss=0.25, steps=3" in capsys.readouterr().out


def test_pick_device():
    """Does pick_device pass explicit devices through, resolve auto, and reject nonsense clearly?"""
    assert pick_device("cpu") == "cpu"
    assert pick_device("cuda:1") == "cuda:1"
    assert pick_device("auto") in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="device must be"):
        pick_device("gpu0; rm -rf /")


def test_pick_smoke_chooses_the_size_from_the_device():
    """Does smoke "auto" mean small on a CPU and full size on a GPU, pass booleans through, and refuse nonsense?"""
    assert learn.pick_smoke("auto", "cpu") is True
    assert learn.pick_smoke("auto", "cuda:0") is False
    assert learn.pick_smoke(False, "cpu") is False and learn.pick_smoke(True, "cuda") is True
    with pytest.raises(ValueError, match="smoke must be"):
        learn.pick_smoke("yes", "cpu")


def test_rerunning_the_parameters_cell_keeps_device_usable(tmp_path):
    """In a real kernel, does re-running the parameters cell after the imports cell leave a real device and size?"""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    parameters = 'smoke = "auto"\ndevice = "auto"'
    cells = [
        new_code_cell(parameters),
        new_code_cell("from academy.learn import pick_device, pick_smoke\n"
                      "device = pick_device(device)\nsmoke = pick_smoke(smoke, device)"),
        new_code_cell(parameters),
        new_code_cell("import torch\nprint(device, smoke, torch.ones(1, device=device).device.type)"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    want = learn.pick_device("auto")
    assert "".join(o.get("text", "") for o in nb.cells[3].outputs).split() == [want, str(want == "cpu"), want]


def test_buttons_and_metrics_in_a_real_kernel(tmp_path):
    """In a real ipykernel, does check() display the Hint/Solution widget and report() the metrics MIME bundle?"""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    progress_file = tmp_path / "kernel-progress.jsonl"
    cells = [
        new_code_cell(
            "import os\n"
            f"os.environ['{learn.PROGRESS_ENV}'] = {str(progress_file)!r}\n"
            "from academy.learn import exercise, feedback_buttons, report\n"
            "ex = exercise('99_testing', 'double', hint='Multiply by two.', solution='x * 2')(lambda f: None)\n"
            "ex.check(lambda x: 2 * x)"
        ),
        new_code_cell(
            "box = feedback_buttons(ex)\n"
            "hint_btn, sol_btn = box.children[0].children\n"
            "hint_btn.click()\n"
            "print(type(box).__name__, hint_btn.description, sol_btn.description)"
        ),
        new_code_cell("report(val_loss=1.5, steps=10)"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    first = nb.cells[0].outputs
    assert any("✅" in o.get("text", "") for o in first)
    views = [o for o in first if o.output_type == "display_data" and "application/vnd.jupyter.widget-view+json" in o.data]
    assert views, f"no widget displayed under the check; outputs were {first}"
    assert not [o for o in first if o.output_type == "execute_result"], "a check cell must not echo True/False"
    assert "VBox Hint Solution" in "".join(o.get("text", "") for o in nb.cells[1].outputs)
    [metrics] = [o.data[METRICS_MIME] for o in nb.cells[2].outputs if METRICS_MIME in o.get("data", {})]
    assert metrics == {"val_loss": 1.5, "steps": 10}
    assert [e["kind"] for e in events(progress_file)] == ["check", "hint"]


def test_every_lesson_hint_and_solution_renders_as_written():
    """Does every hint and solution in the curriculum render with its code fences as code and no Python name mangled?"""
    import importlib
    import pkgutil
    import re

    import academy_lessons as lessons
    from academy.learn.widgets import markdown_html

    texts = []
    for info in pkgutil.iter_modules(lessons.__path__):
        module = importlib.import_module(f"academy_lessons.{info.name}")
        texts += [(info.name, ex.name, t) for ex in vars(module).values() if isinstance(ex, learn.Exercise)
                  for t in (ex.hint_text, ex.solution_text)]
    assert len(texts) > 40, "the lessons' exercises were not found"
    for lesson, name, text in texts:
        html = markdown_html(text)
        assert "```" not in html, f"{lesson}.{name}: a code fence was left raw"
        for dunder in re.findall(r"__\w+__", text):  # `__init__` outside backticks renders as bold "init"
            assert dunder in html, f"{lesson}.{name}: {dunder} lost its underscores; put it in backticks"




def test_solution_called_in_a_kernel_shows_rendered_markdown(tmp_path):
    """In a real kernel, does ex.solution() show the solution rendered (a code block, HTML escaped), with the plain text beside it?"""
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell(
        "import os\n"
        f"os.environ['{learn.PROGRESS_ENV}'] = {str(tmp_path / 'p.jsonl')!r}\n"
        "from academy.learn import exercise\n"
        "ex = exercise('99_testing', 'x', hint='h', solution='```python\\nx = 1  # <b>\\n```')(lambda f: None)\n"
        "_ = ex.solution()"
    )]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    [shown] = [o for o in nb.cells[0].outputs if o.output_type == "display_data"]
    assert '<pre><code class="language-python">x = 1  # &lt;b&gt;' in shown.data["text/html"]
    assert shown.data["text/plain"] == "📖 Solution:\n```python\nx = 1  # <b>\n```"


CURRICULUM = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", CURRICULUM, ids=lambda p: p.stem[:2])
def test_rerunning_a_notebooks_parameters_cell_keeps_device_usable(path, tmp_path):
    """In a real kernel, after a notebook's own parameters, imports and device cells, does re-running its
    parameters cell still leave a device torch accepts and a True/False size?"""
    import nbformat
    from nbclient import NotebookClient

    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    resolve = next(i for i, c in enumerate(cells) if "= pick_device(" in c.source)
    probe = nbformat.v4.new_code_cell("import torch\nprint(device, smoke is True or smoke is False, torch.ones(1, device=device).device.type)")
    # parameters, imports, the cell that resolves the device (the imports cell itself from 07 on), parameters again
    again = nbformat.v4.new_code_cell(cells[first].source)  # the same cell run again (a copy: cell ids stay unique)
    run = [cells[first], cells[first + 1], *([cells[resolve]] if resolve > first + 1 else []), again, probe]
    nb = nbformat.v4.new_notebook(cells=run, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    want = learn.pick_device("auto")
    assert "".join(o.get("text", "") for o in nb.cells[-1].outputs).split() == [want, "True", want]
