"""The hub database's commits: does the hub's SQLite file, and only it, commit without waiting for the disk?"""
from __future__ import annotations

import sqlalchemy

from academy import hubdb
from academy.siteconfig import DEFAULTS


def pragmas(engine) -> tuple[str, int]:
    with engine.connect() as conn:
        return (conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                conn.exec_driver_sql("PRAGMA synchronous").scalar())


def test_the_hub_database_gets_a_wal_journal_and_normal_sync(tmp_path):
    """Does a connection to the hub's database file get WAL and synchronous=NORMAL (1), and keep its data?"""
    db = tmp_path / "jupyterhub.sqlite"
    hubdb.install(str(db))
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    assert pragmas(engine) == ("wal", 1)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE users (name TEXT)")
        conn.exec_driver_sql("INSERT INTO users VALUES ('ann')")
    engine.dispose()
    again = sqlalchemy.create_engine(f"sqlite:///{db}")
    with again.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM users").scalars().all() == ["ann"]


def test_other_databases_keep_sqlites_defaults(tmp_path):
    """Is any other SQLite file (a gradebook, the workshop service's) left with SQLite's own journal and FULL sync?"""
    hubdb.install(str(tmp_path / "jupyterhub.sqlite"))
    other = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'gradebook.db'}")
    assert pragmas(other) == ("delete", 2)


def test_on_by_default_and_switchable(tmp_path):
    """Is it on by default, and does `hub.db_fast_commits: false` leave the hub's file alone?"""
    assert DEFAULTS["hub"]["db_fast_commits"] is True
    cfg = {"hub": {"db_fast_commits": False, "state_dir": str(tmp_path / "off")}}
    hubdb.install_from(cfg)
    (tmp_path / "off").mkdir()
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'off' / 'jupyterhub.sqlite'}")
    assert pragmas(engine) == ("delete", 2)
