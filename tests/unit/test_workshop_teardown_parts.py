"""Teardown's pure parts without a hub: the JSON step store and the symlink-proof home archive."""
from __future__ import annotations

import asyncio
import os
import tarfile
from datetime import datetime, timedelta, timezone

import pytest

from academy.workshop.teardown import JsonStepStore, PurgeTooEarly, archive_home, run_purge, run_teardown


def test_step_store_survives_reopening_and_ignores_repeats(tmp_path):
    """Is a mark visible to a fresh store on the same file, recorded once, and the file never left half-written?"""
    path = tmp_path / "steps.json"
    JsonStepStore(path).mark("ws", "ann", "stop")
    JsonStepStore(path).mark("ws", "ann", "stop")
    store = JsonStepStore(path)
    assert store.done("ws", "ann", "stop") and not store.done("ws", "ann", "archive")
    assert not store.done("other", "ann", "stop")
    assert path.read_text().count('"stop"') == 1
    assert [p.name for p in tmp_path.iterdir()] == ["steps.json"]  # no temp files left behind


def test_archive_stores_links_as_links_and_skips_fifos(tmp_path):
    """Does a home with links to /etc/shadow and another home archive the links, never their targets?"""
    home = tmp_path / "ann"
    (home / "work").mkdir(parents=True)
    (home / "work" / "a.py").write_text("print(1)")
    os.symlink("/etc/shadow", home / "shadow")
    os.symlink(tmp_path / "bob", home / "bob-home")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "secret").write_text("bob's")
    os.symlink("/etc", home / "work" / "etc")
    os.mkfifo(home / "pipe")
    dest = archive_home(home, tmp_path / "out" / "ann.tar.gz")
    assert dest.stat().st_mode & 0o777 == 0o600
    with tarfile.open(dest) as tar:
        names = {m.name: m for m in tar.getmembers()}
        assert names["ann/shadow"].issym() and names["ann/work/etc"].issym() and names["ann/bob-home"].issym()
        assert tar.extractfile(names["ann/work/a.py"]).read() == b"print(1)"
        assert "ann/pipe" not in names and not any("secret" in n or "passwd" in n for n in names)


def test_a_home_that_is_itself_a_symlink_archives_nothing(tmp_path):
    """If the home path was replaced by a link to /etc, is the archive empty instead of a copy of /etc?"""
    os.symlink("/etc", tmp_path / "ann")
    with tarfile.open(archive_home(tmp_path / "ann", tmp_path / "ann.tar.gz")) as tar:
        assert tar.getmembers() == []


def test_bad_names_and_early_purge_are_refused(tmp_path):
    """Are a participant name with a slash, duplicates, and a purge inside the retention refused before any step?"""
    kw = dict(hub_api_url="http://127.0.0.1:1/hub/api", token="t", store=JsonStepStore(tmp_path / "s.json"),
              state_dir=tmp_path, home_of=lambda n: tmp_path / n)
    with pytest.raises(ValueError):
        asyncio.run(run_teardown("ws", ["../etc"], **kw))
    with pytest.raises(ValueError):
        asyncio.run(run_teardown("ws", ["ann", "ann"], **kw))
    with pytest.raises(PurgeTooEarly, match="30 days"):
        asyncio.run(run_purge("ws", ["ann"], ended_at=datetime.now(timezone.utc) - timedelta(days=29), **kw))
    with pytest.raises(PurgeTooEarly, match="teardown has not finished"):
        asyncio.run(run_purge("ws", ["ann"], ended_at=datetime.now(timezone.utc) - timedelta(days=31), **kw))
