"""Pre-flight checks shared by ``academy up`` (refuse to start) and ``academy doctor`` (report)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from academy.probes import find_proxy, port_in_use


@dataclass(frozen=True)
class DoctorCheck:
    """One line of the doctor's table."""

    name: str
    ok: bool
    detail: str
    warning: bool = False  # ok, but something the operator should know (shown as "warn")


def check_proxy(cfg: dict) -> DoctorCheck:
    path = find_proxy(cfg)
    if path:
        return DoctorCheck("proxy", True, path)
    return DoctorCheck("proxy", False, "configurable-http-proxy not found: run `make install` (npm install) or set hub.proxy_cmd")


def check_port(cfg: dict) -> DoctorCheck:
    """Free, or held by this site's own running hub (fine); held by anything else fails, naming it."""
    from academy.port_holder import holder

    hub = cfg["hub"]
    problem = port_in_use(hub["ip"], hub["port"])
    if problem is None:
        return DoctorCheck("port", True, f"{hub['ip']}:{hub['port']} is free")
    owner = holder(hub["port"])
    if owner is None:  # not a listener (e.g. an address this machine does not have): the bind error says it
        return DoctorCheck("port", False, problem)
    if owner.works_in(hub["state_dir"]):
        return DoctorCheck("port", True, f"{hub['ip']}:{hub['port']} is this site's running hub ({owner.describe()})")
    return DoctorCheck("port", False, f"port {hub['port']} on {hub['ip']} is already in use by {owner.describe()}, "
                                      "not by this site's hub: stop it, or choose another port (--port)")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_state_dir(cfg: dict) -> DoctorCheck:
    """Writable (or creatable) and, when it exists, not readable by others."""
    state = Path(cfg["hub"]["state_dir"])
    if state.exists() and not state.is_dir():
        return DoctorCheck("state dir", False, f"{state} exists but is not a directory")
    anchor = state if state.exists() else _nearest_existing(state.parent)
    if not anchor.is_dir():
        return DoctorCheck("state dir", False, f"{state}: {anchor} is not a directory")
    if not os.access(anchor, os.W_OK | os.X_OK):
        return DoctorCheck("state dir", False, f"{state} is not writable by this user ({anchor} denies write)")
    if state.exists():
        mode = state.stat().st_mode & 0o777
        if mode & 0o066:
            return DoctorCheck("state dir", False, f"{state} is readable or writable by others (mode {mode:o}); chmod 700 it")
        secret = state / "jupyterhub_cookie_secret"
        if secret.exists() and secret.stat().st_mode & 0o077:
            return DoctorCheck("state dir", False, f"{secret} must be mode 600")
        return DoctorCheck("state dir", True, f"{state} (mode {mode:o})")
    return DoctorCheck("state dir", True, f"{state} will be created")


def check_profiles(cfg: dict) -> DoctorCheck:
    from academy.profiles import load_profiles
    from academy.validation import ConfigError

    try:
        profiles = load_profiles(Path(cfg["profiles_file"]))
    except ConfigError as exc:
        return DoctorCheck("profiles", False, str(exc))
    return DoctorCheck("profiles", True, f"{len(profiles)} profiles: {', '.join(p.slug for p in profiles)}")


def check_profile_memory(cfg: dict) -> DoctorCheck:
    """Local backend: profiles asking more memory than this machine has (their servers get what it has)."""
    from academy.profiles import load_profiles
    from academy.spawners.local import cgroups
    from academy.validation import ConfigError

    if cfg["backend"] != "local":
        return DoctorCheck("profile memory", True, "Slurm allocates memory on the nodes")
    try:
        profiles = load_profiles(Path(cfg["profiles_file"]))
    except ConfigError:
        return DoctorCheck("profile memory", True, "see profiles")
    machine = cgroups.machine_memory()
    over = [f"{p.slug} ({p.memory})" for p in profiles if cgroups.parse_memory(p.memory) > machine]
    if over:
        return DoctorCheck("profile memory", True, f"this machine has {cgroups.gib(machine)}; capped at that: "
                           f"{', '.join(over)}", warning=True)
    return DoctorCheck("profile memory", True, f"every profile fits in this machine's {cgroups.gib(machine)}")


def check_profile_cores(cfg: dict) -> DoctorCheck:
    """Local backend: profiles asking more cores than this machine has (their quota is capped at what it has)."""
    from academy.profiles import load_profiles
    from academy.spawners.local import cgroups
    from academy.validation import ConfigError

    if cfg["backend"] != "local":
        return DoctorCheck("profile cores", True, "Slurm allocates cores on the nodes")
    try:
        profiles = load_profiles(Path(cfg["profiles_file"]))
    except ConfigError:
        return DoctorCheck("profile cores", True, "see profiles")
    cores = cgroups.machine_cpus()
    over = [f"{p.slug} ({p.cpus})" for p in profiles if p.cpus > cores]
    if over:
        return DoctorCheck("profile cores", True, f"this machine has {cores} cores; capped at that: {', '.join(over)}",
                           warning=True)
    return DoctorCheck("profile cores", True, f"every profile fits in this machine's {cores} cores")


def check_curriculum(cfg: dict) -> DoctorCheck:
    source = Path(cfg["curriculum"]["source"])
    if not source.is_dir():
        return DoctorCheck("curriculum", False, f"{source} is not a directory")
    count = len(list(source.glob("*.ipynb")))
    return DoctorCheck("curriculum", True, f"{count} notebooks in {source}")


def untraversable_ancestor(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users cannot enter, if any."""
    path = Path(path).resolve()
    for parent in [*reversed(path.parents), path]:
        if parent.exists() and parent.is_dir() and not parent.stat().st_mode & 0o001:
            return parent
    return None


def check_user_reachable(cfg: dict) -> DoctorCheck:
    """Servers run as per-user accounts (local backend as root, and Slurm jobs): they must reach
    the Python environment, the curriculum and (local) their homes."""
    import os
    import sys

    if cfg["backend"] == "local" and os.geteuid() != 0:
        return DoctorCheck("user access", True, "servers run as this user; nothing to share")
    paths = [Path(sys.prefix), Path(cfg["curriculum"]["source"])]
    if cfg["backend"] == "local":
        # The state dir and default homes are ours: `academy up` sets their modes itself.
        homes = cfg["local"]["homes_dir"]
        paths.append(Path(homes).parent if homes else Path(cfg["hub"]["state_dir"]).parent)
    for path in paths:
        blocker = untraversable_ancestor(path)
        if blocker is not None:
            return DoctorCheck(
                "user access", False,
                f"{blocker} is closed to other users (mode {blocker.stat().st_mode & 0o777:o}), so learner "
                f"accounts cannot reach {path}; run `chmod o+x {blocker}` or move the project",
            )
    return DoctorCheck("user access", True, "environment, curriculum and homes are reachable by learner accounts")
