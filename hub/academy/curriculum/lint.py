"""Clean, skeleton and lesson-module checks for curriculum notebooks (``notebooks/NOTEBOOKS.md`` conventions), and stripping.

Works on the notebook JSON directly, without nbformat, so linting all thirteen notebooks
costs milliseconds and the runner's parent process stays light.
"""
from __future__ import annotations

import ast
import json
import re
import uuid
from pathlib import Path
from typing import Any, Iterator

from academy.curriculum.discover import NOTEBOOK_RE

# The "## " sections every notebook has, in this order.
REQUIRED_HEADINGS = ["Overview", "Prerequisites", "Imports", "Exercises", "Learning check", "Summary", "What's next"]
KERNEL_NAME = "python3"
# Metadata a run leaves behind: papermill's bookkeeping, JupyterLab's timing, widget state.
RUN_METADATA_KEYS = ("papermill", "execution")
RUN_TAGS = ("injected-parameters", "papermill-error-cell-tag")
_MAGIC_RE = re.compile(r"^\s*[%!]", re.MULTILINE)
# The lesson code lives beside the notebooks (notebooks/lessons/) and is installed under this name.
LESSONS_DIR = "lessons"
LESSONS_PACKAGE = "academy_lessons"


def load(path: Path) -> dict[str, Any]:
    """The notebook as a dict; a file that is not JSON is a ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a notebook (invalid JSON at line {exc.lineno}: {exc.msg})") from None


def source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def cell_label(index: int, cell: dict[str, Any]) -> str:
    return f"cell {index} ({cell['id']})" if cell.get("id") else f"cell {index}"


def clean_problems(nb: dict[str, Any]) -> list[str]:
    """What keeps a committed notebook from being clean: outputs, counts, run metadata, missing ids."""
    problems = []
    if nb.get("nbformat") != 4:
        problems.append(f"nbformat is {nb.get('nbformat')!r}, expected 4")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL_NAME:
        problems.append(f"kernelspec name is {kernel!r}, expected {KERNEL_NAME!r}")
    for key in ("papermill", "widgets"):
        if key in nb.get("metadata", {}):
            problems.append(f"notebook metadata has committed {key!r} state")
    seen: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        label = cell_label(i, cell)
        cid = cell.get("id")
        if not cid:
            problems.append(f"{label} has no id")
        elif cid in seen:
            problems.append(f"{label} repeats id {cid!r}")
        seen.add(cid or "")
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                problems.append(f"{label} has committed outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"{label} has execution_count {cell['execution_count']}")
        for key in RUN_METADATA_KEYS:
            if key in cell.get("metadata", {}):
                problems.append(f"{label} has run metadata {key!r}")
        for tag in RUN_TAGS:
            if tag in tags(cell):
                problems.append(f"{label} is papermill's {tag!r} cell: commit the source notebook, not a run")
    return problems


def output_problems(nb: dict[str, Any]) -> list[str]:
    """What ``--require-clean`` asks of any notebook: no committed outputs or execution counts.

    Unlike ``clean_problems`` this imposes nothing of the Academy's own: cells without ids
    (nbformat < 4.5) and any kernel are fine.
    """
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{cell_label(i, cell)} has committed outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"{cell_label(i, cell)} has execution_count {cell['execution_count']}")
    return problems


def headings(nb: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(cell index, heading text) for every "## " line of every markdown cell."""
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for line in source(cell).splitlines():
            if line.startswith("## "):
                yield i, line[3:].strip()


def _module(code: str) -> ast.Module | None:
    try:
        return ast.parse(_MAGIC_RE.sub("pass  #", code))
    except SyntaxError:
        return None


def _assignments(code: str) -> dict[str, Any]:
    """Top-level ``name = literal`` assignments (non-literals map to ``...``)."""
    tree = _module(code)
    found: dict[str, Any] = {}
    for node in tree.body if tree else []:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError):
                    found[target.id] = ...
    return found


def skeleton_problems(nb: dict[str, Any], filename: str) -> list[str]:
    """Departures from the notebook skeleton: title, section order, parameters and learning-check cells."""
    problems = []
    m = NOTEBOOK_RE.match(filename)
    if m is None:
        problems.append(f"file name {filename!r} should look like NN_slug.ipynb")
    cells = nb.get("cells", [])
    first = cells[0] if cells else {}
    title = source(first).splitlines()[0] if first.get("cell_type") == "markdown" and source(first) else ""
    if not re.match(r"^# \d{2} · \S", title):
        problems.append(f"first cell should be a markdown title '# NN · Title', found {title[:60]!r}")
    elif m and not title.startswith(f"# {m['number']} · "):
        problems.append(f"title {title!r} does not carry the file's number {m['number']}")

    where: dict[str, int] = {}
    for i, text in headings(nb):
        where.setdefault(text, i)
    missing = [h for h in REQUIRED_HEADINGS if h not in where]
    problems += [f"missing section heading '## {h}'" for h in missing]
    present = [h for h in REQUIRED_HEADINGS if h in where]
    order = sorted(present, key=lambda h: where[h])
    if order != present:
        problems.append("sections out of order: expected " + " → ".join(present) + ", found " + " → ".join(order))

    if "Overview" in where and not re.search(r"^\s*1\.\s", source(cells[where["Overview"]]), re.MULTILINE):
        problems.append("'## Overview' should list the learning objectives as a numbered list")
    if "Prerequisites" in where:
        prereq = source(cells[where["Prerequisites"]])
        if not re.search(r"\|\s*Concept\s*\|\s*Importance\s*\|\s*Notes\s*\|", prereq):
            problems.append("'## Prerequisites' should have a | Concept | Importance | Notes | table")
        if "**Time to learn**" not in prereq:
            problems.append("'## Prerequisites' should state '**Time to learn**: N minutes'")

    problems += _parameters_problems(cells, where)
    problems += _exercise_problems(cells, where)
    problems += _learning_check_problems(cells, where)
    return problems


def _tagged(cells: list[dict[str, Any]], tag: str) -> list[int]:
    return [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and tag in tags(c)]


def _parameters_problems(cells: list[dict[str, Any]], where: dict[str, int]) -> list[str]:
    found = _tagged(cells, "parameters")
    if len(found) != 1:
        return [f"expected one code cell tagged 'parameters', found {len(found)}"]
    i = found[0]
    problems = []
    if "Imports" in where and not where.get("Prerequisites", -1) < i < where["Imports"]:
        problems.append("the 'parameters' cell should sit between '## Prerequisites' and '## Imports'")
    values = _assignments(source(cells[i]))
    if values.get("smoke", ...) is not False and values.get("smoke", ...) != "auto":
        problems.append("the 'parameters' cell should set smoke = False or \"auto\" (papermill passes smoke=True for CI)")
    if values.get("device", ...) != "auto":
        problems.append("the 'parameters' cell should set device = \"auto\"")
    return problems


def _exercise_problems(cells: list[dict[str, Any]], where: dict[str, int]) -> list[str]:
    if "Exercises" not in where or "Learning check" not in where:
        return []
    span = cells[where["Exercises"] : where["Learning check"]]
    checks = sum(1 for c in span if c.get("cell_type") == "code" and ".check(" in source(c))
    if checks < 2:
        return [f"'## Exercises' should hold 2-3 exercises with a .check(...) cell each, found {checks}"]
    return []


def _learning_check_problems(cells: list[dict[str, Any]], where: dict[str, int]) -> list[str]:
    found = _tagged(cells, "learning-check")
    if len(found) != 1:
        return [f"expected one code cell tagged 'learning-check', found {len(found)}"]
    i = found[0]
    problems = []
    if "Learning check" in where and not where["Learning check"] < i < where.get("Summary", len(cells)):
        problems.append("the 'learning-check' cell should follow '## Learning check' and precede '## Summary'")
    code = source(cells[i])
    tree = _module(code)
    if tree is None or not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        problems.append("the 'learning-check' cell should assert the lesson's measured result")
    if not re.search(r"\breport\(", code):
        problems.append("the 'learning-check' cell should call report(...) with the lesson's metrics")
    return problems


def module_names(path: Path) -> set[str] | None:
    """The top-level names a lesson module defines, read with ``ast`` (never imported: no torch to lint).

    ``None`` when the names cannot be known statically (``import *`` or a module ``__getattr__``).
    """
    names = {"__name__", "__doc__", "__file__", "__spec__", "__path__", "__loader__", "__package__", "__dict__"}
    pending = list(ast.parse(Path(path).read_text(encoding="utf-8")).body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(a.name == "*" for a in node.names):
                return None
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            # Definitions under a top-level if/try (an optional import) are the module's too.
            pending += [n for field in ("body", "orelse", "finalbody") for n in getattr(node, field, [])]
            pending += [n for handler in getattr(node, "handlers", []) for n in handler.body]
    return None if "__getattr__" in names else names


def _lesson_imports(nb: dict[str, Any]) -> tuple[dict[str, str], list[tuple[int, str, str]]]:
    """Aliases bound to lesson modules (``lesson`` → ``n01_python_numpy``), and names taken with ``from academy_lessons.m import x``."""
    aliases: dict[str, str] = {}
    taken: list[tuple[int, str, str]] = []
    for i, cell in enumerate(nb.get("cells", [])):
        tree = _module(source(cell)) if cell.get("cell_type") == "code" else None
        for node in ast.walk(tree) if tree else []:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == LESSONS_PACKAGE:
                aliases.update((a.asname or a.name, a.name) for a in node.names if a.name != "*")
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(LESSONS_PACKAGE + "."):
                taken += [(i, node.module.split(".")[1], a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                aliases.update((a.asname, a.name.split(".")[1]) for a in node.names
                               if a.asname and a.name.startswith(LESSONS_PACKAGE + "."))
    return aliases, taken


def lesson_problems(nb: dict[str, Any], filename: str, lessons_dir: Path) -> list[str]:
    """Notebook ``NN_slug`` has and imports ``academy_lessons.nNN_slug``, and every ``lesson.X`` it names exists there."""
    problems: list[str] = []
    aliases, taken = _lesson_imports(nb)
    missing_own = ""
    if NOTEBOOK_RE.match(filename):
        own = "n" + filename.removesuffix(".ipynb")
        if not (lessons_dir / f"{own}.py").is_file():
            missing_own = own
            problems.append(f"no lesson module {LESSONS_PACKAGE}.{own}: add {lessons_dir.name}/{own}.py")
        elif own not in aliases.values():
            problems.append(f"does not import its lesson module: from {LESSONS_PACKAGE} import {own} as lesson")
    known: dict[str, set[str] | None] = {}
    for module in sorted(set(aliases.values()) | {m for _, m, _ in taken}):
        path = lessons_dir / f"{module}.py"
        if path.is_file():
            known[module] = module_names(path)
        elif (lessons_dir / module / "__init__.py").is_file():
            known[module] = None  # a sub-package: its names are not checked
        elif module != missing_own:  # already reported as the notebook's missing module
            problems.append(f"imports {LESSONS_PACKAGE}.{module}, which does not exist ({lessons_dir.name}/{module}.py)")
    uses = list(taken)
    for i, cell in enumerate(nb.get("cells", [])):
        tree = _module(source(cell)) if cell.get("cell_type") == "code" else None
        uses += [(i, aliases[n.value.id], n.attr) for n in (ast.walk(tree) if tree else [])
                 if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
                 and not isinstance(n.ctx, ast.Store)]
    for i, module, name in uses:
        names = known.get(module)
        problem = f"{cell_label(i, nb['cells'][i])} names {name!r}, which {LESSONS_PACKAGE}.{module} does not define"
        if names is not None and name != "*" and name not in names and problem not in problems:
            problems.append(problem)
    return problems


def lint(path: Path) -> list[str]:
    """All clean and skeleton problems of one notebook file, and its lesson's when ``lessons/`` lies beside it."""
    try:
        nb = load(path)
    except ValueError as exc:
        return [str(exc)]
    problems = clean_problems(nb) + skeleton_problems(nb, Path(path).name)
    lessons_dir = Path(path).parent / LESSONS_DIR
    if (lessons_dir / "__init__.py").is_file():
        problems += lesson_problems(nb, Path(path).name, lessons_dir)
    return problems


def strip(nb: dict[str, Any], ids: bool = True) -> bool:
    """Make ``nb`` clean in place (outputs, counts, run metadata, and with ``ids`` missing ids); True when it changed.

    ``ids=False`` for a trainer's notebook: its format (an nbformat 4.4 file has no ids) stays as it is.
    """
    before = json.dumps(nb, sort_keys=True)
    nb.get("metadata", {}).pop("papermill", None)
    nb.get("metadata", {}).pop("widgets", None)
    nb["cells"] = [c for c in nb.get("cells", []) if not set(tags(c)) & set(RUN_TAGS)]
    seen: set[str] = set()
    for cell in nb["cells"]:
        if ids and (not cell.get("id") or cell["id"] in seen):
            cell["id"] = uuid.uuid4().hex[:8]
        seen.add(cell.get("id", ""))
        for key in RUN_METADATA_KEYS:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    if ids and nb.get("nbformat") == 4 and nb.get("nbformat_minor", 0) < 5:
        nb["nbformat_minor"] = 5  # cell ids need nbformat 4.5
    return json.dumps(nb, sort_keys=True) != before


def strip_file(path: Path, ids: bool = True) -> bool:
    """Strip a notebook file in place, written the way nbformat writes it; True when it changed."""
    nb = load(path)
    if not strip(nb, ids):
        return False
    text = json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return True
