"""Hidden tests: find their lines in the gradebook, strip them from feedback, and detect any leak.

nbgrader keeps the full test cells (hidden regions included) in the gradebook and restores them into
the autograded notebook, which stock ``generate_feedback`` renders as is (nbgrader #917, #1363).
:class:`StripHiddenTests` runs inside nbgrader's feedback converter:

* the hidden region of a test cell is replaced by one comment line;
* the outputs of a cell with hidden tests become a verdict ("passed" or "failed: AssertionError"):
  tracebacks and messages there would quote hidden assertions;
* every other output line that contains a hidden-test line is removed (student code can hook cell
  execution and print the source of later cells).

:func:`find_leaks` is the independent check run on everything a student receives (released notebooks,
feedback HTML, as rendered text): a file containing any hidden-test line is never handed out.  Literal
matching cannot see an obfuscated copy (e.g. base64) that student code prints after a hidden test has
run; that residual channel is documented in course/README.md.
"""
from __future__ import annotations

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


class StripHiddenTests(NbGraderPreprocessor):
    """Feedback preprocessor: remove hidden tests, their outputs and any echo of their lines."""

    begin_delimiter = Unicode(BEGIN, help="Marker that opens a hidden-test region.").tag(config=True)
    end_delimiter = Unicode(END, help="Marker that closes a hidden-test region.").tag(config=True)
    min_chars = Integer(12, help="Shortest hidden line treated as identifying when scrubbing outputs.").tag(
        config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self._lines = hidden_lines(info["db_url"], info["assignment"], info["notebook"], self.min_chars)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if self.begin_delimiter in cell.source:
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
                cell.outputs = [self._verdict(cell.outputs)]
        elif cell.cell_type == "code":
            cell.outputs = [self._scrub(out) for out in cell.outputs]
        return cell, resources

    def _verdict(self, outputs):
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if not errors:
            return new_output("stream", name="stdout", text="Tests passed.\n")
        name = errors[0].get("ename", "")
        return new_output("stream", name="stderr",
                          text=f"Tests failed: {name if name in _BUILTIN_ERRORS else 'Error'}\n")

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
