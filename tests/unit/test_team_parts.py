"""Team folders' parts without a hub: the site config, the links made in a home, the disk-use walk."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from academy.configurer import apply_config
from academy.siteconfig import build_config
from academy.teams import folders
from academy.teams.hook import TeamFolderHook, update_team_folders
from academy.teams.links import sync_links
from academy.validation import ConfigError


@pytest.mark.parametrize("name", ["../etc", "a b", "x;rm -rf", "Team", "a/b", "$(id)", "-x", "a" * 24, ""])
def test_a_team_name_with_path_or_shell_characters_is_refused_naming_its_key(name):
    """Is a hub group name that could reach a path or a command refused, with the key path in the message?"""
    with pytest.raises(ConfigError, match=r"team_folders\.groups\[0\]"):
        build_config({"team_folders": {"groups": [name]}})
    with pytest.raises(folders.TeamError, match="team_folders.groups"):
        folders.team(name, "/srv/teams")


def test_unknown_team_folder_keys_and_bad_prefixes_are_refused():
    """Does a typo under team_folders, or a prefix that is no Unix group name, stop the config with its path?"""
    with pytest.raises(ConfigError, match=r"team_folders\.grups: unknown key"):
        build_config({"team_folders": {"grups": ["ml"]}})
    with pytest.raises(ConfigError, match=r"team_folders\.unix_group_prefix"):
        build_config({"team_folders": {"groups": ["ml"], "unix_group_prefix": "x/"}})


def test_without_groups_nothing_is_configured():
    """Do the defaults leave the spawners and the servers' environment as they were?"""
    c = apply_config(Config(), build_config({}))
    assert "pre_spawn_hook" not in c.Spawner
    assert not any(k.startswith("ACADEMY_TEAMS") for k in c.Spawner.environment)


def test_listed_groups_install_the_hook_and_tell_servers_where_the_folders_are(tmp_path):
    """Does update_team_folders set the pre-spawn hook and the servers' ACADEMY_TEAMS_* on a bare Config()?"""
    cfg = build_config({"hub": {"state_dir": str(tmp_path)},
                        "team_folders": {"groups": ["ml-team", "vision"], "warn_gib": 1.5}})
    c = Config()
    update_team_folders(c, cfg)
    hook = c.Spawner.pre_spawn_hook
    assert isinstance(hook, TeamFolderHook)
    assert [t.path for t in hook.settings.teams()] == [tmp_path / "teams" / "ml-team", tmp_path / "teams" / "vision"]
    assert [t.unix_group for t in hook.settings.teams()] == ["acadteam-ml-team", "acadteam-vision"]
    env = c.Spawner.environment
    assert env["ACADEMY_TEAMS_ROOT"] == str(tmp_path / "teams")
    assert env["ACADEMY_TEAMS_WARN_BYTES"] == str(int(1.5 * 2**30))


def test_a_hook_configured_before_still_runs_after_ours():
    """Does another area's pre-spawn hook survive, run after the team step?"""
    ran = []
    c = Config()
    c.Spawner.pre_spawn_hook = lambda spawner: ran.append(spawner)
    update_team_folders(c, build_config({"team_folders": {"groups": ["ml"]}}))
    assert c.Spawner.pre_spawn_hook.then is not None
    c.Spawner.pre_spawn_hook.then("s")
    assert ran == ["s"]


def test_slurm_needs_a_shared_root():
    """Is a Slurm site without team_folders.root refused (the hub's state dir is not on the nodes' filesystem)?"""
    cfg = build_config({"backend": "slurm", "slurm": {"hub_connect_url": ""}, "team_folders": {"groups": ["ml"]}})
    with pytest.raises(ConfigError, match=r"team_folders\.root: required with backend slurm"):
        update_team_folders(Config(), cfg)


def test_links_are_made_kept_and_only_our_own_removed(tmp_path):
    """Is ~/team-<group> made, kept on the next start, and removed only when it is exactly our link?"""
    home, team = tmp_path / "home", tmp_path / "teams" / "ml"
    home.mkdir()
    team.mkdir(parents=True)
    first = sync_links(home, {"ml": str(team)}, {})
    assert first.made == ["team-ml"] and os.readlink(home / "team-ml") == str(team)
    assert sync_links(home, {"ml": str(team)}, {}).kept == ["team-ml"]
    (home / "team-old").symlink_to("/somewhere/else")
    left = sync_links(home, {}, {"ml": str(team), "old": str(tmp_path / "teams" / "old")})
    assert left.removed == ["team-ml"] and not (home / "team-ml").exists()
    assert os.readlink(home / "team-old") == "/somewhere/else", "a link that is not ours must stay"


def test_something_planted_at_the_link_path_is_reported_and_left_alone(tmp_path):
    """Is a file, a folder or a foreign link at ~/team-<group> left untouched and reported, never written through?"""
    home, team, victim = tmp_path / "home", tmp_path / "teams" / "ml", tmp_path / "victim"
    for d in (home, team, victim):
        d.mkdir(parents=True)
    (home / "team-ml").symlink_to(victim)
    (home / "team-cv").write_text("mine")
    (home / "team-nlp").mkdir()
    report = sync_links(home, {"ml": str(team), "cv": str(team), "nlp": str(team)}, {})
    assert report.made == [] and len(report.refused) == 3
    assert "a link to" in report.refused[1] and str(victim) in report.refused[1]
    assert os.readlink(home / "team-ml") == str(victim) and list(victim.iterdir()) == []
    assert (home / "team-cv").read_text() == "mine" and list((home / "team-nlp").iterdir()) == []


def test_measure_counts_blocks_once_and_reports_a_lower_bound_out_of_time(tmp_path):
    """Does the walk count a hard-linked file once, not follow symlinks, and say when its budget ran out?"""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(os.urandom(256 * 1024))
    os.link(tmp_path / "sub" / "a.bin", tmp_path / "b.bin")
    (tmp_path / "out").symlink_to("/usr")
    usage = folders.measure(tmp_path)
    assert usage.complete and usage.files == 2  # a.bin and the symlink entry; b.bin is a.bin again
    assert 256 * 1024 <= usage.bytes < 2 * 256 * 1024, usage
    assert not folders.measure(tmp_path, budget_seconds=-1).complete
    assert not folders.measure(tmp_path / "missing").complete, "what cannot be read is no measured zero"
    assert folders.human(3 * 2**30 // 2) == "1.5 GiB"


def test_the_servers_figures_come_from_its_own_groups_and_are_reused_until_the_refresh(tmp_path):
    """Does a server list only teams of its own Unix groups, and walk each folder again only after the refresh time?"""
    import asyncio
    import grp

    from academy.labtools.teams import TeamUsage

    mine = grp.getgrgid(os.getegid()).gr_name
    prefix, team = mine[:-1], mine[-1]  # this process's own group stands in for acadteam-<team>
    (tmp_path / team).mkdir()
    (tmp_path / "zz-not-mine").mkdir()
    (tmp_path / team / "a.bin").write_bytes(b"x" * 100_000)
    usage = TeamUsage(str(tmp_path), prefix, refresh=3600, warn_bytes=50_000)

    first = asyncio.run(usage.view())
    assert [r["group"] for r in first] == [team] and first[0]["warn"] and first[0]["files"] == 1
    (tmp_path / team / "b.bin").write_bytes(b"x" * 100_000)
    assert asyncio.run(usage.view())[0]["files"] == 1, "within the refresh time the cached walk is reused"
    usage.refresh = 0
    assert asyncio.run(usage.view())[0]["files"] == 2
