"""The curriculum's notebook skeleton, as it applies to a project template's notebook.

A template notebook is a starting point, not a lesson: it has no number in its name or title and
no graded exercises (no ``.check(``), but otherwise the lessons' shape (``notebooks/README.md``):
Overview with numbered aims, Prerequisites table and time, one ``parameters`` cell (``smoke`` and
``device``, which ``academy curriculum test --smoke`` sets), Imports, the work, a Learning check
that asserts the result and calls ``report(...)``, Summary and What's next; committed clean.
"""
from __future__ import annotations

import re
from pathlib import Path

from academy.curriculum import lint

HEADINGS = ["Overview", "Prerequisites", "Imports", "Learning check", "Summary", "What's next"]


def problems(path: Path) -> list[str]:
    """Everything that keeps the notebook at ``path`` from being a clean template notebook on the skeleton."""
    try:
        nb = lint.load(path)
    except ValueError as exc:
        return [str(exc)]
    found = lint.clean_problems(nb)
    cells = nb.get("cells", [])
    first = cells[0] if cells else {}
    title = lint.source(first).splitlines()[0] if first.get("cell_type") == "markdown" and lint.source(first) else ""
    if not re.match(r"^# \S", title):
        found.append(f"first cell should be a markdown title '# Title', found {title[:60]!r}")
    where: dict[str, int] = {}
    for i, text in lint.headings(nb):
        where.setdefault(text, i)
    found += [f"missing section heading '## {h}'" for h in HEADINGS if h not in where]
    present = [h for h in HEADINGS if h in where]
    if sorted(present, key=lambda h: where[h]) != present:
        found.append("sections out of order: expected " + " → ".join(present))
    if "Overview" in where and not re.search(r"^\s*1\.\s", lint.source(cells[where["Overview"]]), re.MULTILINE):
        found.append("'## Overview' should list the aims as a numbered list")
    if "Prerequisites" in where:
        prereq = lint.source(cells[where["Prerequisites"]])
        if not re.search(r"\|\s*Concept\s*\|\s*Importance\s*\|\s*Notes\s*\|", prereq) or "**Time to learn**" not in prereq:
            found.append("'## Prerequisites' should have a | Concept | Importance | Notes | table and '**Time to learn**'")
    # The lessons' own rules for the parameters and learning-check cells (placement, smoke/device, assert, report).
    found += lint._parameters_problems(cells, where)
    found += lint._learning_check_problems(cells, where)
    if any(".check(" in lint.source(c) for c in cells if c.get("cell_type") == "code"):
        found.append("a template has no graded exercises (.check(...)): those belong to lessons")
    return found
