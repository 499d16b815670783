"""``academy teams``: each configured team folder, its Unix group and members, and its disk use.

For admins and trainers on the hub's machine. The members listed are the Unix group's (this machine's
view: /etc/group, or LDAP/sssd through NSS), as they were at each member's last start. Disk use is one
walk per folder with a time budget (``--budget``); a walk that runs out of time prints a lower bound.
"""
from __future__ import annotations

import argparse
import grp
import json
import os
import stat

from academy import clitools


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "teams", help="list team folders: Unix group, members, disk use",
        description=__doc__.split("\n\n")[0], epilog=clitools.EXIT_POLICY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument("--make", action="store_true",
                   help="as root: make the folders (and, with manage_unix_groups, the Unix groups) now, before any "
                        "member's start; for a hub that does not run as root")
    p.add_argument("--budget", type=clitools.positive_float, default=30.0, help="seconds each folder's walk may take (default 30)")
    p.set_defaults(func=_cli)


def rows(cfg: dict, budget: float) -> list[dict]:
    from academy.teams.folders import human, measure
    from academy.teams.hook import settings_from

    settings = settings_from(cfg)
    out = []
    for t in settings.teams() if settings else []:
        try:
            members = sorted(grp.getgrnam(t.unix_group).gr_mem)
        except KeyError:
            members = None
        try:
            st = os.lstat(t.path)
            state = "ok" if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o2770 else \
                f"mode {oct(stat.S_IMODE(st.st_mode))}"
        except FileNotFoundError:
            state = "not made yet (made at a member's first start)"
        usage = measure(t.path, budget) if state == "ok" else None
        out.append({
            "group": t.group, "unix_group": t.unix_group, "path": str(t.path), "folder": state,
            "members": members, "bytes": usage.bytes if usage else None, "files": usage.files if usage else None,
            "complete": usage.complete if usage else None,
            "disk_use": (("" if usage.complete else "at least ") + human(usage.bytes)) if usage else "-",
        })
    return out


def make_all(cfg: dict) -> list[str]:
    """As root: every configured team's Unix group (if the hub manages them) and folder; the folders' paths."""
    from academy.teams import folders
    from academy.teams.hook import settings_from

    if os.geteuid() != 0:
        raise clitools.Refused("--make needs root: the folders belong to root and the team's Unix group")
    settings = settings_from(cfg)
    made = []
    for t in settings.teams() if settings else []:
        gid = folders.ensure_unix_group(t) if settings.manage_unix_groups else folders.gid_of(t.unix_group)
        if gid is None:
            raise clitools.Refused(f"team {t.group}: Unix group {t.unix_group} does not exist (the site provides it "
                                   "when team_folders.manage_unix_groups is off)")
        folders.ensure_folder(t, gid)
        made.append(str(t.path))
    return made


def _cli(args: argparse.Namespace) -> int:
    from academy.siteconfig import load_config

    cfg = load_config(args.config)
    if args.make:
        made = make_all(cfg)
        if made:
            print(f"Made or checked: {', '.join(made)}")
    found = rows(cfg, args.budget)
    if args.json:
        print(json.dumps(found, indent=1))
        return clitools.OK
    if not found:
        print("No team folders: list hub groups under team_folders.groups in the site config.")
        return clitools.OK
    for r in found:
        members = "(no Unix group yet)" if r["members"] is None else (", ".join(r["members"]) or "(none)")
        files = "" if r["files"] is None else f" in {r['files']} files"
        print(f"{r['group']}: {r['path']}  [{r['folder']}]  {r['disk_use']}{files}")
        print(f"  Unix group {r['unix_group']}: {members}")
    return clitools.OK
