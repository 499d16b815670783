"""Imported only by the grading forkserver (``pool._PRELOAD``): pays nbgrader's first-use costs once, before any fork.

A forked job inherits whatever its parent had already set up.  Importing the worker is not enough: the
first grading in a process also compiles nbformat's JSON-schema validators and configures SQLAlchemy's
mappers for the gradebook, about a quarter of a second of CPU that every job would otherwise pay again,
since each job is a fresh fork of the server.  Done here, it is paid once per run, while the parent is
still importing nbgrader itself.  Nothing here may create a ZeroMQ context or leave a database
connection open: neither survives a fork.
"""
from __future__ import annotations


def warm_up() -> None:
    from nbformat.validator import get_validator
    from nbgrader.api import Gradebook, MissingEntry

    for minor in (4, 5):  # notebooks written by JupyterLab 3/4 and by nbgrader itself
        get_validator(version=4, version_minor=minor)
    with Gradebook("sqlite://") as gb:  # in memory; closed (engine disposed) before any fork
        try:
            gb.find_submission("warm-up", "warm-up")
        except MissingEntry:
            pass


try:
    warm_up()
except Exception:  # noqa: BLE001 - a failed warm-up only costs time; the jobs still work without it
    pass
