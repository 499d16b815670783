"""One configuration path: `academy up`'s run facts reach the hub once, in $ACADEMY_RUNTIME, and
``jupyterhub -f hub/jupyterhub_config.py`` without them runs on the YAML's own values."""
from __future__ import annotations

import pytest
import yaml
from traitlets.config import Config, PyFileConfigLoader

from academy import configurer
from academy.probes import PROJECT_ROOT
from academy.runtime import RUNTIME_ENV, RunFacts, read_runtime
from academy.siteconfig import build_config, hub_config
from academy.validation import ConfigError

SLURM_SITE = {"backend": "slurm", "slurm": {"hub_connect_url": "http://login1.example.nl:8081"}}


def hub_of(site: dict, runtime: RunFacts | None = None) -> Config:
    c = Config()
    cfg = build_config(site, "t", runtime=runtime)
    configurer.update_hub(c, cfg)
    configurer.update_proxy(c, cfg)
    return c


def test_slurm_site_with_a_connect_url_binds_the_hub_where_nodes_reach_it():
    """With slurm.hub_connect_url and a fixed hub_port, does the hub's API listen on every interface, as
    `academy up` made it, also when the config is loaded by a plain `jupyterhub -f`?"""
    c = hub_of({**SLURM_SITE, "hub": {"hub_port": 8081}})
    assert c.JupyterHub.hub_bind_url == "http://0.0.0.0:8081"


def test_hub_api_stays_on_loopback_unless_nodes_need_it():
    """Without a connect URL (local backend, or a one-machine Slurm) does the hub API bind 127.0.0.1 only?"""
    assert hub_of({"hub": {"hub_port": 8081}}).JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert hub_of({"backend": "slurm", "hub": {"hub_port": 8081}}).JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    # A connect URL means nothing to the local backend: its servers run on this machine.
    local = hub_of({"slurm": SLURM_SITE["slurm"], "hub": {"hub_port": 8081}})
    assert local.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"


def test_slurm_site_without_a_fixed_hub_port_still_listens_for_nodes():
    """With a connect URL but hub_port 0 (JupyterHub's own port), does the hub still listen on every interface?"""
    c = hub_of(SLURM_SITE)
    assert "hub_bind_url" not in c.JupyterHub
    assert c.JupyterHub.hub_ip == "0.0.0.0"


def test_run_facts_replace_the_yaml_values_in_every_area():
    """Does `up --port` reach bind_url and the culler's proxy URL alike, and the proxy API port its api_url?"""
    facts = RunFacts(port=8200, hub_port=41000, proxy_api_port=41001)
    cfg = build_config({"hub": {"port": 8000}}, "t", runtime=facts)
    c = configurer.apply_config(Config(), cfg)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8200/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:41000"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:41001"
    culler = next(s for s in c.JupyterHub.services if s["name"] == "idle-culler")
    assert "--proxy-url=http://127.0.0.1:8200" in culler["command"]


def test_without_run_facts_the_yaml_and_jupyterhub_defaults_apply():
    """Without facts (a plain `jupyterhub -f`) is nothing about ports invented: the YAML's port, no hub or proxy API URL?"""
    c = hub_of({"hub": {"port": 8123}})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/"
    assert "hub_bind_url" not in c.JupyterHub and "api_url" not in c.ConfigurableHTTPProxy


def test_a_run_fact_is_validated_like_the_yaml_key_it_replaces():
    """Is an impossible `--port` refused with the key path named, not passed on to the hub?"""
    with pytest.raises(ConfigError, match="hub.port: 70000 is greater than the maximum"):
        build_config({}, "t", runtime=RunFacts(port=70000))


def test_run_facts_round_trip_through_their_one_variable():
    """Does what `up` writes into the environment read back as the same facts, and no variable as none?"""
    facts = RunFacts(port=8200, hub_port=41000, proxy_api_port=41001, proxy_cmd="/opt/chp")
    assert read_runtime(facts.to_env()) == facts
    assert read_runtime({}) == RunFacts()


@pytest.mark.parametrize("raw, message", [
    ("{not json", "ACADEMY_RUNTIME: Expecting property name"),
    ("[8200]", "a JSON object is expected"),
    ('{"prot": 8200}', "unknown field(s) prot"),
    ('{"port": "8200"}', "port: '8200' is not a port number"),
    ('{"proxy_api_port": 0}', "proxy_api_port: 0 is not a port number"),
])
def test_a_garbled_runtime_variable_is_a_clear_config_error(raw, message):
    """Is a hand-edited or garbled $ACADEMY_RUNTIME refused with one line naming the variable and field?"""
    with pytest.raises(ConfigError) as err:
        read_runtime({RUNTIME_ENV: raw})
    assert str(err.value).startswith(f"${RUNTIME_ENV}: ") and message in str(err.value)


def load_jupyterhub_config() -> Config:
    """hub/jupyterhub_config.py as `jupyterhub -f` loads it (traitlets' own loader, which provides get_config)."""
    loader = PyFileConfigLoader("jupyterhub_config.py", path=str(PROJECT_ROOT / "hub"))
    return loader.load_config()


@pytest.fixture
def site(tmp_path, monkeypatch):
    path = tmp_path / "academy.yaml"
    path.write_text(yaml.safe_dump({"hub": {"port": 8123, "state_dir": str(tmp_path / "state")},
                                    "workshops": {"enabled": False}}))
    monkeypatch.setenv("ACADEMY_CONFIG", str(path))
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    return path


def test_jupyterhub_config_without_academy_up_runs_on_the_yaml(site):
    """Does `jupyterhub -f hub/jupyterhub_config.py` with no $ACADEMY_RUNTIME take the YAML's port and leave
    the hub and proxy API to JupyterHub's defaults?"""
    c = load_jupyterhub_config()
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/"
    assert "hub_bind_url" not in c.JupyterHub and "api_url" not in c.ConfigurableHTTPProxy


def test_jupyterhub_config_takes_what_academy_up_decided(site, monkeypatch):
    """Does the hub's config read `up`'s facts (port, hub port, proxy API port, proxy) from the one variable?"""
    facts = RunFacts(port=8200, hub_port=41000, proxy_api_port=41001, proxy_cmd="/bin/true")
    monkeypatch.setenv(RUNTIME_ENV, facts.to_env()[RUNTIME_ENV])
    c = load_jupyterhub_config()
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8200/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:41000"
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:41001"
    assert c.ConfigurableHTTPProxy.command == ["/bin/true"]
    assert hub_config()["hub"]["port"] == 8200


def test_oidc_defaults_complete_a_site_oidc_block_and_make_none_for_native():
    """Do the OIDC defaults (claim, scopes, button text) fill in a site's oidc block, and stay out of a native site?"""
    oidc = {"client_id": "x", "client_secret_env": "S", "authorize_url": "https://a", "token_url": "https://t",
            "userdata_url": "https://u"}
    cfg = build_config({"auth": {"type": "oidc", "oidc": oidc}}, "t")
    assert cfg["auth"]["oidc"]["username_claim"] == "preferred_username"
    assert cfg["auth"]["oidc"]["scope"] == ["openid", "profile", "email"]
    c = Config()
    configurer.update_auth(c, cfg)
    assert c.GenericOAuthenticator.login_service == "institutional login"
    assert "allowed_groups" not in c.GenericOAuthenticator and "manage_groups" not in c.GenericOAuthenticator
    assert "oidc" not in build_config({}, "t")["auth"]


def test_the_workshop_service_gets_the_port_academy_up_chose():
    """Does the trainer service, a process of its own, get the run's ports, so credential sheets print `up --port`'s URL?"""
    from academy.configurer import apply_config

    facts = RunFacts(port=8200, hub_port=41000, proxy_api_port=41001)
    cfg = build_config({"workshops": {"enabled": True}}, "t", runtime=facts)
    service = next(s for s in apply_config(Config(), cfg).JupyterHub.services if s["name"] == "academy")
    env = service["environment"]
    assert read_runtime(env) == facts
    service_cfg = build_config({"workshops": {"enabled": True}}, "t", runtime=read_runtime(env))
    assert service_cfg["hub"]["port"] == 8200  # what actions.Context.public_url prints on credential sheets
    plain = next(s for s in apply_config(Config(), build_config({"workshops": {"enabled": True}}, "t")).JupyterHub.services
                 if s["name"] == "academy")
    assert RUNTIME_ENV not in plain["environment"]  # a plain `jupyterhub -f`: the YAML's own port
