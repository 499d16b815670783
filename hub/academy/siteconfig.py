"""Site configuration: built-in defaults, deep-merged with the admin's YAML, validated by the schema.

Modelled on TLJH's configurer: a default dict, the site's YAML merged over it, and the
result validated against ``schema/site.schema.yaml`` (the single source of truth) before
anything is applied. Paths are resolved against the project root. What `academy up` decides
at start-up (``academy.runtime.RunFacts``) is merged over the YAML here and validated with it,
so the hub's one read (``hub_config``) and ``up``'s own checks see the same values.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from academy.probes import PROJECT_ROOT, find_proxy, free_port
from academy.runtime import RunFacts, read_runtime
from academy.validation import ConfigError, load_yaml, validate

CONFIG_ENV = "ACADEMY_CONFIG"
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "hub" / "academy.yaml"

DEFAULTS: dict[str, Any] = {
    "hub": {
        "ip": "127.0.0.1",
        "port": 8000,
        "hub_port": 0,  # 0: pick a free port next to the proxy at start-up
        "base_url": "/",
        "state_dir": ".academy",
        "proxy_cmd": "",
        "log_level": "INFO",
        "title": "AI Factory Academy",
        "concurrent_spawn_limit": 500,
        "active_server_limit": 0,
        "db_fast_commits": True,
    },
    "backend": "local",
    "auth": {
        "type": "native",
        "admin_users": ["admin"],
        "allowed_users": [],
        "allow_all": False,
        "signup": "off",
        "minimum_password_length": 10,
        # Used only with type oidc; the provider's own keys (client_id, endpoints) have no default.
        "oidc": {"username_claim": "preferred_username", "scope": ["openid", "profile", "email"],
                 "login_service": "institutional login", "callback_url": "", "groups_claim": "",
                 "allowed_groups": [], "admin_groups": []},
    },
    "groups": {},
    "profiles_file": "spawner_config/profiles.yaml",
    "curriculum": {"source": "notebooks", "target": "ai-factory-academy"},
    "lab": {"help_url": "", "help_email": "", "ask_trainer_url": "", "welcome": "00_welcome.ipynb",
            "walltime_recheck_seconds": 180},
    "local": {"homes_dir": "", "start_timeout": 60, "walltime_hour_seconds": 3600, "server_ports": "20000-29999"},
    "slurm": {
        "batch_script": "spawner_config/slurm.sh.j2",
        "python_env": str(PROJECT_ROOT / ".venv"),
        "exec_prefix": "runuser -u {username} --",
        "poll_interval": 5,
        "start_timeout": 600,
        "homes_dir": "",
        "availability_cache_seconds": 10,
    },
    "culler": {"enabled": True, "timeout": 3600, "every": 60, "warn_before": 600},
    "envs": {"index_url": ""},
    "workshops": {"enabled": True, "trainer_groups": ["trainers"], "max_participants": 60, "port": 0, "db_url": "", "public_url": "",
                  "warm_start_minutes": 10, "retention_days": 30, "tick_seconds": 60},
    "spawn_queue": {"concurrency": 0, "wait_limit": 3600, "stall_log_threshold": 0.25,
                    "stall_stacks": False},
    "load_test": {"enabled": False},
}
# The course workshops grade (coursework.course_layout); empty: `academy course`'s own defaults.
DEFAULTS["workshops"]["course"] = {"course_dir": "", "state_dir": "", "exchange_dir": "", "db_url": ""}
DEFAULTS["workshops"]["formgrader"] = {"enabled": False, "user": "academy-course", "port": 0}
# Ask a trainer: share a learner's server with the workshop's trainers only with their consent.
DEFAULTS["workshops"]["trainer_access"] = "consent"
# The graded course(s) (academy.course.site): the built-in demonstration course is the repository's course/.
DEFAULTS["course"] = {"exchange_dir": "/srv/academy/exchange", "grader_user": "academy-grader",
                      "limits": {"cell_timeout": 0, "notebook_timeout": 0, "memory_mb": 0, "jobs": 0},
                      "slurm": {"partition": "", "account": "", "memory_mb": 0},
                      "courses": [{"id": "ai-factory-101", "directory": "course"}]}

# Team folders (academy.teams): none unless the site lists hub groups.
DEFAULTS["team_folders"] = {"root": "", "groups": [], "unix_group_prefix": "acadteam-", "manage_unix_groups": True,
                            "usage_refresh_seconds": 300, "warn_gib": 0}
# Slurm accounting and GPU-hour budgets (academy.slurm.accounting_config).
DEFAULTS["slurm"]["accounting"] = {"enabled": False, "default_account": "", "refresh_seconds": 120, "budgets": {}}

# Keys whose values are paths relative to the project root.
PATH_KEYS = [
    ("hub", "state_dir"),
    ("hub", "proxy_cmd"),
    ("profiles_file",),
    ("curriculum", "source"),
    ("local", "homes_dir"),
    ("slurm", "batch_script"),
    ("slurm", "homes_dir"),
    ("workshops", "course", "course_dir"),
    ("workshops", "course", "state_dir"),
    ("workshops", "course", "exchange_dir"),
    ("team_folders", "root"),
    ("course", "exchange_dir"),
]


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` with ``override`` merged in; dicts merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_file(explicit: str | os.PathLike | None = None) -> Path:
    """Which file to read: ``--config``, then ``$ACADEMY_CONFIG``, then hub/academy.yaml."""
    chosen = explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE
    return Path(chosen).expanduser().resolve()


def _resolve_paths(cfg: dict, root: Path) -> None:
    for keys in PATH_KEYS:
        node = cfg
        for k in keys[:-1]:
            node = node.get(k, {})
        value = node.get(keys[-1])
        if value:
            node[keys[-1]] = str((root / Path(value).expanduser()).resolve())


def build_config(site: dict | None, source: str = "<site config>", root: Path = PROJECT_ROOT,
                 runtime: RunFacts | None = None) -> dict:
    """Merge the site's keys and this run's facts (``academy.runtime``) over the defaults, then validate."""
    site = {} if site is None else site
    if not isinstance(site, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, not {type(site).__name__}")
    runtime = runtime or RunFacts()
    merged = deep_merge(DEFAULTS, site)
    if isinstance(merged["hub"], dict):  # (not a mapping: the schema names hub below)
        merged = deep_merge(merged, runtime.site_overrides())
    site_auth = site.get("auth")
    if not (isinstance(site_auth, dict) and "oidc" in site_auth) and isinstance(merged["auth"], dict):
        # The OIDC defaults complete a site's oidc block; they do not make one (it has required keys).
        merged["auth"].pop("oidc", None)
    validate(merged, "site", source)
    if merged["auth"]["type"] == "oidc" and "oidc" not in merged["auth"]:
        raise ConfigError(f"{source}: auth.oidc: required when auth.type is oidc")
    from academy.spawners.local.ports import parse_range

    try:
        parse_range(merged["local"]["server_ports"])
    except ValueError as exc:
        raise ConfigError(f"{source}: local.server_ports: {exc}") from None
    _resolve_paths(merged, root)
    merged["_source"] = source
    merged["_root"] = str(root)
    merged["_runtime"] = runtime
    return merged


def load_config(explicit: str | os.PathLike | None = None, runtime: RunFacts | None = None) -> dict:
    """Load, merge and validate the site config (with this run's facts, if any); raises ``ConfigError`` with one clear line."""
    path = config_file(explicit)
    if not path.exists():
        if explicit or os.environ.get(CONFIG_ENV):
            raise ConfigError(f"{path}: config file not found")
        return build_config({}, "<built-in defaults>", runtime=runtime)
    return build_config(load_yaml(path), str(path), runtime=runtime)


def hub_config() -> dict:
    """The hub's one read of its config (``jupyterhub_config.py``): the YAML named by ``$ACADEMY_CONFIG``
    (else hub/academy.yaml), the facts `academy up` passed in ``$ACADEMY_RUNTIME`` (none under a plain
    ``jupyterhub -f``), then what only the hub's machine can tell."""
    return resolve_runtime(load_config(None, read_runtime()))


def resolve_runtime(cfg: dict) -> dict:
    """Fill in values found on this machine (the proxy binary), keeping the updaters pure."""
    runtime = cfg.get("_runtime") or RunFacts()
    # The proxy `academy up` checked before starting, else the one found here.
    cfg["hub"]["proxy_cmd"] = runtime.proxy_cmd or find_proxy(cfg) or cfg["hub"]["proxy_cmd"]
    _resolve_workshops(cfg)
    if cfg.get("load_test", {}).get("enabled"):
        from academy.loadtest import read_token

        cfg["_load_client_token"] = read_token(cfg["hub"]["state_dir"])
    return cfg


def _resolve_workshops(cfg: dict) -> None:
    """The service's port (a free one unless fixed) and its persistent API token, if `academy up` made one."""
    ws = cfg["workshops"]
    ws["_port"] = ws["port"] or free_port()
    token = Path(cfg["hub"]["state_dir"]) / "academy-service-token"
    if token.exists():
        ws["_api_token"] = token.read_text().strip()


def redacted(cfg: dict) -> dict:
    """The config without private bookkeeping keys, for display."""
    return {k: v for k, v in cfg.items() if not k.startswith("_")}
