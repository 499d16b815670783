"""Commit the hub's SQLite database without an fsync per commit, so a busy disk does not stall the hub.

JupyterHub commits its database on the event loop, many times per spawn.  With SQLite's defaults
(rollback journal, ``synchronous=FULL``) each commit waits for the disk, and while a class starts the
disk is busy copying curricula: the load benchmark's stall watch (:mod:`academy.stallwatch`) found
SQLite's ``do_commit`` under most stalls of 0.1-0.3 s.  A WAL journal with ``synchronous=NORMAL``
commits to the operating system's cache; SQLite stays consistent after any crash, and a power cut may
lose the last seconds of hub state (who runs what), which the hub rebuilds from the running servers.
Only the hub's own database file is touched (``hub.db_fast_commits`` in the site config).
"""
from __future__ import annotations

import os
import sqlite3

_installed: set[str] = set()


def fast_commits(dbapi_connection: sqlite3.Connection) -> None:
    """Switch one SQLite connection to a WAL journal and commits without fsync."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _database_file(dbapi_connection: sqlite3.Connection) -> str | None:
    cursor = dbapi_connection.cursor()
    try:
        rows = cursor.execute("PRAGMA database_list").fetchall()
    finally:
        cursor.close()
    return next((os.path.realpath(path) for _seq, name, path in rows if name == "main" and path), None)


def install(db_file: str) -> None:
    """Give every SQLAlchemy connection to ``db_file`` (the hub's database) fast commits from now on."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = os.path.realpath(db_file)
    if target in _installed:
        return
    _installed.add(target)

    @event.listens_for(Engine, "connect")
    def _on_connect(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection) and _database_file(dbapi_connection) == target:
            fast_commits(dbapi_connection)


def install_from(cfg: dict) -> None:
    """As the site config says (``hub.db_fast_commits``); called by jupyterhub_config.py in the hub process."""
    if cfg["hub"].get("db_fast_commits"):
        from academy.configurer import state_path

        install(state_path(cfg, "jupyterhub.sqlite"))
