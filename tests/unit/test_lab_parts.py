"""The pure parts of walltime and More time: squeue's end, the session clock, the hub's rule and its input checks."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest
from tornado import web
from traitlets.config import Config

from academy import configurer
from academy.lab.clock import SessionClock, parse_squeue_end
from academy.profiles import Profile
from academy.siteconfig import build_config
from academy.spawners.options import SpawnRequest
from academy.spawners.walltime import WalltimeMixin, WalltimeRefused
from academy.spawners.walltime_api import parse_request
from academy.validation import ConfigError

PROFILE = Profile(slug="cpu", display_name="CPU", description="d", cpus=1, memory="1G", default_hours=1, max_hours=3)


class Picker:
    """Stands in for ProfilePickerMixin under the mixin (what apply_spawn_request reaches)."""

    environment: dict = {}

    def apply_spawn_request(self, request):
        pass

    def get_state(self):
        return {}


class Spawner(WalltimeMixin, Picker):
    log = logging.getLogger("test")
    user_options: dict = {}

    class user:  # noqa: N801
        name = "ann"

    async def apply_walltime(self, total_hours):
        self.applied = total_hours
        return 1000.0 + total_hours


def test_squeue_end_is_read_as_local_time_and_unknown_is_none():
    """Is squeue's %e read as the local time it is, and are N/A and Unknown no end at all?"""
    assert parse_squeue_end("2026-12-02T01:13:36\n") == datetime(2026, 12, 2, 1, 13, 36).timestamp()
    assert parse_squeue_end("N/A") is None and parse_squeue_end("Unknown") is None and parse_squeue_end("") is None


def test_local_clock_uses_the_hub_end_and_only_a_hub_started_server_can_extend():
    """Does a local server take its end from ACADEMY_WALLTIME_END, and offer More time only when the hub is there to ask?"""
    env = {"ACADEMY_WALLTIME_END": "2000000000", "ACADEMY_WALLTIME_HOURS": "1", "ACADEMY_WALLTIME_MAX_HOURS": "3"}
    alone = asyncio.run(SessionClock(env, 180).walltime())
    assert (alone.end, alone.hours, alone.max_hours, alone.source, alone.extendable) == (2e9, 1, 3, "local", False)
    hubbed = SessionClock({**env, "JUPYTERHUB_API_URL": "http://hub/hub/api"}, 180).current()
    assert hubbed.extendable is True
    assert SessionClock({}, 180).current().source == "none"


def test_more_time_stops_at_the_profile_maximum_with_a_clear_message():
    """Does More time add hours up to the profile's maximum, then refuse saying how much is left?"""
    s = Spawner()
    s.apply_spawn_request(SpawnRequest(profile=PROFILE, hours=1))
    s.spawn_request = SpawnRequest(profile=PROFILE, hours=1)
    assert s.environment["ACADEMY_WALLTIME_MAX_HOURS"] == "3"
    assert asyncio.run(s.extend_walltime(1)) == {"hours": 2, "max_hours": 3, "end": 1002.0}
    with pytest.raises(WalltimeRefused) as refused:
        asyncio.run(s.extend_walltime(2))
    assert refused.value.status == 400 and "at most 3 h" in refused.value.message and "at most 1 more" in refused.value.message
    assert s.walltime_hours == 2 and s.applied == 2
    assert s.get_state()["walltime_hours"] == 2


@pytest.mark.parametrize("body", [b"", b"[]", b'{"hours": true}', b'{"hours": "1"}', b'{"hours": 0}',
                                  b'{"hours": 169}', b'{"hours": 1, "job_id": "1; rm -rf /"}', b"{hours: 1}"])
def test_the_hub_accepts_only_a_whole_number_of_hours(body):
    """Is anything but {"hours": 1..168} refused before it reaches Slurm?"""
    with pytest.raises(web.HTTPError) as err:
        parse_request(body)
    assert err.value.status_code == 400


def test_lab_settings_reach_every_server_and_the_hub_pages():
    """Do the help links, welcome notebook and recheck interval reach servers as ACADEMY_* variables, next to
    JUPYTER_CONFIG_PATH, and does the local backend get the (test-only) hour length?"""
    cfg = build_config({"lab": {"help_url": "https://help.example.org", "help_email": "h@example.org"}}, "t")
    c = configurer.apply_config(Config(), cfg)
    env = c.Spawner.environment
    assert env["ACADEMY_HELP_URL"] == "https://help.example.org" and env["ACADEMY_HELP_EMAIL"] == "h@example.org"
    assert env["ACADEMY_WELCOME"] == "ai-factory-academy/00_welcome.ipynb"
    assert env["ACADEMY_WALLTIME_RECHECK"] == "180" and "JUPYTER_CONFIG_PATH" in env
    assert c.AcademyLocalSpawner.walltime_hour_seconds == 3600.0
    assert callable(c.JupyterHub.template_vars["academy_last_stop"])


@pytest.mark.parametrize("lab", [{"help_url": "javascript:alert(1)"}, {"help_email": "a b@c"},
                                 {"walltime_recheck_seconds": 1}, {"welcome": "../../etc/passwd x"}, {"color": "red"}])
def test_bad_lab_settings_are_refused_naming_the_key(lab):
    """Is a script URL, a bad address, a too-eager recheck or an unknown key refused at load, naming lab.*?"""
    with pytest.raises(ConfigError, match="lab"):
        build_config({"lab": lab}, "t")
