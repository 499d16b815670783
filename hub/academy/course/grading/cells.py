"""Fair cells: before nbgrader's own sanitising, ignore nbgrader cells the assignment does not have.

nbgrader zeroes a whole notebook for cells it cannot place: a duplicated (copy-pasted) test cell makes
``DeduplicateIds`` leave an empty ``nbgrader`` dict behind, and ``OverwriteCells.add_missing_task_cells``
then fails with ``KeyError: 'grade_id'`` (jupyter/nbgrader#1083); a forged grade cell claiming 1000
points fails the same way.  :class:`FairCells` runs first and turns each such cell into an ordinary
cell (its code still runs, it is just not graded): cells whose ``grade_id`` is missing, not in the
assignment (from the gradebook, not the submission), or repeated (the last copy is kept, as nbgrader's
``DeduplicateIds`` keeps it).  Everything else is graded as nbgrader grades it, and each ignored cell
is written to the job's event log, from which the report says so.
"""
from __future__ import annotations

import json

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode


def assignment_cell_ids(db_url: str, assignment: str, notebook: str) -> set[str]:
    with Gradebook(db_url) as gb:
        try:
            nb = gb.find_notebook(notebook, assignment)
        except MissingEntry:
            return set()
        return {c.name for c in nb.source_cells} | {c.name for c in nb.grade_cells} | {
            c.name for c in nb.solution_cells} | {c.name for c in nb.task_cells}


class FairCells(NbGraderPreprocessor):
    """Sanitize step: strip the nbgrader metadata of cells that would make nbgrader fail the notebook."""

    event_log = Unicode("", help="JSON-lines file receiving one event per ignored cell.").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        known = assignment_cell_ids(info["db_url"], info["assignment"], info["notebook"])
        seen: set[str] = set()
        ignored = []
        for index in range(len(nb.cells) - 1, -1, -1):  # from the end: the last copy is the one kept
            cell = nb.cells[index]
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            reason = None
            if not isinstance(meta, dict) or not isinstance(grade_id, str) or not grade_id:
                reason = "has nbgrader metadata without an id"
            elif grade_id not in known:
                reason = "is not part of the assignment"
            elif grade_id in seen:
                reason = "is a copy of another cell"
            if reason is None:
                seen.add(grade_id)
                continue
            if isinstance(meta, dict) and not (meta.get("grade") or meta.get("solution") or meta.get("task")
                                               or meta.get("locked")):
                del cell.metadata["nbgrader"]  # plain leftover metadata, nothing to say about it
                continue
            del cell.metadata["nbgrader"]
            ignored.append({"event": "ignored_cell", "notebook": info["notebook"], "index": index,
                            "grade_id": str(grade_id)[:80], "reason": reason,
                            "points": meta.get("points") if isinstance(meta, dict) else None})
        if ignored and self.event_log:
            with open(self.event_log, "a", encoding="utf-8") as fh:
                for event in reversed(ignored):
                    fh.write(json.dumps(event) + "\n")
        return nb, resources

    def preprocess_cell(self, cell, resources, index):  # everything happens in preprocess
        return cell, resources


def explain(events: list[dict]) -> list[str]:
    """One note per ignored cell, for the report."""
    notes = []
    for e in events:
        if e.get("event") == "ignored_cell":
            claim = f", claiming {e['points']} points" if e.get("points") else ""
            notes.append(f"cell {e['index'] + 1} of {e['notebook']} ({e['grade_id']!r}{claim}) {e['reason']}: "
                         "it was not graded; the rest of the notebook was")
    return notes[:20]
