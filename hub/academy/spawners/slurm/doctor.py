"""``academy doctor`` checks for the Slurm backend: is Slurm answering, and can jobs run our environment?"""
from __future__ import annotations

import os
import pwd
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

from academy.doctor_checks import DoctorCheck


def _run(argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None


def check_sinfo() -> tuple[DoctorCheck, set[str]]:
    """The controller answers ``sinfo``; returns the partitions it knows."""
    if not shutil.which("sinfo"):
        return DoctorCheck("slurm", False, "sinfo not found: install the Slurm client (apt-get install slurm-client)"), set()
    proc = _run(["sinfo", "--noheader", "--format=%P|%a|%D"])
    if proc is None:
        return DoctorCheck("slurm", False, "sinfo did not answer within 20 s: is slurmctld reachable?"), set()
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        hint = " (no slurm.conf found: set SLURM_CONF or install /etc/slurm/slurm.conf)" if "configless" in proc.stderr \
            or "DNS SRV" in proc.stderr or "configuration source" in proc.stderr else ""
        return DoctorCheck("slurm", False, f"sinfo failed: {last}{hint}"), set()
    partitions = {}
    for line in proc.stdout.splitlines():
        name, avail, nodes = (line.split("|") + ["", ""])[:3]
        partitions[name.rstrip("*")] = f"{name.rstrip('*')} ({avail}, {nodes} nodes)"
    return DoctorCheck("slurm", True, "sinfo answers: " + ", ".join(partitions.values())), set(partitions)


def check_partitions(cfg: dict, known: set[str]) -> DoctorCheck:
    from academy.profiles import load_profiles
    from academy.validation import ConfigError

    try:
        profiles = load_profiles(Path(cfg["profiles_file"]))
    except ConfigError as exc:
        return DoctorCheck("slurm partitions", False, str(exc))
    missing = sorted({f"{p.slug}: {p.partition}" for p in profiles if p.partition and p.partition not in known})
    if missing:
        return DoctorCheck("slurm partitions", False, "profiles name partitions Slurm does not have: " + "; ".join(missing))
    return DoctorCheck("slurm partitions", True, "every profile's partition exists")


def _others_can_use(path: Path) -> str | None:
    """The first directory or file on the way to ``path`` that other users cannot enter or read."""
    for part in [*reversed(path.parents), path]:
        try:
            mode = part.stat().st_mode
        except OSError as exc:
            return f"{part}: {exc.strerror}"
        need = stat.S_IXOTH if part != path else stat.S_IROTH | stat.S_IXOTH
        if mode & need != need:
            return str(part)
    return None


def check_python_env(cfg: dict) -> DoctorCheck:
    env = Path(cfg["slurm"]["python_env"])
    python = env / "bin" / "python"
    for tool in ("python", "jupyterhub-singleuser", "batchspawner-singleuser"):
        if not os.access(env / "bin" / tool, os.X_OK):
            return DoctorCheck("python_env", False, f"{env / 'bin' / tool} is missing or not executable")
    blocked = _others_can_use(python.resolve())
    if blocked:
        return DoctorCheck("python_env", False, f"{blocked} is closed to other users; every learner's job runs {python}")
    proc = _run([str(python), "-c", "import jupyterhub, batchspawner, jupyterlab; print(jupyterhub.__version__)"], timeout=90)
    if proc is None or proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["?"])[-1] if proc else "timed out"
        return DoctorCheck("python_env", False, f"{python} cannot import the single-user server: {detail}")
    return DoctorCheck("python_env", True, f"{env} (jupyterhub {proc.stdout.strip()}), readable by all users")


def check_exec_prefix(cfg: dict) -> DoctorCheck:
    prefix = cfg["slurm"]["exec_prefix"]
    program = shlex.split(prefix)[0] if prefix.strip() else ""
    if program and not shutil.which(program):
        return DoctorCheck("exec_prefix", False, f"{program} (from slurm.exec_prefix) is not installed")
    if program in ("runuser", "su") and os.geteuid() != 0:
        return DoctorCheck("exec_prefix", False, f"{program} needs the hub to run as root; use 'sudo -E -u {{username}}' with a sudoers rule")
    return DoctorCheck("exec_prefix", True, prefix)


def check_batch_script(cfg: dict) -> DoctorCheck:
    """Render the template once with the first profile, so a template error shows here, not at a learner's spawn."""
    from academy.profiles import load_profiles
    from academy.spawners.slurm.script import ScriptError, build_context, render
    from academy.validation import ConfigError

    path = cfg["slurm"]["batch_script"]
    try:
        profile = load_profiles(Path(cfg["profiles_file"]))[0]
        env = cfg["slurm"]["python_env"]
        ctx = build_context(username="doctor", home="/home/doctor", job_name="academy-doctor", profile=profile,
                            hours=profile.default_hours, python_env=env, command=[f"{env}/bin/jupyterhub-singleuser"],
                            export=["JUPYTERHUB_API_TOKEN"], log_dir="/home/doctor/.academy/logs")
        script = render(path, ctx)
    except (ScriptError, ConfigError) as exc:
        return DoctorCheck("batch script", False, str(exc))
    lines = sum(1 for line in script.splitlines() if line.startswith("#SBATCH"))
    return DoctorCheck("batch script", True, f"{path} renders ({lines} #SBATCH lines for profile {profile.slug})")


def check_hub_address(cfg: dict) -> DoctorCheck:
    """Jobs call the hub's API from the compute nodes, before and after hub restarts."""
    if not cfg["hub"]["hub_port"]:
        return DoctorCheck("hub address", False, "set hub.hub_port: running jobs keep the hub API address they "
                                                 "started with, so a hub restart on another port strands them")
    if not cfg["slurm"].get("hub_connect_url"):
        return DoctorCheck("hub address", True, f"jobs reach the hub at 127.0.0.1:{cfg['hub']['hub_port']}; fine for "
                                                "a one-machine cluster, set slurm.hub_connect_url for real compute nodes")
    return DoctorCheck("hub address", True, f"jobs reach the hub at {cfg['slurm']['hub_connect_url']}")


def config_value(config_text: str, key: str) -> str | None:
    """One value from ``scontrol show config`` ("PrivateData             = jobs,usage")."""
    for line in config_text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip().lower() == key.lower():
            return value.strip()
    return None


def check_private_data(config_text: str | None, hub_user: str) -> DoctorCheck:
    """Learners must not see each other's jobs, and the hub (``hub_user``) must still see them all.

    Without PrivateData=jobs, ``squeue``/``scontrol show job`` show every learner every job with its
    working directory, output path and command.  With it, only root, SlurmUser (and Slurm operators)
    see others' jobs, which the hub's one ``squeue`` for all servers needs.
    """
    name = "slurm privacy"
    if config_text is None:
        return DoctorCheck(name, True, "`scontrol show config` did not answer; PrivateData unknown", warning=True)
    private = {v.strip().lower() for v in (config_value(config_text, "PrivateData") or "none").split(",")}
    if "jobs" not in private:
        return DoctorCheck(name, True, f"PrivateData={','.join(sorted(private))}: every learner sees every job's "
                                       "working directory and output path; set PrivateData=jobs,usage,users in "
                                       "slurm.conf (README, Production notes)", warning=True)
    slurm_user = (config_value(config_text, "SlurmUser") or "").split("(")[0]
    if hub_user not in ("root", slurm_user):
        return DoctorCheck(name, True, f"PrivateData={','.join(sorted(private))} hides learners' jobs from "
                                       f"{hub_user}; the hub must run as root or {slurm_user or 'SlurmUser'} "
                                       "(or a Slurm operator) to follow them", warning=True)
    return DoctorCheck(name, True, f"PrivateData={','.join(sorted(private))}: learners see only their own jobs")


def _this_user() -> str:
    """Doctor runs as the hub's user, whose one squeue must see every learner's job."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers): Slurm names it by number
        return str(os.geteuid())


def check_slurm(cfg: dict) -> list[DoctorCheck]:
    """All Slurm checks for ``academy doctor``, in the order a fix would go."""
    sinfo, partitions = check_sinfo()
    checks = [sinfo]
    if sinfo.ok:
        checks.append(check_partitions(cfg, partitions))
    checks += [check_python_env(cfg), check_exec_prefix(cfg), check_batch_script(cfg), check_hub_address(cfg)]
    if sinfo.ok:
        config = _run(["scontrol", "show", "config"])
        checks.append(check_private_data(config.stdout if config and config.returncode == 0 else None, _this_user()))
    return checks
