"""Present curriculum results: a rich table, a detail panel per failure, and JUnit XML for CI."""
from __future__ import annotations

import datetime as _dt
import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from academy.curriculum.results import NotebookResult, Status

STYLES = {Status.PASS: "green", Status.FAIL: "red", Status.TIMEOUT: "magenta", Status.DIRTY: "yellow", Status.ERROR: "red"}
TRACEBACK_LINES = 25


def format_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in metrics.items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def results_table(results: list[NotebookResult], title: str = "Curriculum") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("notebook", no_wrap=True)
    table.add_column("seconds", justify="right")
    table.add_column("status")
    table.add_column("metrics / problem", overflow="fold")
    for r in results:
        detail = format_metrics(r.metrics) if r.ok else r.summary()
        table.add_row(r.name, f"{r.seconds:.1f}", Text(r.status.value, style=STYLES[r.status]), detail)
    return table


def failure_panel(result: NotebookResult) -> Panel:
    """Everything a notebook author needs to fix one failure, without opening the notebook."""
    parts: list[Any] = []
    if result.error is not None:
        where = result.cell_label()
        if result.learning_check_failed:
            where += " (the learning check)"
        prefix = f"{where}: " if result.failing_cell_source else ""
        parts.append(Text(f"{prefix}{result.error.one_line()}", style="bold"))
    if result.failing_cell_source:
        parts.append(Syntax(result.failing_cell_source, "python", line_numbers=False, word_wrap=True))
    if result.error is not None and result.error.traceback:
        tail = result.error.traceback.splitlines()[-TRACEBACK_LINES:]
        parts.append(Text("\n".join(tail), style="dim"))
    for problem in result.problems:
        parts.append(Text(f"• {problem}", style="yellow"))
    if result.kept is not None:
        parts.append(Text(f"executed notebook kept at {result.kept}", style="italic"))
    return Panel(Group(*parts), title=f"{result.name}: {result.status.value}", border_style=STYLES[result.status])


def print_report(console: Console, results: list[NotebookResult], wall: float, mode: str, title: str = "Curriculum") -> None:
    for r in results:
        if not r.ok:
            console.print(failure_panel(r))
    console.print(results_table(results, title=f"{title} ({mode})"))
    failed = [r.name for r in results if not r.ok]
    verdict = f"[red]{len(failed)} of {len(results)} not passing: {', '.join(failed)}[/]" if failed else f"[green]all {len(results)} passed[/]"
    console.print(f"{verdict} in {wall:.1f} s wall")


def failure_text(result: NotebookResult) -> str:
    """The plain-text body of a JUnit failure: error, failing cell source, traceback, problems."""
    lines = []
    if result.error is not None:
        lines.append(result.error.one_line())
    if result.failing_cell_source:
        lines += ["", f"--- failing {result.cell_label()} ---", result.failing_cell_source.rstrip()]
    if result.error is not None and result.error.traceback:
        lines += ["", "--- traceback ---", result.error.traceback.rstrip()]
    if result.problems:
        lines += ["", "--- notebook problems ---", *result.problems]
    return "\n".join(lines).strip("\n")


def junit_xml(results: list[NotebookResult], wall: float) -> ET.ElementTree:
    """One testsuite ``curriculum``; failures for FAIL/DIRTY, errors for TIMEOUT/ERROR."""
    failures = sum(r.status in (Status.FAIL, Status.DIRTY) for r in results)
    errors = sum(r.status in (Status.TIMEOUT, Status.ERROR) for r in results)
    suites = ET.Element("testsuites", tests=str(len(results)), failures=str(failures), errors=str(errors), time=f"{wall:.2f}")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="curriculum",
        tests=str(len(results)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{wall:.2f}",
        timestamp=_dt.datetime.now().isoformat(timespec="seconds"),
        hostname=socket.gethostname(),
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname="curriculum", name=r.name, file=str(r.path), time=f"{r.seconds:.2f}")
        if r.metrics:
            props = ET.SubElement(case, "properties")
            for key, value in r.metrics.items():
                ET.SubElement(props, "property", name=f"metric.{key}", value=json.dumps(value))
        if not r.ok:
            tag = "failure" if r.status in (Status.FAIL, Status.DIRTY) else "error"
            node = ET.SubElement(case, tag, message=r.summary()[:1000], type=r.status.value)
            node.text = failure_text(r)
    ET.indent(suites)
    return ET.ElementTree(suites)


def write_junit(path: Path, results: list[NotebookResult], wall: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(results, wall).write(path, encoding="utf-8", xml_declaration=True)


def previous_seconds(path: Path) -> dict[str, float]:
    """Per-notebook seconds from an earlier JUnit file, used to start the slowest first."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    seconds = {}
    for case in root.iter("testcase"):
        try:
            seconds[case.get("name", "")] = float(case.get("time", "0"))
        except ValueError:
            continue
    return seconds
