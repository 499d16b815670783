"""The spawners' pre-spawn step for team folders, and ``update_team_folders(c, cfg)`` that installs it.

At every start, before the server's process or job exists: for each configured team the learner is a
member of (by hub group), the folder and its Unix group are made, the learner's account joins the group,
and ``~/team-<group>`` links to the folder; for each configured team they are not (or no longer) in,
the account leaves the group and our link goes. Supplementary groups are read when a process starts,
so a server that is running keeps the groups it started with until it stops (see the README).

As root with ``manage_unix_groups`` (local backend, a one-machine Slurm): groups and membership are in
this machine's ``/etc/group``. Without it (a Slurm site whose groups come from LDAP/sssd) the site
provides ``<prefix><group>`` and its members; the hub only makes the folder (as root) and the links.
A failing step is logged and the server still starts: a learner without a team link beats no server.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

from traitlets.config import Config

from academy.teams import folders
from academy.teams.links import LinkReport, sync_as

log = logging.getLogger("academy.teams")


@dataclass(frozen=True)
class TeamSettings:
    """The site config's ``team_folders``, resolved (``root`` absolute)."""

    root: str
    groups: tuple[str, ...]
    unix_group_prefix: str = "acadteam-"
    manage_unix_groups: bool = True
    usage_refresh_seconds: int = 300
    warn_gib: float = 0

    def teams(self) -> list[folders.Team]:
        return [folders.team(g, self.root, self.unix_group_prefix) for g in self.groups]


def settings_from(cfg: dict) -> TeamSettings | None:
    """The settings, or None when no team folders are configured."""
    tf = cfg["team_folders"]
    if not tf["groups"]:
        return None
    root = tf["root"] or os.path.join(cfg["hub"]["state_dir"], "teams")
    return TeamSettings(root, tuple(tf["groups"]), tf["unix_group_prefix"], tf["manage_unix_groups"],
                        tf["usage_refresh_seconds"], float(tf["warn_gib"]))


class TeamFolderHook:
    """``Spawner.pre_spawn_hook``: team folders, membership and links for the user about to start;
    then ``then`` (a hook configured before this one), so two areas' hooks both run."""

    def __init__(self, settings: TeamSettings, then=None) -> None:
        self.settings = settings
        self.then = then

    def __repr__(self) -> str:
        return f"TeamFolderHook({self.settings!r})"

    async def __call__(self, spawner) -> None:
        try:
            # Read on the event loop: the hub's database session is not for worker threads.
            member_of = {g.name for g in spawner.user.groups}
            await asyncio.to_thread(self.prepare, spawner, member_of)
        except Exception as exc:  # noqa: BLE001 - logged with the learner's name; the start goes on
            spawner.log.error("Team folders of %s not prepared: %s", spawner.user.name, exc)
        if self.then is not None:
            result = self.then(spawner)
            if asyncio.iscoroutine(result):
                await result

    # -- the steps, in a worker thread ----------------------------------------------------------
    def prepare(self, spawner, member_of: set[str]) -> LinkReport | None:
        teams = self.settings.teams()
        mine = [t for t in teams if t.group in member_of]
        others = [t for t in teams if t.group not in member_of]
        slurm = hasattr(spawner, "as_user")
        root = os.geteuid() == 0
        if not root and not slurm:
            spawner.log.warning("Team folders need a hub run as root (groups and folder owners); %s gets none",
                                spawner.user.name)
            return None
        account, home = self._account_and_home(spawner, slurm)
        if not self.settings.manage_unix_groups:
            # The site's directory decides: a link to a folder the account cannot enter would only confuse.
            outside = [t for t in mine if not folders.in_group(account, t.unix_group)]
            for t in outside:
                spawner.log.warning("Team %s: %s is in the hub group but not in the Unix group %s (the site's "
                                    "directory provides it); no link", t.group, account, t.unix_group)
            mine = [t for t in mine if t not in outside]
            others = [*others, *outside]  # our link goes when the directory took them out
        if root:
            for t in mine:
                gid = (folders.ensure_unix_group(t) if self.settings.manage_unix_groups else folders.gid_of(t.unix_group))
                if gid is None:
                    spawner.log.error("Team folder %s: the Unix group %s does not exist (the site provides it when "
                                      "team_folders.manage_unix_groups is off)", t.group, t.unix_group)
                    continue
                if not folders.ensure_folder(t, gid):
                    spawner.log.warning("Team folder %s: no POSIX ACLs on this filesystem; members' umask decides "
                                        "whether the team may edit their files", t.path)
                if self.settings.manage_unix_groups and folders.set_member(t, account, True):
                    spawner.log.info("Team %s: %s joined Unix group %s", t.group, account, t.unix_group)
            if self.settings.manage_unix_groups:
                for t in others:
                    if folders.set_member(t, account, False):
                        spawner.log.info("Team %s: %s left Unix group %s (no longer in hub group %s)",
                                         t.group, account, t.unix_group, t.group)
        report = self._links(spawner, slurm, home, {t.group: str(t.path) for t in mine},
                             {t.group: str(t.path) for t in others})
        if report.made or report.removed:
            spawner.log.info("Team links of %s: made %s, removed %s", spawner.user.name, report.made, report.removed)
        for why in report.refused:
            spawner.log.warning("Team link of %s not made: %s", spawner.user.name, why)
        return report

    @staticmethod
    def _account_and_home(spawner, slurm: bool) -> tuple[str, str]:
        if slurm:
            return spawner.unix_user, spawner.home()
        # The account and home the local spawner makes anyway; made now, so the account can join its groups.
        spawner._prepare_home()
        return spawner.unix_account, spawner.home_dir

    @staticmethod
    def _links(spawner, slurm: bool, home: str, wanted: dict, stale: dict) -> LinkReport:
        if slurm:
            import shlex

            prefix = shlex.split(spawner.as_user())
            return sync_as(home, wanted, stale, prefix=prefix, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": home})
        from jupyterhub.spawner import set_user_setuid

        return sync_as(home, wanted, stale, preexec_fn=set_user_setuid(spawner.unix_account),
                       env={"PATH": "/usr/bin:/bin", "HOME": home})


def update_team_folders(c: Config, cfg: dict) -> None:
    """Team folders (academy.teams): the pre-spawn hook, and what learners' servers need to show disk use."""
    settings = settings_from(cfg)
    if settings is None:
        return
    if cfg["backend"] == "slurm" and not cfg["team_folders"]["root"]:
        from academy.validation import ConfigError

        raise ConfigError("team_folders.root: required with backend slurm (a folder on the shared filesystem)")
    try:  # names checked again: a bad one stops the start with its key path
        settings.teams()
    except folders.TeamError as exc:
        from academy.validation import ConfigError

        raise ConfigError(str(exc)) from None
    previous = c.Spawner.get("pre_spawn_hook")
    c.Spawner.pre_spawn_hook = TeamFolderHook(settings, then=previous)
    c.Spawner.environment = {**c.Spawner.get("environment", {}), **{
        "ACADEMY_TEAMS_ROOT": settings.root,
        "ACADEMY_TEAMS_PREFIX": settings.unix_group_prefix,
        "ACADEMY_TEAMS_REFRESH": str(settings.usage_refresh_seconds),
        "ACADEMY_TEAMS_WARN_BYTES": str(int(settings.warn_gib * 2**30)),
    }}
