"""Local accounts for the embedded default: the first admin, and accounts trainers hand out.

Passwords are random, printed once, and stored only as bcrypt hashes in NativeAuthenticator's
own table of the hub database; there is no shared default password. The CLI
(``academy accounts add|reset``) lets a trainer create workshop accounts in bulk.
"""
from __future__ import annotations

import argparse
import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from academy import clitools

PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

#: Prefix of the Unix account the local backend creates for each hub user (hub user ``ann`` runs as
#: ``acad-ann``); the course exchange uses it to find a student's account.
LOCAL_UNIX_PREFIX = "acad-"


@dataclass(frozen=True)
class IssuedCredential:
    """A username with the one-time display of its new password."""

    username: str
    password: str


def new_password(length: int = 16) -> str:
    """Readable random password (no 0/O/1/l confusion)."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def _session(db_url: str):
    # Importing nativeauthenticator.orm registers its table on JupyterHub's metadata, so
    # new_session_factory creates it (and stamps a fresh database for the hub).
    from jupyterhub import orm
    import nativeauthenticator.orm  # noqa: F401

    # Alembic announces each stamp on stdout; the CLI's own output should stay readable.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return orm.new_session_factory(db_url)()


def _user_info():
    from nativeauthenticator.orm import UserInfo

    return UserInfo


def set_password(db_url: str, username: str, password: str | None = None, *, create: bool = True) -> IssuedCredential | None:
    """Create (or reset) an authorised account; returns the credential to show once."""
    UserInfo = _user_info()
    password = password or new_password()
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    db = _session(db_url)
    try:
        info = UserInfo.find(db, username)
        if info is None:
            if not create:
                return None
            db.add(UserInfo(username=username, password=hashed, is_authorized=True))
        else:
            info.password = hashed
            info.is_authorized = True
        db.commit()
    finally:
        db.close()
    return IssuedCredential(username, password)


def account_exists(db_url: str, username: str) -> bool:
    db = _session(db_url)
    try:
        return _user_info().find(db, username) is not None
    finally:
        db.close()


def bootstrap_admin(db_url: str, username: str) -> IssuedCredential | None:
    """On first start only: create the admin with a random password. None if it exists."""
    if account_exists(db_url, username):
        return None
    return set_password(db_url, username)


def _db_url_from_args(args: argparse.Namespace) -> str:
    from academy.configurer import state_path
    from academy.siteconfig import load_config

    cfg = load_config(args.config)
    Path(cfg["hub"]["state_dir"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    return "sqlite:///" + state_path(cfg, "jupyterhub.sqlite")


def make_hub_users(cfg: dict, names: list[str], group: str | None = None) -> str:
    """Make ``names`` hub users at once (admin page, groups) and optionally members of ``group``; says how.

    Through the running hub's REST API with the workshop service's token when it answers, else
    straight into the hub database, where the hub gives them their default role at its next start.
    """
    from academy.workshop.actions import token_file
    from academy.workshop.hubclient import HubClient, HubError

    hub = cfg["hub"]
    if token_file(cfg).exists():
        client = HubClient(f"http://127.0.0.1:{hub['port']}{hub['base_url']}hub/api", token_file(cfg).read_text().strip(), timeout=10)
        try:
            client.create_users(names)
            if group:
                client.add_to_group(group, names)
            return "hub API"
        except HubError:
            pass
    from jupyterhub import orm, roles

    db = _session("sqlite:///" + str(Path(hub["state_dir"]) / "jupyterhub.sqlite"))
    try:
        users = []
        for name in names:
            user = orm.User.find(db, name)
            if user is None:
                user = orm.User(name=name)
                db.add(user)
                if orm.Role.find(db, "user") is not None:
                    roles.assign_default_roles(db, entity=user)
            users.append(user)
        if group:
            g = orm.Group.find(db, group) or orm.Group(name=group)
            db.add(g)
            g.users.extend(u for u in users if u not in g.users)
        db.commit()
    finally:
        db.close()
    return "hub database"


def _cmd_add(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from academy.configurer import USERNAME_PATTERN
    import re

    bad = [n for n in args.names if not re.match(USERNAME_PATTERN, n)]
    if bad:
        return clitools.refused(args, f"invalid username(s): {', '.join(bad)} (lowercase letters, digits, - and _; at most 27)")
    db_url = _db_url_from_args(args)
    rows: list[dict] = []
    for name in args.names:
        if args.command_name == "add" and account_exists(db_url, name):
            rows.append({"username": name, "password": None, "note": "exists; use `academy accounts reset`"})
            continue
        cred = set_password(db_url, name, create=args.command_name == "add")
        rows.append({"username": name, "password": cred.password if cred else None, "note": "" if cred else "no such account"})
    made = [r["username"] for r in rows if r["password"]] if args.command_name == "add" else []
    if made or args.group:
        from academy.siteconfig import load_config

        # Visible in the admin page (and groupable) now, not only after each person's first login.
        make_hub_users(load_config(args.config), made or [r["username"] for r in rows], args.group)
    if args.json:
        print(json.dumps(rows))
    else:
        table = Table("username", "password", title="New credentials (shown once; hand them out now)")
        for row in rows:
            table.add_row(row["username"], row["password"] or f"({row['note']})")
        Console().print(table)
    missed = [f"{r['username']} ({r['note']})" for r in rows if not r["password"]]
    return clitools.failed(args, f"no new password for {', '.join(missed)}") if missed else clitools.OK


def register(subparsers) -> None:
    p = subparsers.add_parser("accounts", help="create or reset local (native) accounts")
    sub = p.add_subparsers(dest="accounts_command", required=True)
    for name, text in (("add", "create accounts with random passwords"), ("reset", "give existing accounts a new random password")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("names", nargs="+", metavar="USERNAME")
        sp.add_argument("--json", action="store_true", help="print the credentials as JSON (for scripts)")
        sp.add_argument("--group", help="also put the accounts in this hub group (created if missing)")
        sp.set_defaults(func=_cmd_add, command_name=name)
