"""Hidden tests: find their lines in the gradebook, strip them from feedback, and detect any leak.

nbgrader keeps the full test cells (hidden regions included) in the gradebook and restores them into
the autograded notebook, which stock ``generate_feedback`` renders as is (nbgrader #917, #1363).
:class:`StripHiddenTests` runs inside nbgrader's feedback converter:

* the hidden region of a test cell is replaced by one comment line;
* nothing produced while or after hidden tests ran is shown: test cells from the first hidden test on
  are reduced to a verdict plus the author's own assertion message, the outputs of later cells are
  withheld with a note.  This is structural: student code can read a running test's source (frames,
  ``inspect``, input history) and print it in any encoding, which no scan can recognise;
* before the first hidden test, output lines that contain a hidden-test line are still removed.

:func:`find_leaks` is the independent literal check run on everything a student receives (released
notebooks, feedback HTML, as rendered text): a file containing any hidden-test line is never handed out.
"""
from __future__ import annotations

import ast
import builtins
import html
import re

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from nbformat.v4 import new_output
from traitlets import Integer, Unicode

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
_BUILTIN_ERRORS = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type)
                   and issubclass(getattr(builtins, n), BaseException)} | {"CellTimeoutError"}
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _partition(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """Split one cell source into (lines inside hidden-test regions, lines outside); markers dropped."""
    hidden, visible, inside = [], [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return hidden, visible


def hidden_regions(source: str, begin: str = BEGIN, end: str = END) -> list[str]:
    """The lines inside hidden-test regions of one cell source."""
    return _partition(source, begin, end)[0]


def visible_lines(source: str, begin: str = BEGIN, end: str = END) -> list[str]:
    """The lines of one cell source outside hidden-test regions."""
    return _partition(source, begin, end)[1]


def significant(lines: list[str], min_chars: int) -> set[str]:
    """Lines long enough that finding them elsewhere means a leak, not a coincidence."""
    return {n for n in (_norm(line) for line in lines) if len(n) >= min_chars and not n.startswith("#")}


def hidden_lines(db_url: str, assignment: str, notebook: str | None = None, min_chars: int = 12) -> set[str]:
    """Significant hidden-test lines of an assignment (or one notebook) from the gradebook source cells."""
    found: set[str] = set()
    visible: set[str] = set()
    with Gradebook(db_url) as gb:
        try:
            notebooks = gb.find_assignment(assignment).notebooks
        except MissingEntry:
            return found
        for nb in notebooks:
            for cell in nb.source_cells:
                hidden = hidden_regions(cell.source or "")
                visible |= {_norm(x) for x in visible_lines(cell.source or "")}
                if notebook is None or nb.name == notebook:
                    found |= significant(hidden, min_chars)
    # A line the student can also see elsewhere (e.g. a demo call inside a visible line) identifies nothing.
    shown = "\n".join(visible)
    return {line for line in found if line not in shown}


def html_text(document: str) -> str:
    """Rendered text of an HTML page: tags dropped, entities decoded (highlighting splits code into spans)."""
    return html.unescape(_TAGS.sub("", document))


def find_leaks(text: str, lines: set[str]) -> list[str]:
    flat = _norm(text)
    return sorted(line for line in lines if line in flat)


def notebook_text(nb) -> str:
    """Everything visible in a notebook: sources, outputs and metadata."""
    parts = [repr(dict(nb.metadata))]
    for cell in nb.cells:
        parts.append(cell.source)
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if isinstance(out.get("text", ""), str) else "")
            parts.extend(str(v) for v in out.get("data", {}).values())
            parts.extend(out.get("traceback", []))
            parts.append(str(out.get("evalue", "")))
    return "\n".join(parts)


def author_messages(source: str) -> list[re.Pattern]:
    """Patterns of the assertion messages the test's author wrote in one cell source.

    A plain string message matches itself; in an f-string only the author's literal text is kept and
    each ``{...}`` part is shown as "…", since its value may come from student code."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    patterns = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is None:
            continue
        if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
            patterns.append((re.compile(re.escape(node.msg.value) + r"\Z", re.S), node.msg.value))
        elif isinstance(node.msg, ast.JoinedStr):
            parts = [(re.escape(v.value), v.value) if isinstance(v, ast.Constant) else (".*?", "…")
                     for v in node.msg.values]
            patterns.append((re.compile("".join(p for p, _ in parts) + r"\Z", re.S), "".join(t for _, t in parts)))
    return patterns


def test_sources(db_url: str, assignment: str, notebook: str) -> dict[str, str]:
    """grade_id -> the test cell's source as the author wrote it (from the gradebook, not the submission)."""
    with Gradebook(db_url) as gb:
        try:
            nb = gb.find_notebook(notebook, assignment)
        except MissingEntry:
            return {}
        return {cell.name: cell.source or "" for cell in nb.source_cells}


class StripHiddenTests(NbGraderPreprocessor):
    """Feedback preprocessor: nothing produced while or after hidden tests ran reaches the student.

    * A cell with hidden tests shows its visible lines, one comment in place of the hidden region, and
      a verdict: "Tests passed." or "Tests failed: <builtin error name>", plus the assertion message if
      it is one the test's author wrote in that cell (f-string values shown as "…").
    * Every later code cell's outputs are withheld with a one-line note; a later test cell still shows
      its verdict and author message.  Student code runs in those cells after hidden tests ran, and could
      have read and re-encoded them (frames, ``inspect``, input history), so no scan could vouch for it.
    * Outputs of cells before the first hidden test are kept; lines quoting a hidden test are still
      removed there (defence in depth, e.g. a hook that reads the notebook file).
    """

    begin_delimiter = Unicode(BEGIN, help="Marker that opens a hidden-test region.").tag(config=True)
    end_delimiter = Unicode(END, help="Marker that closes a hidden-test region.").tag(config=True)
    min_chars = Integer(12, help="Shortest hidden line treated as identifying when scrubbing outputs.").tag(
        config=True)

    WITHHELD = ("[output not shown: this cell ran after hidden tests, so its output is withheld from "
                "feedback; your trainer sees it]\n")

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self._lines = hidden_lines(info["db_url"], info["assignment"], info["notebook"], self.min_chars)
        self._sources = test_sources(info["db_url"], info["assignment"], info["notebook"])
        self._after_hidden = False
        return super().preprocess(nb, resources)

    def _has_hidden(self, cell) -> bool:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        authored = self._sources.get(grade_id, "") if grade_id else ""
        return self.begin_delimiter in cell.source or self.begin_delimiter in authored

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        if self._has_hidden(cell):
            self._after_hidden = True
            kept, inside = [], False
            for line in cell.source.splitlines():
                if self.begin_delimiter in line:
                    inside = True
                    kept.append("# (hidden tests are not shown)")
                elif self.end_delimiter in line:
                    inside = False
                elif not inside:
                    kept.append(line)
            cell.source = "\n".join(kept)
            if cell.cell_type == "code":
                cell.outputs = [self._verdict(cell.outputs, meta.get("grade_id"))]
        elif cell.cell_type == "code" and self._after_hidden:
            if meta.get("grade") and not meta.get("solution"):
                cell.outputs = [self._verdict(cell.outputs, meta.get("grade_id"))]
            elif cell.outputs:
                cell.outputs = [new_output("stream", name="stdout", text=self.WITHHELD)]
        elif cell.cell_type == "code":
            cell.outputs = [self._scrub(out) for out in cell.outputs]
        return cell, resources

    def _verdict(self, outputs, grade_id=None):
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if not errors:
            return new_output("stream", name="stdout", text="Tests passed.\n")
        name = errors[0].get("ename", "")
        text = f"Tests failed: {name if name in _BUILTIN_ERRORS else 'Error'}"
        if name == "AssertionError":
            value = str(errors[0].get("evalue", ""))
            for pattern, shown in author_messages(self._sources.get(grade_id, "")) if grade_id else []:
                if value and pattern.match(value):
                    text += f": {shown}"
                    break
        return new_output("stream", name="stderr", text=text + "\n")

    def _clean(self, text: str) -> str:
        return "\n".join("[line removed: it quoted a hidden test]" if find_leaks(line, self._lines) else line
                         for line in text.split("\n"))

    def _scrub(self, out):
        if not self._lines:
            return out
        if "text" in out:
            out["text"] = self._clean(out["text"])
        if "traceback" in out:
            out["traceback"] = [self._clean(t) for t in out["traceback"]]
            out["evalue"] = self._clean(str(out.get("evalue", "")))
        for mime, value in list(out.get("data", {}).items()):
            if isinstance(value, str) and find_leaks(html_text(value) if "html" in mime else value, self._lines):
                out["data"][mime] = "[output removed: it quoted a hidden test]"
        return out
