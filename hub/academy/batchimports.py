"""One import-time shortcut for the batch tools that start many Python processes.

jsonschema compiles an IRI grammar with lark when ``rfc3987_syntax`` is installed: about 0.7 s of CPU
in every process that imports nbformat, nbconvert or nbgrader.  Only jsonschema's ``iri`` and
``iri-reference`` format checkers use it, and neither nbformat's nor nbgrader's schemas use those
formats.  The curriculum workers and the autograde parent and workers therefore call
:func:`skip_iri_grammar` before anything imports jsonschema.  The hub never does: its extensions may
validate such formats.
"""
from __future__ import annotations

import sys


def skip_iri_grammar() -> None:
    """Make ``import rfc3987_syntax`` fail fast in this process (a no-op once jsonschema is imported)."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
