"""`academy up --ready-file`: the JSON a script reads instead of up's prose, written whole and owner-only."""
from __future__ import annotations

import json
import os
import stat
import subprocess

from academy.accounts import IssuedCredential
from academy.cli import main
from academy.readyfile import write_ready_file
from academy.siteconfig import build_config


def _cfg(tmp_path, **site):
    return build_config({"hub": {"state_dir": str(tmp_path / "state")}, **site})


def test_first_start_writes_url_pids_and_the_new_admin_password_owner_only(tmp_path):
    """Does the file hold the URL, both pids and the admin password this start made, readable only by its owner?"""
    path = tmp_path / "ready.json"
    cfg = _cfg(tmp_path, auth={"type": "native", "admin_users": ["admin", "second"]})
    write_ready_file(path, cfg, url="http://127.0.0.1:8123/", hub_pid=4242,
                     credential=IssuedCredential("admin", "s3cret-once"))
    facts = json.loads(path.read_text())
    assert facts["url"] == "http://127.0.0.1:8123/" and facts["pid"] == os.getpid() and facts["hub_pid"] == 4242
    assert (facts["admin_user"], facts["admin_password"]) == ("admin", "s3cret-once")
    assert facts["state_dir"] == str(tmp_path / "state") and facts["log"].endswith("jupyterhub.log")
    assert facts["load_test"] is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready.json"], "a temporary file was left behind"


def test_a_later_start_names_the_admin_but_no_password_and_replaces_the_old_file(tmp_path):
    """Without a new account, is the password null; is an older file replaced whole, not appended to?"""
    path = tmp_path / "ready.json"
    path.write_text('{"stale": true, "admin_password": "old"}')
    write_ready_file(path, _cfg(tmp_path, auth={"type": "native", "admin_users": ["boss"]}), url="u", hub_pid=1)
    facts = json.loads(path.read_text())
    assert "stale" not in facts and (facts["admin_user"], facts["admin_password"]) == ("boss", None)


def test_sso_and_load_test_sites(tmp_path):
    """Does a site without native admins name no admin, and does load-test mode name its credential files?"""
    path = tmp_path / "ready.json"
    write_ready_file(path, _cfg(tmp_path, auth={"type": "native", "admin_users": []}, load_test={"enabled": True}),
                     url="u", hub_pid=1)
    facts = json.loads(path.read_text())
    assert facts["admin_user"] is None and facts["admin_password"] is None
    assert facts["load_test"]["password_file"] == str(tmp_path / "state" / "load-test-password")


def test_no_option_writes_nothing(tmp_path):
    """Without --ready-file, is nothing written?"""
    write_ready_file(None, _cfg(tmp_path), url="u", hub_pid=1)
    assert list(tmp_path.iterdir()) == []


def test_up_offers_the_option(capsys):
    """Does `academy up --help` show --ready-file?"""
    try:
        main(["up", "--help"])
    except SystemExit:
        pass
    assert "--ready-file FILE" in capsys.readouterr().out


def test_commands_beside_a_running_up_find_its_port_and_a_stopped_one_is_ignored(tmp_path):
    """Does `academy workshop` find the hub where the running `up` put it, and fall back when that `up` is gone?"""
    from academy.readyfile import RUNNING, running_url

    cfg = {"hub": {"state_dir": str(tmp_path)}}
    assert running_url(cfg) is None  # never started
    (tmp_path / RUNNING).write_text(json.dumps({"url": "http://localhost:8200/", "pid": os.getpid()}))
    assert running_url(cfg) == "http://localhost:8200/"
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / RUNNING).write_text(json.dumps({"url": "http://localhost:8200/", "pid": dead.pid}))
    assert running_url(cfg) is None
    (tmp_path / RUNNING).write_text("{half a file")
    assert running_url(cfg) is None
