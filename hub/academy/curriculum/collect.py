"""Turn what one worker left behind (executed notebook, result JSON, log) into a truthful ``NotebookResult``.

Cells are named as the notebook's author sees them: the index among the notebook's own
cells (papermill's injected-parameters and error-marker cells not counted), the id from
the committed notebook when it has ids, and the cell's first line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from academy.curriculum import lint
from academy.curriculum.results import CellError, NotebookResult, Status
from academy.learn import METRICS_MIME

PAPERMILL_TAGS = ("injected-parameters", "papermill-error-cell-tag")
# Startup chatter every kernel prints; it would bury the line that explains a crash.
_LOG_NOISE = ("Kernel is running over TCP without encryption",)
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, or cut short by a kill mid-write
        return None


def notebook_metrics(nb: dict[str, Any]) -> dict[str, Any]:
    """Everything the notebook published with ``academy.learn.report`` (later values win)."""
    metrics: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            if isinstance(data.get(METRICS_MIME), dict):
                metrics.update(data[METRICS_MIME])
    return metrics


def _status(cell: dict[str, Any]) -> str | None:
    return cell.get("metadata", {}).get("papermill", {}).get("status")


def running_cell(nb: dict[str, Any]) -> int | None:
    """The cell papermill marked as running when the worker wrote its snapshot (None: between cells)."""
    running = [i for i, c in enumerate(nb.get("cells", [])) if _status(c) == "running"]
    return running[-1] if running else None


def last_started_cell(nb: dict[str, Any]) -> int | None:
    """The last cell papermill started: the one that was running when the kernel died."""
    started = [i for i, c in enumerate(nb.get("cells", [])) if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return started[-1] if started else None


def log_tail(log: Path, lines: int = 40) -> str:
    if not log.exists():
        return ""
    text = strip_ansi(log.read_text(errors="replace"))
    kept = [line for line in text.splitlines() if not any(noise in line for noise in _LOG_NOISE)]
    return "\n".join(kept[-lines:])


def own_index(executed_cells: list[dict[str, Any]], index: int) -> int | None:
    """Index ``index`` of the executed notebook as an index into the notebook's own cells."""
    if not 0 <= index < len(executed_cells) or set(lint.tags(executed_cells[index])) & set(PAPERMILL_TAGS):
        return None
    return sum(1 for c in executed_cells[:index] if not set(lint.tags(c)) & set(PAPERMILL_TAGS))


def collect(
    result: NotebookResult,
    committed: dict[str, Any],
    *,
    output: Path,
    outcome_path: Path,
    log: Path,
    timeout: float,
    hang: str | None,
) -> NotebookResult:
    """Fill ``result`` (status PASS, lint problems already set) from the worker's files."""
    executed = read_json(output) or {}
    # papermill's error-marker cells come after it computed the failing cell's index.
    cells = [c for c in executed.get("cells", []) if "papermill-error-cell-tag" not in lint.tags(c)]
    result.metrics = notebook_metrics(executed)
    cell_index: int | None = None
    outcome = None if hang is not None else read_json(outcome_path)
    if hang is not None:
        result.status = Status.TIMEOUT
        cell_index = running_cell(executed) if executed else None
        if not executed:
            where = "the worker wrote no snapshot, so the running cell is unknown"
        elif cell_index is None:
            where = "no cell was running: the time went into the runner, between cells"
        else:
            where = "the cell below was running"
        result.error = CellError("Timeout", f"still running after {timeout:g} s; {where} ({hang}); its kernel was killed", log_tail(log, 60))
    elif outcome is None:
        result.status = Status.ERROR
        result.error = CellError("WorkerCrashed", "the notebook worker died without a result", log_tail(log))
        cell_index = last_started_cell(executed)
    elif not outcome["ok"]:
        err = outcome["error"]
        cell_index = err.get("cell_index")
        if cell_index is None:
            # Not an exception inside a cell (the kernel died, or never started): the worker's
            # log, which holds the kernel's stderr, says more than the worker's own traceback.
            cell_index = last_started_cell(executed)
            result.error = CellError(err["ename"], strip_ansi(err["evalue"] or ""), log_tail(log))
        else:
            result.error = CellError(err["ename"], strip_ansi(err["evalue"] or ""), strip_ansi("\n".join(err["traceback"] or [])))
            result.failing_cell_source = err.get("source") or None
        result.status = Status.FAIL if cell_index is not None else Status.ERROR
    elif result.problems:
        result.status = Status.DIRTY
    if cell_index is not None and 0 <= cell_index < len(cells):
        cell = cells[cell_index]
        result.failing_cell_source = result.failing_cell_source or lint.source(cell)
        result.failing_cell_tags = lint.tags(cell)
        result.failing_cell_index = own_index(cells, cell_index)
        own = committed.get("cells", [])
        if result.failing_cell_index is not None and result.failing_cell_index < len(own):
            result.failing_cell_id = own[result.failing_cell_index].get("id") or None
    return result
