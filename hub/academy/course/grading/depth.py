"""Deeply nested notebooks: read them without a RecursionError, and drop only what is too deep to matter.

``json`` parses recursively, so a notebook whose outputs or metadata nest a few thousand levels deep (a
widget state, an ``application/json`` output, or a deliberate trick) made nbgrader fail the whole
submission with a ``RecursionError``.  Outputs are cleared before grading anyway and metadata outside
``nbgrader`` is not used, so :func:`flatten_if_deep` parses such a file in a thread with a large stack,
replaces every value nested deeper than :data:`MAX_DEPTH` with a short string, rewrites the file and
says so; sources (strings) are never touched, so the answers are graded as written.
"""
from __future__ import annotations

import json
import sys
import threading

MAX_DEPTH = 100
_BIG_STACK = 512 * 1024**2


def _depth_ok(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            json.load(fh)
        return True
    except RecursionError:
        return False
    except ValueError:
        return True  # not JSON at all: nbgrader reports that in its own words


def _prune(value, level: int = 0):
    if level >= MAX_DEPTH and isinstance(value, (dict, list)):
        return "[removed by the grader: nested too deeply]"
    if isinstance(value, dict):
        return {k: _prune(v, level + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_prune(v, level + 1) for v in value]
    return value


def _rewrite(path: str, out: list) -> None:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(_prune(data), fh)
        out.append(True)
    except (RecursionError, MemoryError, ValueError):
        out.append(False)
    finally:
        sys.setrecursionlimit(old)


def flatten_if_deep(path: str) -> str:
    """Rewrite ``path`` without its too-deep parts if plain ``json`` cannot read it; returns a note or ""."""
    if _depth_ok(path):
        return ""
    previous = threading.stack_size(_BIG_STACK)
    try:
        out: list = []
        worker = threading.Thread(target=_rewrite, args=(path, out))
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    name = path.rsplit("/", 1)[-1]
    if out and out[0]:
        return (f"{name}: parts of its outputs or metadata were nested more than {MAX_DEPTH} levels deep "
                "and were removed before grading; the code was graded as written")
    return f"{name}: nested too deeply to be read"
