"""Each update_<area> function on a bare traitlets Config: it only sets what the site config says."""
from __future__ import annotations

from traitlets.config import Config

from academy import configurer
from academy.probes import PROJECT_ROOT
from academy.siteconfig import build_config
from academy.validation import load_yaml


def apply(site: dict) -> Config:
    return configurer.apply_config(Config(), build_config(site, "t"))


def test_hub_binds_where_configured_and_keeps_state_in_state_dir():
    """Does update_hub put the DB, cookie secret and pid file in the state dir and bind the URL?"""
    c = Config()
    cfg = build_config({"hub": {"ip": "127.0.0.1", "port": 8123, "base_url": "/academy/", "state_dir": "/srv/st"}}, "t")
    configurer.update_hub(c, cfg)
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/academy/"
    assert c.JupyterHub.db_url == "sqlite:////srv/st/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == "/srv/st/jupyterhub_cookie_secret"
    assert c.JupyterHub.cleanup_servers is True
    assert "hub_bind_url" not in c.JupyterHub, "hub_port 0 must leave the choice to `academy up`"


def test_slurm_backend_keeps_jobs_across_hub_restarts():
    """Is cleanup_servers off for Slurm, so a hub restart does not cancel running jobs, and are owed cancels kept?"""
    c = apply({"backend": "slurm", "hub": {"state_dir": "/srv/st"}})
    assert c.JupyterHub.cleanup_servers is False
    assert c.AcademySlurmSpawner.cancel_journal == "/srv/st/slurm-pending-cancels.json"
    assert c.JupyterHub.spawner_class == "academy.spawners.slurm.spawner.AcademySlurmSpawner"
    assert c.AcademySlurmSpawner.profiles_file == str(PROJECT_ROOT / "spawner_config" / "profiles.yaml")
    assert "AcademyLocalSpawner" not in c


def test_local_backend_gets_homes_under_state_and_a_form_note():
    """Does the local backend get homes under the state dir and tell users GPU fields are ignored?"""
    c = apply({"hub": {"state_dir": "/srv/st"}})
    assert c.JupyterHub.spawner_class == "academy.spawners.local.spawner.AcademyLocalSpawner"
    assert c.AcademyLocalSpawner.homes_dir == "/srv/st/homes"
    assert "ignored" in c.AcademyLocalSpawner.form_note
    assert c.AcademyLocalSpawner.cmd[0].endswith("jupyterhub-singleuser")
    assert c.AcademyLocalSpawner.curriculum_source == str(PROJECT_ROOT / "notebooks")
    assert c.Spawner.environment["JUPYTER_CONFIG_PATH"] == str(PROJECT_ROOT / "hub" / "singleuser")


def test_native_auth_has_no_default_password_and_locks_out_guessing():
    """Is native auth bcrypt-backed with sign-up off, strong passwords and login throttling?"""
    c = apply({})
    assert c.JupyterHub.authenticator_class == "academy.auth.AcademyNativeAuthenticator"
    assert c.NativeAuthenticator.enable_signup is False
    assert c.NativeAuthenticator.minimum_password_length >= 10
    assert c.NativeAuthenticator.check_common_password is True
    assert c.NativeAuthenticator.allowed_failed_logins > 0
    assert c.Authenticator.admin_users == {"admin"}
    assert "password" not in str(c.Authenticator).lower()


def test_oidc_maps_provider_settings_and_reads_secret_from_env_only():
    """Does OIDC configure GenericOAuthenticator, with group-managed profiles, and never carry the secret?"""
    data = load_yaml(PROJECT_ROOT / "hub" / "academy.full-example.yaml")
    c = configurer.apply_config(Config(), build_config(data, "full"))
    g = c.GenericOAuthenticator
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert g.client_id == "academy-hub"
    assert g.username_claim == "preferred_username"
    assert g.auth_state_groups_key == "oauth_user.eduperson_entitlement"
    assert g.manage_groups is True
    assert g.allowed_groups == {"ai-factory-academy"} and g.admin_groups == {"ai-factory-trainers"}
    assert "client_secret" not in g, "the secret comes from $ACADEMY_OIDC_SECRET via OAuthenticator, not the YAML"


def test_groups_and_culler():
    """Are YAML groups loaded and is the GPU-aware culler a service with only the scopes it needs?"""
    c = apply({"groups": {"workshop": ["ann", "bob"]}, "culler": {"timeout": 1800, "every": 60, "warn_before": 300},
               "hub": {"ip": "0.0.0.0", "port": 8123, "base_url": "/academy/"},
               "workshops": {"enabled": False}})
    assert c.JupyterHub.load_groups == {"workshop": {"users": ["ann", "bob"]}}
    (service,) = c.JupyterHub.services
    assert service["command"][1:3] == ["-m", "academy.culler"]
    for arg in ("--timeout=1800", "--every=60", "--warn-before=300", "--proxy-url=http://127.0.0.1:8123/academy"):
        assert arg in service["command"], arg
    assert any(a.startswith("--profiles-file=") and a.endswith("profiles.yaml") for a in service["command"])
    (role,) = c.JupyterHub.load_roles
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers",
                                   "access:servers"}
    assert "services" not in apply({"culler": {"enabled": False}, "workshops": {"enabled": False}}).JupyterHub


def test_culler_appends_to_services_and_roles_set_before_it():
    """Does update_culler keep services and roles another area added earlier (it appends, never replaces)?"""
    c = Config()
    c.JupyterHub.services = [{"name": "other"}]
    c.JupyterHub.load_roles = [{"name": "other", "scopes": [], "services": ["other"]}]
    configurer.update_culler(c, build_config({}, "t"))
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "idle-culler"]
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["other", "idle-culler"]


def test_envs_index_reaches_every_server_as_pip_index_url():
    """Does envs.index_url become PIP_INDEX_URL in the servers' environment, next to the Jupyter config path?"""
    c = apply({"envs": {"index_url": "https://pypi.example.nl/simple"}})
    assert c.Spawner.environment["PIP_INDEX_URL"] == "https://pypi.example.nl/simple"
    assert "JUPYTER_CONFIG_PATH" in c.Spawner.environment
    assert "PIP_INDEX_URL" not in apply({}).Spawner.environment


def test_updaters_only_set_values():
    """Do the updaters leave unrelated config untouched (they only set, never reset)?"""
    c = Config()
    c.JupyterHub.some_admin_override = 42
    configurer.apply_config(c, build_config({}, "t"))
    assert c.JupyterHub.some_admin_override == 42


def test_workshop_service_is_appended_with_its_roles_and_trainer_groups():
    """Does update_workshops append the academy service and its roles to what other areas set, and make the trainer groups?"""
    c = Config()
    c.JupyterHub.services = [{"name": "other"}]
    c.JupyterHub.load_roles = [{"name": "other", "scopes": ["read:users"]}]
    c.JupyterHub.load_groups = {"trainers": {"users": ["ann"]}}
    cfg = build_config({"workshops": {"trainer_groups": ["trainers", "staff"], "port": 9123}}, "t")
    configurer.update_workshops(c, cfg)
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "academy"]
    service = c.JupyterHub.services[1]
    assert service["url"] == "http://127.0.0.1:9123" and service["command"][-1] == "academy.workshop.service"
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(roles) == {"other", "academy-service", "academy-trainer"}
    assert roles["academy-trainer"]["scopes"] == ["access:services!service=academy"]
    assert roles["academy-trainer"]["groups"] == ["trainers", "staff"]
    assert c.JupyterHub.load_groups == {"trainers": {"users": ["ann"]}, "staff": {"users": []}}


def test_workshop_service_can_be_switched_off():
    """Does workshops.enabled: false leave services and roles untouched?"""
    c = apply({"workshops": {"enabled": False}, "culler": {"enabled": False}})
    assert "services" not in c.JupyterHub and "load_roles" not in c.JupyterHub


def test_formgrader_is_a_trainer_only_service_and_refuses_the_hub_state(tmp_path):
    """Does update_formgrader append a Formgrader service open to the trainer groups, and refuse a course state shared with the hub's?"""
    import pytest

    from academy.validation import ConfigError

    (tmp_path / "course").mkdir()
    course = {"course_dir": str(tmp_path / "course"), "state_dir": str(tmp_path / "cstate"), "exchange_dir": str(tmp_path / "x")}
    cfg = build_config({"hub": {"state_dir": str(tmp_path / "hub")},
                        "workshops": {"trainer_groups": ["trainers"], "course": course, "formgrader": {"enabled": True, "port": 9321}}}, "t")
    c = Config()
    c.JupyterHub.services = [{"name": "other"}]
    configurer.update_formgrader(c, cfg)
    service = c.JupyterHub.services[-1]
    assert service["name"] == "formgrader" and service["url"] == "http://127.0.0.1:9321" and "user" not in service
    assert service["command"][-1] == "academy.workshop.formgrader"
    role = c.JupyterHub.load_roles[-1]
    assert role["scopes"] == ["access:services!service=formgrader"] and role["groups"] == ["trainers"]
    shared = build_config({"hub": {"state_dir": str(tmp_path / "hub")},
                           "workshops": {"course": {**course, "state_dir": str(tmp_path)}, "formgrader": {"enabled": True}}}, "t")
    with pytest.raises(ConfigError, match="workshops.formgrader"):
        configurer.update_formgrader(Config(), shared)
    default = apply({"culler": {"enabled": False}}).JupyterHub  # off unless a course state of its own is configured
    assert "formgrader" not in [s["name"] for s in default.get("services", [])]
