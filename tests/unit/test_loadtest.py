"""Load-test mode's guards, without a hub: loopback detection and the authenticator's own refusal."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from traitlets.config import Config

from academy.configurer import apply_config
from academy.loadtest import LoadTestAuthenticator, is_loopback
from academy.siteconfig import build_config


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("", False), ("::", False), ("10.0.0.5", False), ("hub.example.nl", False),
    ("localhost.evil.example", False),
])
def test_only_loopback_addresses_count_as_loopback(host, loopback):
    """Is every address that other machines could reach refused as 'not loopback'?"""
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("bind, hub_bind", [
    ("http://0.0.0.0:8000/", "http://127.0.0.1:8081"),
    ("http://127.0.0.1:8000/", "http://0.0.0.0:8081"),
    ("http://192.168.1.10:8000/", "http://127.0.0.1:8081"),
])
def test_authenticator_refuses_to_start_on_a_public_address(tmp_path, bind, hub_bind):
    """Does the hub itself stop in load-test mode when any address it binds is not loopback, whatever the CLI did?"""
    (tmp_path / "pw").write_text("a-long-enough-password\n")
    auth = LoadTestAuthenticator(password_file=str(tmp_path / "pw"))
    with pytest.raises(SystemExit, match="loopback"):
        auth.get_handlers(SimpleNamespace(bind_url=bind, hub_bind_url=hub_bind))
    assert auth.get_handlers(SimpleNamespace(bind_url="http://127.0.0.1:8000/", hub_bind_url="http://127.0.0.1:8081"))


def test_load_test_config_appends_its_service_and_keeps_the_culler():
    """Does load-test mode add its service and role next to the culler's, and drop the spawn form?"""
    cfg = build_config({"load_test": {"enabled": True}})
    cfg["_load_client_token"] = "t" * 32
    c = apply_config(Config(), cfg)
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", "academy", "load-client"]
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["idle-culler", "academy-service", "academy-trainer", "load-client", "user"]
    assert c.JupyterHub.authenticator_class == "academy.loadtest.LoadTestAuthenticator"
    assert c.AcademyLocalSpawner.options_form == ""
    plain = apply_config(Config(), build_config({}))
    assert plain.JupyterHub.authenticator_class == "academy.auth.AcademyNativeAuthenticator"
    assert plain.AcademyLocalSpawner.start_concurrency == 0


def test_spawn_queue_keys_are_validated():
    """Is a negative concurrency refused with the key's path named?"""
    from academy.validation import ConfigError

    with pytest.raises(ConfigError, match="spawn_queue"):
        build_config({"spawn_queue": {"concurrency": -1}})
