"""Translate the validated site config into JupyterHub config, one small pure function per area.

Each ``update_<area>(c, cfg)`` only *sets* values on a ``traitlets.config.Config``; none
reads files or the environment, so each is unit-tested on a bare ``Config()``. The model
is TLJH's ``configurer.py``.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from traitlets.config import Config

from academy.teams.hook import update_team_folders
from academy.course.site import update_course
from academy.slurm.accounting_config import update_slurm_accounting
from academy.trainer_access import update_trainer_access
from academy.validation import ConfigError

SPAWNER_CLASSES = {
    "local": "academy.spawners.local.spawner.AcademyLocalSpawner",
    "slurm": "academy.spawners.slurm.spawner.AcademySlurmSpawner",
}
# Hub usernames double as Unix account suffixes and Slurm job names, so keep them plain.
USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{0,26}$"


def spawner_section(cfg: dict) -> str:
    """The config section name of the active spawner class, e.g. ``AcademyLocalSpawner``."""
    return SPAWNER_CLASSES[cfg["backend"]].rsplit(".", 1)[1]


def state_path(cfg: dict, name: str) -> str:
    return str(Path(cfg["hub"]["state_dir"]) / name)


def update_hub(c: Config, cfg: dict) -> None:
    hub = cfg["hub"]
    c.JupyterHub.bind_url = f"http://{hub['ip']}:{hub['port']}{hub['base_url']}"
    # Jobs on compute nodes reach the hub's API through slurm.hub_connect_url, so the hub then
    # listens on every interface; otherwise only this machine needs to reach it.
    remote = cfg["backend"] == "slurm" and bool(cfg["slurm"].get("hub_connect_url"))
    if hub["hub_port"]:
        c.JupyterHub.hub_bind_url = f"http://{'0.0.0.0' if remote else '127.0.0.1'}:{hub['hub_port']}"
    elif remote:  # JupyterHub's own hub port, on every interface
        c.JupyterHub.hub_ip = "0.0.0.0"
    c.JupyterHub.db_url = "sqlite:///" + state_path(cfg, "jupyterhub.sqlite")
    c.JupyterHub.cookie_secret_file = state_path(cfg, "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = state_path(cfg, "jupyterhub.pid")
    c.JupyterHub.log_level = hub["log_level"]
    c.JupyterHub.concurrent_spawn_limit = hub["concurrent_spawn_limit"]
    c.JupyterHub.active_server_limit = hub["active_server_limit"]
    c.JupyterHub.template_paths = [str(Path(cfg["_root"]) / "hub" / "templates")]
    c.JupyterHub.template_vars = {"academy_title": hub["title"], "academy_backend": cfg["backend"]}
    c.JupyterHub.default_url = "/hub/home"
    # Slurm jobs must outlive a hub restart; local processes are children and go with it.
    c.JupyterHub.cleanup_servers = cfg["backend"] == "local"


def update_proxy(c: Config, cfg: dict) -> None:
    hub = cfg["hub"]
    if hub["proxy_cmd"]:
        c.ConfigurableHTTPProxy.command = [hub["proxy_cmd"]]
    c.ConfigurableHTTPProxy.pid_file = state_path(cfg, "proxy.pid")
    runtime = cfg.get("_runtime")
    if runtime and runtime.proxy_api_port:
        # `academy up` picks a free port: JupyterHub's 8001 on every hub would let a trainer's second
        # hub (or a test hub) take over this one's routes.
        c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{runtime.proxy_api_port}"
    # Stop the proxy with the hub: `academy up` owns the whole service lifetime.
    c.ConfigurableHTTPProxy.should_start = True


def update_auth(c: Config, cfg: dict) -> None:
    auth = cfg["auth"]
    c.Authenticator.admin_users = set(auth["admin_users"])
    c.Authenticator.allowed_users = set(auth["allowed_users"])
    c.Authenticator.username_pattern = USERNAME_PATTERN
    if auth["type"] == "native":
        c.JupyterHub.authenticator_class = "academy.auth.AcademyNativeAuthenticator"
        # Admin approval (or open sign-up) is NativeAuthenticator's own gate, so the hub
        # lets through whoever it authenticates.
        c.NativeAuthenticator.allow_all = True
        c.NativeAuthenticator.enable_signup = auth["signup"] != "off"
        c.NativeAuthenticator.open_signup = auth["signup"] == "open"
        c.NativeAuthenticator.minimum_password_length = auth["minimum_password_length"]
        c.NativeAuthenticator.check_common_password = True
        c.NativeAuthenticator.allowed_failed_logins = 5
        c.NativeAuthenticator.seconds_before_next_try = 60
    else:
        oidc = auth["oidc"]
        c.JupyterHub.authenticator_class = "generic-oauth"
        g = c.GenericOAuthenticator
        g.allow_all = auth["allow_all"]
        g.client_id = oidc["client_id"]
        g.authorize_url = oidc["authorize_url"]
        g.token_url = oidc["token_url"]
        g.userdata_url = oidc["userdata_url"]
        g.username_claim = oidc["username_claim"]
        g.scope = oidc["scope"]
        g.login_service = oidc["login_service"]
        if oidc["callback_url"]:
            g.oauth_callback_url = oidc["callback_url"]
        if oidc["groups_claim"]:
            g.auth_state_groups_key = f"oauth_user.{oidc['groups_claim']}"
            # Hub groups follow the provider's, so profile group limits use them.
            g.manage_groups = True
        if oidc["allowed_groups"]:
            g.allowed_groups = set(oidc["allowed_groups"])
        if oidc["admin_groups"]:
            g.admin_groups = set(oidc["admin_groups"])


def update_groups(c: Config, cfg: dict) -> None:
    if cfg["groups"]:
        c.JupyterHub.load_groups = {name: {"users": sorted(members)} for name, members in cfg["groups"].items()}


def update_spawner(c: Config, cfg: dict) -> None:
    c.JupyterHub.spawner_class = SPAWNER_CLASSES[cfg["backend"]]
    c.Spawner.default_url = "/lab"
    # Learner servers get our Jupyter settings (no instructor panels; see hub/singleuser/README.md).
    c.Spawner.environment = {"JUPYTER_CONFIG_PATH": str(Path(cfg["_root"]) / "hub" / "singleuser")}
    c.Spawner.http_timeout = 60
    section = c[spawner_section(cfg)]
    section.profiles_file = cfg["profiles_file"]
    section.curriculum_source = cfg["curriculum"]["source"]
    section.curriculum_target = cfg["curriculum"]["target"]


def update_local(c: Config, cfg: dict) -> None:
    if cfg["backend"] != "local":
        return
    local = cfg["local"]
    s = c.AcademyLocalSpawner
    s.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
    s.homes_dir = local["homes_dir"] or state_path(cfg, "homes")
    s.start_timeout = local["start_timeout"]
    s.server_ports = local["server_ports"]
    s.form_note = (
        "This Academy runs servers on this machine (local backend): GPU, partition and "
        "reservation settings of a profile are ignored here."
    )


def update_slurm(c: Config, cfg: dict) -> None:
    if cfg["backend"] != "slurm":
        return
    slurm = cfg["slurm"]
    s = c.AcademySlurmSpawner
    s.batch_script_file = slurm["batch_script"]
    s.python_env = slurm["python_env"]
    s.exec_prefix = slurm["exec_prefix"]
    # One batched squeue per interval for all servers; JupyterHub's own per-server poll only reads the cache.
    s.query_interval = float(slurm["poll_interval"])
    s.startup_query_interval = min(1.0, float(slurm["poll_interval"]))
    s.poll_interval = float(slurm["poll_interval"])
    s.start_timeout = slurm["start_timeout"]
    s.availability_cache_seconds = float(slurm["availability_cache_seconds"])
    if slurm["homes_dir"]:
        s.homes_dir = slurm["homes_dir"]
    if slurm.get("hub_connect_url"):
        c.JupyterHub.hub_connect_url = slurm["hub_connect_url"].rstrip("/")
    # Jobs outlive a hub restart and are re-attached from the database; cancels a controller outage
    # held back are kept beside it.
    c.JupyterHub.cleanup_servers = False
    s.cancel_journal = state_path(cfg, "slurm-pending-cancels.json")
    # Why the learner's last job ended behind the hub's back, for hub/templates to show.
    from academy.spawners.slurm.messages import last_stop_message

    c.JupyterHub.template_vars.update({"academy_last_stop": last_stop_message})


def update_culler(c: Config, cfg: dict) -> None:
    """The GPU-aware culler (academy.culler): a hub service that may read activity from and stop servers."""
    culler = cfg["culler"]
    if not culler["enabled"]:
        return
    hub = cfg["hub"]
    host = hub["ip"] if hub["ip"] not in ("", "0.0.0.0") else "127.0.0.1"
    services = list(c.JupyterHub.services) if "services" in c.JupyterHub else []
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "academy.culler",
                f"--profiles-file={cfg['profiles_file']}",
                f"--timeout={culler['timeout']}",
                f"--every={culler['every']}",
                f"--warn-before={culler.get('warn_before', 600)}",
                # It asks each server's academy.labtools through the proxy, as the learner's browser does.
                f"--proxy-url=http://{host}:{hub['port']}{hub['base_url'].rstrip('/')}",
                # Warm-started workshop servers are kept until their workshop starts (academy.workshop.lifecycle).
                *([f"--workshops-db={cfg['workshops']['db_url'] or 'sqlite:///' + state_path(cfg, 'workshops.sqlite')}"]
                  if cfg.get("workshops", {}).get("enabled") else []),
            ],
        }
    )
    c.JupyterHub.services = services
    roles = list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub else []
    roles.append(
        {
            "name": "idle-culler",
            # access:servers: read kernel/GPU activity and post the warning notice; delete:servers: the cull.
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers", "access:servers"],
            "services": ["idle-culler"],
        }
    )
    c.JupyterHub.load_roles = roles


def update_envs(c: Config, cfg: dict) -> None:
    """Own environments install from the site's package index (pip reads PIP_INDEX_URL)."""
    index_url = cfg.get("envs", {}).get("index_url")
    if index_url:
        c.Spawner.environment = {**c.Spawner.environment, "PIP_INDEX_URL": index_url}


def update_workshops(c: Config, cfg: dict) -> None:
    """The trainer service at /services/academy/, its own role, and who may open it (see the README)."""
    ws = cfg["workshops"]
    if not ws["enabled"]:
        return
    service = {
        "name": "academy",
        "display": True,
        "info": {"description": "Workshops: participants, reservations, content, grading, teardown"},
        "url": f"http://127.0.0.1:{ws.get('_port', ws['port'])}",
        "command": [sys.executable, "-m", "academy.workshop.service"],
        "oauth_no_confirm": True,
        "environment": {"ACADEMY_CONFIG": cfg["_source"]} if not cfg["_source"].startswith("<") else {},
    }
    if cfg.get("_runtime") is not None and cfg["_runtime"].site_overrides()["hub"]:
        # The service prints the hub's public URL on credential sheets: the port `academy up` chose.
        service["environment"] = {**service["environment"], **cfg["_runtime"].to_env()}
    if os.environ.get("SLURM_CONF"):
        # The hub passes services only a few variables; the reservation check's scontrol needs this one.
        service["environment"] = {**service["environment"], "SLURM_CONF": os.environ["SLURM_CONF"]}
    if ws.get("_api_token"):
        # The same token `academy workshop` reads from the state dir, so the CLI drives the same code.
        service["api_token"] = ws["_api_token"]
    c.JupyterHub.services = [*c.JupyterHub.get("services", []), service]
    c[spawner_section(cfg)].workshops_db_url = ws["db_url"] or "sqlite:///" + state_path(cfg, "workshops.sqlite")
    c.JupyterHub.load_roles = [
        *c.JupyterHub.get("load_roles", []),
        {
            "name": "academy-service",
            "description": "The workshop service: makes participants' users and groups, reads callers' groups",
            "scopes": ["admin:users", "admin:groups", "list:users", "read:users", "list:groups", "read:groups",
                       "read:servers", "servers", "admin:server_state",  # the dashboard's job ids and stop reasons
                       # teardown: delete participants' tokens and revoke shares of their servers
                       "tokens", "shares"],
            "services": ["academy"],
        },
        {
            "name": "academy-trainer",
            "description": "May open the workshop service; which workshops the service decides from the trainer groups",
            "scopes": ["access:services!service=academy"],
            "groups": list(ws["trainer_groups"]),
        },
    ]
    # A role naming a group that does not exist stops the hub, so the trainer groups are made (empty).
    groups = dict(c.JupyterHub.get("load_groups", {}))
    for group in ws["trainer_groups"]:
        groups.setdefault(group, {"users": []})
    c.JupyterHub.load_groups = groups


def update_learner_api(c: Config, cfg: dict) -> None:
    """Learner servers reach the trainer service with their own token; announcements on the home page (#10)."""
    from academy.workshop.learnerconfig import update_learner_side

    update_learner_side(c, cfg)


def update_formgrader(c: Config, cfg: dict) -> None:
    """nbgrader's Formgrader as the hub-managed service ``formgrader``, run as the course owner, open to trainers."""
    ws = cfg["workshops"]
    fg = ws["formgrader"]
    if not (ws["enabled"] and fg["enabled"]):
        return
    from academy.course.layout import LayoutError
    from academy.workshop.coursework import layout_for
    from academy.workshop.formgrader import SharedState, check_course_state

    try:  # a managed service that exits stops the hub: refuse a bad setup here, naming the key
        check_course_state(cfg, layout_for(cfg))
    except (LayoutError, SharedState) as exc:
        raise ConfigError(str(exc)) from None
    from academy.probes import free_port

    port = fg["port"] or free_port()
    c.JupyterHub.services = [*c.JupyterHub.get("services", []), {
        "name": "formgrader",
        "display": True,
        "info": {"description": "nbgrader's Formgrader: manual grading of the course (trainers)"},
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "academy.workshop.formgrader"],
        "oauth_no_confirm": True,
        "environment": {"ACADEMY_CONFIG": cfg["_source"]} if not cfg["_source"].startswith("<") else {},
    }]
    c.JupyterHub.load_roles = [*c.JupyterHub.get("load_roles", []), {
        "name": "academy-formgrader",
        "description": "May open the Formgrader (every trainer group; admins may anyway)",
        "scopes": ["access:services!service=formgrader"],
        "groups": list(ws["trainer_groups"]),
    }]


def update_spawn_queue(c: Config, cfg: dict) -> None:
    """The fair start queue (academy.spawners.queue) and the hub's own event-loop stall log."""
    queue = cfg["spawn_queue"]
    section = c[spawner_section(cfg)]
    section.start_concurrency = queue["concurrency"]
    section.queue_wait_limit = float(queue["wait_limit"])
    c.PeriodicMetricsCollector.event_loop_interval_log_threshold = float(queue["stall_log_threshold"])
    if cfg["backend"] == "local":
        # local.start_timeout is "how long a server may take to start": also the wait until it answers
        # (JupyterHub's http_timeout), where a local start spends its CPU when a whole class starts.
        c.AcademyLocalSpawner.http_timeout = cfg["local"]["start_timeout"]


def update_load_test(c: Config, cfg: dict) -> None:
    """Load-test mode: shared-password logins on loopback only, a load-client token, no spawn form."""
    if not cfg["load_test"]["enabled"]:
        return
    from academy import loadtest

    c.JupyterHub.authenticator_class = "academy.loadtest.LoadTestAuthenticator"
    a = c.LoadTestAuthenticator
    a.password_file = state_path(cfg, loadtest.PASSWORD_FILE)
    a.allow_all = True
    a.admin_users = set()  # admins would need a second (admin) password; the load client uses its token
    # Without a form a spawn carries no options, and the picker then gives the default profile.
    c[spawner_section(cfg)].options_form = ""
    if cfg.get("_load_client_token"):
        services = c.JupyterHub.services if "services" in c.JupyterHub else []
        c.JupyterHub.services = [*services, {"name": loadtest.SERVICE, "api_token": cfg["_load_client_token"]}]
        roles = c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else []
        c.JupyterHub.load_roles = [*roles, {
            "name": loadtest.SERVICE,
            "scopes": ["list:users", "read:users", "read:servers", "delete:servers", "read:metrics"],
            "services": [loadtest.SERVICE],
        }]


def update_lab(c: Config, cfg: dict) -> None:
    """Learner-side JupyterLab: help links, welcome notebook and walltime settings reach each server as
    ACADEMY_* variables (read by the ``academy.lab`` server extension); the hub pages say why a server ended."""
    lab = cfg["lab"]
    target = cfg["curriculum"]["target"]
    env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
    env.update({
        "ACADEMY_HELP_URL": lab["help_url"],
        "ACADEMY_HELP_EMAIL": lab["help_email"],
        "ACADEMY_ASK_TRAINER_URL": lab["ask_trainer_url"],
        "ACADEMY_CURRICULUM": target,
        "ACADEMY_WELCOME": f"{target}/{lab['welcome']}" if lab["welcome"] else "",
        "ACADEMY_WALLTIME_RECHECK": str(lab["walltime_recheck_seconds"]),
    })
    c.Spawner.environment = env
    if cfg["backend"] == "local":
        c.AcademyLocalSpawner.walltime_hour_seconds = float(cfg["local"]["walltime_hour_seconds"])
    from academy.spawners.slurm.messages import last_stop_message

    # Both backends store why a server ended (walltime, cancelled job) for hub/templates to show.
    c.JupyterHub.template_vars.update({"academy_last_stop": last_stop_message})


UPDATERS = [
    update_hub,
    update_proxy,
    update_auth,
    update_groups,
    update_spawner,
    update_local,
    update_slurm,
    update_slurm_accounting,
    update_culler,
    update_envs,
    update_formgrader,
    update_workshops,
    update_learner_api,
    update_spawn_queue,
    update_load_test,
    update_lab,
    update_trainer_access,
    update_team_folders,
    update_course,
]


def apply_config(c: Config, cfg: dict) -> Config:
    """Run every updater in order; the result is what ``jupyterhub_config.py`` hands to the hub."""
    for update in UPDATERS:
        update(c, cfg)
    return c
