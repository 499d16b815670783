"""Instant feedback for curriculum exercises: check, hint, solution, and a progress log.

Modelled on Kaggle Learn's ``q1.check() / q1.hint() / q1.solution()``. A lesson's
checks live in ``academy_lessons.<lesson>`` (``notebooks/lessons/``, beside the notebooks)
so the notebook never shows the answer; the notebook only calls them. Feedback is printed as plain text (so it reads
the same under papermill) and, in a live kernel, a Hint and a Solution button are
shown as well.

Every check, hint and solution reveal appends one JSON line to the learner's
progress file (see ``progress_path``); the format is documented in
``notebooks/README.md`` and read by trainer tooling.
"""
from __future__ import annotations

import datetime as _dt
import getpass
import json
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

try:  # POSIX only; Windows learners still get whole lines from O_APPEND on local disks
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

PROGRESS_ENV = "ACADEMY_PROGRESS_FILE"
METRICS_MIME = "application/vnd.academy.metrics+json"
EVENT_KINDS = ("check", "hint", "solution")
MESSAGE_LIMIT = 500
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class ProgressNotSavedWarning(UserWarning):
    """The progress file could not be written; the lesson itself carries on."""


_warned_paths: set[str] = set()


def progress_path() -> Path:
    """Where progress events go: ``$ACADEMY_PROGRESS_FILE`` or ``~/.academy/progress.jsonl``."""
    override = os.environ.get(PROGRESS_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".academy" / "progress.jsonl"


def current_user() -> str:
    # Under JupyterHub the Unix account may be shared (local backend), so the hub's
    # name for the learner is the truthful one.
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def record_event(notebook: str, exercise: str, kind: str, passed: bool | None, message: str = "") -> dict:
    """Append one progress event; never let a full disk or read-only home break a lesson."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"progress event kind must be one of {', '.join(EVENT_KINDS)}, not {kind!r}")
    event = {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "user": current_user(),
        "notebook": notebook,
        "exercise": exercise,
        "kind": kind,
        "passed": passed,
        "message": message[:MESSAGE_LIMIT],
    }
    line = (json.dumps(event, ensure_ascii=False) + "\n").encode()
    path = progress_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One O_APPEND write per event keeps lines whole when two kernels log at once;
        # the lock covers home directories on NFS, where O_APPEND alone is not atomic.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        # Warn once per file: a learner on a read-only home should not see it on every check.
        if str(path) not in _warned_paths:
            _warned_paths.add(str(path))
            warnings.warn(
                f"progress not saved to {path}: {exc.strerror or exc}", ProgressNotSavedWarning, stacklevel=2
            )
    return event


@dataclass(eq=False)
class CheckResult:
    """The outcome of one ``Exercise.check`` call; truthy when it passed, equal to that bool."""

    exercise: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return self.passed == other
        if isinstance(other, CheckResult):
            return (self.exercise, self.passed, self.message) == (other.exercise, other.passed, other.message)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _ipython_display_(self) -> None:
        # The feedback is already printed; a bare check cell should not also echo True/False.
        return None


@dataclass
class Exercise:
    """One formative exercise: a checker plus the hint and solution a learner can reveal.

    ``checker`` receives whatever the notebook passes to ``check`` and raises
    ``AssertionError`` with a specific, non-spoiling message when the answer is wrong.
    It may return a short string that is shown on success.
    """

    notebook: str
    name: str
    checker: Callable[..., str | None]
    hint_text: str
    solution_text: str
    title: str = ""
    results: list[CheckResult] = field(default_factory=list, repr=False)

    def check(self, *args: Any, **kwargs: Any) -> CheckResult:
        """Check the learner's answer, print specific feedback, log the attempt. Never raises."""
        try:
            extra = self.checker(*args, **kwargs)
            passed, message = True, "Correct!" + (f" {extra}" if extra else "")
        except AssertionError as exc:
            passed, message = False, str(exc) or "Not quite yet."
        except NotImplementedError:
            passed, message = False, "Not attempted yet: replace the placeholder with your code."
        except Exception as exc:  # learner code may raise anything; feedback must still come
            passed, message = False, f"Your code raised {type(exc).__name__}: {exc}"
        result = CheckResult(self.name, passed, message)
        self.results.append(result)
        record_event(self.notebook, self.name, "check", passed, message)
        mark = "✅" if passed else "❌"
        print(f"{mark} {self.title or self.name}: {message}")
        if not passed:
            print("   Stuck? Use the Hint / Solution buttons, or call .hint() / .solution() on this exercise.")
        _show_buttons(self)
        return result

    def hint(self) -> str:
        """Show (and log) the hint."""
        record_event(self.notebook, self.name, "hint", None)
        _show(f"💡 Hint: {self.hint_text}", f"💡 **Hint:** {self.hint_text}")
        return self.hint_text

    def solution(self) -> str:
        """Show (and log) the worked solution."""
        record_event(self.notebook, self.name, "solution", None)
        _show(f"📖 Solution:\n{self.solution_text}", f"📖 **Solution:**\n\n{self.solution_text}")
        return self.solution_text

    def __call__(self, *args: Any, **kwargs: Any) -> CheckResult:
        return self.check(*args, **kwargs)


def exercise(notebook: str, name: str, *, hint: str, solution: str, title: str = "") -> Callable[[Callable[..., str | None]], Exercise]:
    """Decorator: turn a checker function into an ``Exercise``."""
    if not notebook or not name:
        raise ValueError("an exercise needs a notebook and a name, e.g. exercise('01_python_numpy', 'softmax', ...)")

    def wrap(checker: Callable[..., str | None]) -> Exercise:
        return Exercise(notebook=notebook, name=name, checker=checker, hint_text=hint, solution_text=solution, title=title)

    return wrap


def _show(plain: str, markdown: str) -> None:
    """In a live kernel, ``markdown`` rendered (as the buttons do, raw HTML escaped); elsewhere ``plain`` printed."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None  # noqa: N806 (no IPython: print)
    if get_ipython is None or get_ipython() is None:
        print(plain)
        return
    from academy.learn.widgets import markdown_html

    display({"text/html": markdown_html(markdown), "text/plain": plain}, raw=True)


def feedback_buttons(ex: Exercise) -> Any:
    """The Hint / Solution buttons for ``ex`` with the ``HTML`` widget they reveal into (an ipywidgets ``VBox``)."""
    import ipywidgets as widgets

    from academy.learn.widgets import markdown_html

    shown = widgets.HTML()
    hint_btn = widgets.Button(description="Hint", icon="lightbulb-o", tooltip=f"Show a hint for {ex.title or ex.name}")
    sol_btn = widgets.Button(
        description="Solution", icon="book", button_style="warning", tooltip="Show a worked solution"
    )

    def reveal(kind: str, text: str) -> None:
        # Rendered here rather than left to the front end, so a solution's code fences show as code in
        # any front end, with its raw HTML escaped; each reveal replaces the previous one.
        record_event(ex.notebook, ex.name, kind, None)
        shown.value = markdown_html(text)

    hint_btn.on_click(lambda _btn: reveal("hint", f"💡 **Hint:** {ex.hint_text}"))
    sol_btn.on_click(lambda _btn: reveal("solution", f"📖 **Solution:**\n\n{ex.solution_text}"))
    return widgets.VBox([widgets.HBox([hint_btn, sol_btn]), shown])


def _show_buttons(ex: Exercise) -> None:
    """Hint/Solution buttons in a live kernel; silently absent without IPython or ipywidgets."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    try:
        box = feedback_buttons(ex)
    except ImportError:
        return
    display(box)


def _plain(value: Any) -> Any:
    """A JSON-safe scalar: numpy/torch scalars unwrapped, floats rounded, NaN/inf spelled out."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # a multi-element array or tensor is not a metric
            return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    return str(value)


def report(**metrics: Any) -> dict:
    """Publish a lesson's measured results so ``academy curriculum test`` can tabulate them."""
    clean = {k: _plain(v) for k, v in metrics.items()}
    text = "Lesson metrics: " + ", ".join(f"{k}={v}" for k, v in clean.items())
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({METRICS_MIME: clean, "text/plain": text}, raw=True)
            return clean
    except ImportError:
        pass
    print(text)
    return clean


def pick_device(device: str = "auto") -> str:
    """Resolve the ``device`` notebook parameter: ``auto`` means CUDA when a GPU is visible."""
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', not {device!r}")
    _keep_parameters_resolved()
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_smoke(smoke: bool | str, device: str) -> bool:
    """Resolve the ``smoke`` notebook parameter: ``auto`` means small on a CPU, full size on a GPU."""
    if smoke == "auto":
        return not str(device).startswith("cuda")
    if not isinstance(smoke, bool):
        raise ValueError(f"smoke must be True, False or 'auto', not {smoke!r}")
    return smoke


_parameters_hook: Callable[..., None] | None = None


def _keep_parameters_resolved() -> None:
    """In a live kernel, re-resolve ``device`` and ``smoke`` after any cell that sets them back to "auto".

    Re-running the parameters cell after the imports cell would otherwise leave ``device = "auto"``,
    which torch cannot use, in every later cell.
    """
    global _parameters_hook
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or _parameters_hook is not None:
        return

    def resolve(*_args: Any) -> None:
        ns = shell.user_ns
        if ns.get("device") == "auto":
            ns["device"] = pick_device("auto")
        if ns.get("smoke") == "auto" and isinstance(ns.get("device"), str):
            ns["smoke"] = pick_smoke("auto", ns["device"])

    _parameters_hook = resolve
    shell.events.register("post_run_cell", resolve)


__all__ = [
    "CheckResult",
    "EVENT_KINDS",
    "Exercise",
    "METRICS_MIME",
    "ProgressNotSavedWarning",
    "exercise",
    "feedback_buttons",
    "pick_device",
    "pick_smoke",
    "progress_path",
    "record_event",
    "report",
]
