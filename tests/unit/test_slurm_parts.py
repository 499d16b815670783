"""The Slurm backend's pure parts, without Slurm: squeue/sinfo parsing, the batch script, the port endpoint, config."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from tornado import web
from traitlets.config import Config

from academy.configurer import update_slurm
from academy.profiles import load_profiles
from academy.siteconfig import build_config
from academy.spawners.slurm import port_api as slurm_api
from academy.spawners.options import OptionsError, parse_user_options
from academy.spawners.slurm.availability import describe, parse_sinfo
from academy.slurm.commands import user_command, unix_name
from academy.spawners.slurm.script import ScriptError, build_context, render
from academy.slurm.states import Phase, classify, parse_sacct_state, parse_squeue
from academy.validation import ConfigError

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "spawner_config" / "slurm.sh.j2"
PROFILES = {p.slug: p for p in load_profiles(REPO / "spawner_config" / "profiles.yaml")}


# -- squeue -------------------------------------------------------------------------------------
def test_squeue_lines_become_jobs_with_phase_reason_and_estimate():
    """Are squeue's fields (state, reason, node, estimated start) read into a job with the right phase?"""
    jobs, odd = parse_squeue(
        "17|PENDING|Resources|n/a|2026-11-26T14:05:00|2026-11-26T16:05:00\n"
        "18|RUNNING|None|gpu07|2026-11-26T10:00:00|2026-11-26T12:00:00\n"
    )
    assert not odd
    assert jobs["17"].phase is Phase.PENDING and jobs["17"].node == ""
    assert jobs["17"].start.hour == 14 and "Resources:" in jobs["17"].describe_reason()
    assert jobs["18"].phase is Phase.RUNNING and jobs["18"].node == "gpu07"


@pytest.mark.parametrize("state, phase", [
    ("PENDING", Phase.PENDING), ("CONFIGURING", Phase.PENDING), ("RUNNING", Phase.RUNNING),
    ("SUSPENDED", Phase.RUNNING), ("COMPLETING", Phase.ENDING), ("CANCELLED", Phase.ENDED),
    ("CANCELLED+", Phase.ENDED), ("TIMEOUT", Phase.ENDED), ("NODE_FAIL", Phase.ENDED),
    ("OUT_OF_MEMORY", Phase.ENDED), ("WARP_DRIVE", Phase.UNKNOWN), ("", Phase.UNKNOWN),
])
def test_states_are_classified_conservatively(state, phase):
    """Does only a terminal state mean 'ended', and an unknown word mean 'unknown' (never 'gone')?"""
    assert classify(state) is phase


def test_unrecognised_squeue_lines_are_reported_not_trusted():
    """Is a line that does not match our format set aside instead of being read as a job?"""
    jobs, odd = parse_squeue("slurm_load_jobs: garbage\n19|RUNNING|None|n1|N/A|N/A\n20|FLYING|x|n|N/A|N/A")
    assert list(jobs) == ["19"] and len(odd) == 2


def test_sacct_state_words():
    """Is 'CANCELLED by 1001' read as CANCELLED, and a blank answer as no state?"""
    assert parse_sacct_state("CANCELLED by 1001\n") == "CANCELLED"
    assert parse_sacct_state("") is None


# -- sinfo and the form's availability -----------------------------------------------------------
SINFO = (
    "gpu|gpu01|mixed|gpu:h100:4(S:0-1)|gpu:h100:3(IDX:0-2)|48/16/0/64|515000|300000|\n"
    "gpu|gpu02|drained|gpu:h100:4|gpu:h100:0(IDX:N/A)|0/64/0/64|515000|0|\n"
    "gpu-mig|mig01|idle|gpu:1g.18gb:14|gpu:1g.18gb:0(IDX:N/A)|0/64/0/64|515000|0|\n"
    "cpu|cpu01|allocated|(null)|(null)|64/0/0/64|256000|256000|\n"
)


def test_sinfo_becomes_free_gpus_per_profile():
    """Does the form say how many of a profile's GPUs are free, ignoring drained nodes, and when it would queue?"""
    nodes = parse_sinfo(SINFO)
    assert describe(PROFILES["h100-1"], nodes) == "1 of 4 h100 GPUs free"
    assert describe(PROFILES["h100-4"], nodes) == "1 of 4 h100 GPUs free · will queue"
    assert describe(PROFILES["mig-slice"], nodes) == "14 of 14 MIG slices free"
    assert describe(PROFILES["cpu"], nodes) == "0 idle cores · will queue"


# -- the batch script ---------------------------------------------------------------------------
def context(slug: str, hours: int = 2, **overrides):
    values = dict(username="ada", home="/home/ada", job_name="academy-ada", profile=PROFILES[slug], hours=hours,
                  python_env="/opt/academy/env", command=["/opt/academy/env/bin/jupyterhub-singleuser", "--debug"],
                  export=["JUPYTERHUB_API_TOKEN", "ACADEMY_PROFILE"], log_dir="/home/ada/.academy/logs",
                  curriculum_source="/opt/academy/notebooks", curriculum_target="ai-factory-academy",
                  jobrc=".academy/jobrc.sh")
    values.update(overrides)
    return build_context(**values)


def test_script_for_a_gpu_profile_asks_for_exactly_its_resources():
    """Does the H100 profile's script request its partition, GPU, cores, memory and walltime, and no reservation?"""
    script = render(TEMPLATE, context("h100-1", hours=3))
    assert re.search(r"^#SBATCH --partition=gpu$", script, re.M)
    assert re.search(r"^#SBATCH --gres=gpu:h100:1$", script, re.M)
    assert re.search(r"^#SBATCH --cpus-per-task=16$", script, re.M)
    assert re.search(r"^#SBATCH --mem=128G$", script, re.M)
    assert re.search(r"^#SBATCH --time=03:00:00$", script, re.M)
    assert "--reservation" not in script and "--qos" not in script
    assert re.search(r"^set -euo pipefail$", script, re.M)
    assert re.search(r"^export ACADEMY_WALLTIME_END=\$\(\( \$\(date \+%s\) \+ 10800 \)\)$", script, re.M)
    assert re.search(r"^exec /opt/academy/env/bin/jupyterhub-singleuser --debug$", script, re.M)


def test_script_for_the_workshop_profile_uses_its_reservation_and_cpu_profile_has_no_gres():
    """Are optional #SBATCH lines present exactly when the profile sets them?"""
    assert re.search(r"^#SBATCH --reservation=academy-workshop$", render(TEMPLATE, context("workshop", 1)), re.M)
    cpu = render(TEMPLATE, context("cpu"))
    assert "--gres" not in cpu and "--reservation" not in cpu
    sbatch = [line for line in cpu.splitlines() if line.startswith("#SBATCH")]
    assert all(" " not in line[len("#SBATCH "):] for line in sbatch), "an #SBATCH value with a space"


def test_script_never_contains_the_token_and_exports_only_names():
    """Does the token travel by environment (--export lists names), never in the script text?"""
    script = render(TEMPLATE, context("cpu"))
    assert re.search(r"^#SBATCH --export=ACADEMY_PROFILE,JUPYTERHUB_API_TOKEN$", script, re.M)
    assert "JUPYTERHUB_API_TOKEN=" not in script


@pytest.mark.parametrize("override, message", [
    ({"home": "/home/ada; rm -rf /"}, "home directory"),
    ({"python_env": "/opt/$(reboot)"}, "python_env"),
    ({"job_name": "a b"}, "job name"),
    ({"export": ["BAD-NAME"]}, "not exportable"),
    ({"jobrc": "../../etc/profile"}, "jobrc"),
    ({"hours": 9}, "outside 1..8"),
    ({"curriculum_target": "x\ny"}, "curriculum target"),
])
def test_values_a_shell_could_misread_are_refused(override, message):
    """Is every value that could break out of the script refused with a message naming it?"""
    with pytest.raises(ScriptError, match=message):
        context("cpu", **override)


def test_crafted_user_options_never_get_to_the_script():
    """Are extra keys and hostile values refused before a SpawnRequest (the script's only input) exists?"""
    profiles = list(PROFILES.values())
    for options in ({"profile": "cpu", "req_options": "--uid=0"}, {"profile": "cpu\n#SBATCH --uid=0"},
                    {"profile": "cpu", "hours": "2\n#SBATCH -p x"}, {"profile": "h100-4"}):
        with pytest.raises(OptionsError):
            parse_user_options(options, profiles, set())
    request = parse_user_options({"profile": "cpu", "hours": "2"}, profiles, set())
    script = render(TEMPLATE, context(request.profile.slug, request.hours))
    assert "req_options" not in script and "--uid" not in script


def test_exec_prefix_quotes_and_checks_the_user_name():
    """Can a user name never smuggle shell syntax into sbatch/scancel's command line?"""
    assert user_command("runuser -u {username} --", "ada", "scancel", "42") == "runuser -u ada -- scancel 42"
    assert user_command("sudo -E -u {username}", "ada", "tail", "--", "/home/ada/a b.log").endswith("'/home/ada/a b.log'")
    for bad in ("ada;id", "Ada", "a$(id)", "", "-rf"):
        with pytest.raises(ValueError):
            unix_name(bad)


# -- the port endpoint ----------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    b'{"port": 8888, "exec_prefix": "touch /tmp/x;"}', b'{"exec_prefix": "id"}', b'{"port": "8888"}',
    b'{"port": true}', b'{"port": 0}', b'{"port": 65536}', b'{"port": 8888.5}', b'[8888]', b'not json', b'',
])
def test_port_report_accepts_nothing_but_a_port(body):
    """Is every body other than {"port": <1..65535>} a 400?"""
    with pytest.raises(web.HTTPError) as err:
        slurm_api.parse_port_report(body)
    assert err.value.status_code == 400


def test_port_report_reads_a_valid_port():
    """Does a well-formed report give the port?"""
    assert slurm_api.parse_port_report(b'{"port": 43210}') == 43210


def test_stock_batchspawner_route_is_replaced_not_shadowed():
    """Is batchspawner's handler gone from JupyterHub's route table, with ours there exactly once?"""
    import batchspawner  # noqa: F401 (its import registers the stock handler)
    from batchspawner.api import BatchSpawnerAPIHandler
    from jupyterhub.apihandlers import default_handlers

    slurm_api.install()
    slurm_api.install()
    handlers = [h for route, h in default_handlers if route == slurm_api.ROUTE]
    assert handlers == [slurm_api.PortReportHandler]
    assert BatchSpawnerAPIHandler not in [h for _, h in default_handlers]


# -- site config -> JupyterHub config ------------------------------------------------------------
def test_update_slurm_sets_the_spawner_from_the_site_config():
    """Does update_slurm translate the slurm section onto a bare Config, and keep jobs across hub restarts?"""
    cfg = build_config({"backend": "slurm", "slurm": {"poll_interval": 3, "exec_prefix": "sudo -E -u {username}"}})
    c = Config()
    update_slurm(c, cfg)
    s = c.AcademySlurmSpawner
    assert s.query_interval == 3.0 and s.poll_interval == 3.0 and s.exec_prefix == "sudo -E -u {username}"
    assert s.batch_script_file.endswith("spawner_config/slurm.sh.j2") and s.python_env.startswith("/")
    assert c.JupyterHub.cleanup_servers is False
    template_vars = c.JupyterHub.template_vars.get_value({})
    assert callable(template_vars["academy_last_stop"])


def test_update_slurm_leaves_the_local_backend_alone():
    """Does the local backend's config stay free of Slurm settings?"""
    c = Config()
    update_slurm(c, build_config({"backend": "local"}))
    assert "AcademySlurmSpawner" not in c


def test_exec_prefix_without_the_user_is_refused():
    """Is an exec_prefix that would run every job as one account refused with its key path?"""
    with pytest.raises(ConfigError, match=r"slurm\.exec_prefix"):
        build_config({"backend": "slurm", "slurm": {"exec_prefix": "sudo -u svc"}})


# -- academy doctor -----------------------------------------------------------------------------------
def test_doctor_flags_a_hub_port_that_moves_and_a_broken_template(tmp_path):
    """Does doctor fail a hub that would change its API port on restart, and a template that cannot render?"""
    from academy.spawners.slurm.doctor import check_batch_script, check_hub_address

    cfg = build_config({"backend": "slurm"})
    moving = check_hub_address(cfg)
    assert not moving.ok and "hub.hub_port" in moving.detail
    assert check_hub_address(build_config({"backend": "slurm", "hub": {"hub_port": 8081}})).ok
    assert check_batch_script(cfg).ok
    broken = tmp_path / "broken.sh.j2"
    broken.write_text("#!/bin/bash\n{% if profile.gpus %}\n#SBATCH --gres={{ profile.gpus.gres }}\n")
    cfg["slurm"]["batch_script"] = str(broken)
    result = check_batch_script(cfg)
    assert not result.ok and "broken.sh.j2" in result.detail


def test_last_stop_message_template_variable():
    """Does the hub's template variable give the learner's stored reason, and nothing for visitors or services?"""
    from types import SimpleNamespace

    from academy.spawners.slurm.messages import last_stop_message

    learner = SimpleNamespace(spawner=SimpleNamespace(last_stop_message="Your previous server was cancelled."))
    assert last_stop_message(learner) == "Your previous server was cancelled."
    assert last_stop_message(None) == "" and last_stop_message(SimpleNamespace(name="a-service")) == ""
