"""Profiles and spawn options: only a known profile and hours within bounds get through."""
from __future__ import annotations

import logging
import sys

import pytest
import yaml

from academy.probes import PROJECT_ROOT
from academy.profiles import load_profiles, parse_profiles
from academy.spawners.options import OptionsError, parse_user_options, preferred_profile
from academy.spawners.picker import SpawnRefused, _QuietRefusals
from academy.validation import ConfigError

PROFILES = load_profiles(PROJECT_ROOT / "spawner_config" / "profiles.yaml")


def test_shipped_profiles_cover_an_h100_centre():
    """Do the shipped profiles include CPU-only, a MIG slice, 1 GPU, a full node and a workshop reservation?"""
    by_slug = {p.slug: p for p in PROFILES}
    assert by_slug["cpu"].gpus is None
    assert by_slug["mig-slice"].gpus.mig and by_slug["mig-slice"].gpus.gres == "gpu:1g.18gb:1"
    assert by_slug["h100-1"].gpus.count == 1
    assert by_slug["h100-4"].gpus.count == 4 and by_slug["h100-4"].groups
    assert by_slug["workshop"].reservation and by_slug["workshop"].groups == {"workshop"}


def test_profile_file_errors_name_the_entry(tmp_path):
    """Do duplicate slugs, a bad partition and default > max hours fail naming the entry?"""
    raw = yaml.safe_load((PROJECT_ROOT / "spawner_config" / "profiles.yaml").read_text())
    dup = {"profiles": [raw["profiles"][0], raw["profiles"][0]]}
    with pytest.raises(ConfigError, match=r"profiles\[1\].slug: duplicate slug 'cpu'"):
        parse_profiles(dup, "p.yaml")
    evil = {"profiles": [{**raw["profiles"][0], "partition": "cpu\n#SBATCH --uid=0"}]}
    with pytest.raises(ConfigError, match=r"profiles\[0\].partition"):
        parse_profiles(evil, "p.yaml")
    long = {"profiles": [{**raw["profiles"][0], "hours": {"default": 9, "max": 8}}]}
    with pytest.raises(ConfigError, match=r"profiles\[0\].hours.default: 9 exceeds"):
        parse_profiles(long, "p.yaml")
    missing = {"profiles": [{k: v for k, v in raw["profiles"][0].items() if k != "memory"}]}
    with pytest.raises(ConfigError, match=r"profiles\[0\].memory: required key is missing"):
        parse_profiles(missing, "p.yaml")


def test_form_and_api_shapes_both_parse():
    """Does a form post (lists of strings) and an API post (scalars) give the same request?"""
    form = parse_user_options({"profile": ["cpu"], "hours": ["3"]}, PROFILES, set())
    api = parse_user_options({"profile": "cpu", "hours": 3}, PROFILES, set())
    assert form == api and form.hours == 3 and form.profile.slug == "cpu"


def test_empty_request_gets_first_allowed_profile_with_default_hours():
    """Does a bare POST get what the form preselects?"""
    req = parse_user_options({}, PROFILES, set())
    assert req.profile.slug == "cpu" and req.hours == PROFILES[0].default_hours
    assert parse_user_options(None, PROFILES, set()) == req


@pytest.mark.parametrize(
    "options, message",
    [
        ({"profile": "cpu", "partition": "gpu"}, "unknown option(s): partition"),
        ({"profile": "cpu", "req_prologue": "curl evil|sh"}, "unknown option(s): req_prologue"),
        ({"profile": "gpu-for-free"}, "unknown profile"),
        ({"profile": 7}, "must be a profile name"),
        ({"profile": "cpu", "hours": 0}, "allows 1 to 8 hours, not 0"),
        ({"profile": "cpu", "hours": 9}, "allows 1 to 8 hours, not 9"),
        ({"profile": "cpu", "hours": "1.5"}, "whole number"),
        ({"profile": "cpu", "hours": "2\n#SBATCH --exclusive"}, "whole number"),
        ({"profile": "cpu", "hours": True}, "whole number"),
        ({"profile": "cpu", "hours": "３"}, "whole number"),
        ({"profile": "cpu", "hours": "٣"}, "whole number"),
        ({"profile": "cpu", "hours": "²"}, "whole number"),
        ({"profile": "cpu", "hours": ["1", "2"]}, "exactly one value"),
        ({"profile": "workshop"}, "limited to the groups workshop"),
    ],
)
def test_crafted_options_are_refused(options, message):
    """Is every crafted field refused with a message that says which one and why?"""
    with pytest.raises(OptionsError) as err:
        parse_user_options(options, PROFILES, set())
    assert message in str(err.value)


def test_group_members_and_admins_may_use_restricted_profiles():
    """Do workshop members (and admins) get the workshop profile that others are refused?"""
    assert parse_user_options({"profile": "workshop"}, PROFILES, {"workshop"}).profile.slug == "workshop"
    assert parse_user_options({"profile": "h100-4"}, PROFILES, set(), is_admin=True).profile.slug == "h100-4"


@pytest.mark.parametrize(
    "groups, admin, slug",
    [
        (set(), False, "cpu"),
        ({"workshop"}, False, "workshop"),
        ({"sme"}, False, "h100-4"),
        ({"researchers", "workshop"}, False, "workshop"),
        ({"unrelated"}, False, "cpu"),
        (set(), True, "cpu"),
    ],
)
def test_group_members_get_their_groups_profile_by_default(groups, admin, slug):
    """Does an empty request (what the form preselects) get the most specific profile made for the user's groups?"""
    allowed = [p for p in PROFILES if p.allows(groups, admin)]
    assert preferred_profile(allowed, groups).slug == slug
    assert parse_user_options({}, PROFILES, groups, admin).profile.slug == slug


def _record(exc: BaseException, level: int = logging.ERROR) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        return logging.LogRecord("JupyterHub", level, __file__, 1, "Failed to spawn single-user server with form",
                                 None, sys.exc_info())


def test_a_refused_request_is_logged_as_a_warning_without_traceback_and_a_bug_is_not():
    """Does JupyterHub's ERROR-with-traceback for a refused request become a one-line WARNING, while a real fault keeps both?"""
    quiet = _QuietRefusals()
    refused = _record(SpawnRefused("unknown option(s): cmd"))
    assert quiet.filter(refused) and refused.levelname == "WARNING" and refused.exc_info is None
    assert "Traceback" not in logging.Formatter().format(refused)
    # JupyterHub's REST path: an ERROR line naming the error, without exc_info, inside its except block.
    try:
        raise SpawnRefused("profile: unknown profile 'x'")
    except SpawnRefused as exc:
        rest = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, "Error starting ann's server: %s", (exc,), None)
        other = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, "Failed to clean up ann's server", None, None)
        assert quiet.filter(rest) and quiet.filter(other)
    assert rest.levelname == "WARNING" and other.levelname == "ERROR", "only the line about the refusal is lowered"
    bug = _record(KeyError("profile"))
    assert quiet.filter(bug) and bug.levelname == "ERROR" and bug.exc_info is not None
    assert "Traceback" in logging.Formatter().format(bug)
