"""Unix accounts and homes of the local backend, made by the spawner at first start or by a workshop at once.

Hub user ``ann`` runs as ``acad-ann`` with a private home ``<homes_dir>/ann``. Only root may
create them; callers pass names that already matched the hub's username pattern, and every
command is an argument list (no shell).
"""
from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from academy.accounts import LOCAL_UNIX_PREFIX


def ensure_account(unix_name: str, home: str, hub_name: str) -> None:
    """Create the password-less system account (or point an existing one at ``home``)."""
    try:
        entry = pwd.getpwnam(unix_name)
    except KeyError:
        entry = None
    if entry is not None:
        if entry.pw_dir != home:
            # The state dir moved (or was recreated): point the account at its new home.
            subprocess.run(["usermod", "--home", home, unix_name], check=True, capture_output=True, timeout=30)
        return
    made = subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home,
         "--shell", "/bin/bash", "--comment", f"AI Factory Academy user {hub_name}", unix_name],
        capture_output=True, text=True, timeout=30,
    )
    if made.returncode != 0:
        try:
            # A second start of the same user (or a workshop making it) won the race: that account will do.
            pwd.getpwnam(unix_name)
        except KeyError:
            raise subprocess.CalledProcessError(made.returncode, made.args, made.stdout, made.stderr) from None


def prepare_home(hub_name: str, homes_dir: str, prefix: str = LOCAL_UNIX_PREFIX) -> Path:
    """As root: the user's account and a 0700 home it owns; returns the home."""
    homes = Path(homes_dir)
    homes.mkdir(parents=True, exist_ok=True)
    # Others may traverse to their own home but not list who else has one.
    os.chmod(homes, 0o711)
    home = homes / hub_name
    unix_name = f"{prefix}{hub_name}"
    ensure_account(unix_name, str(home), hub_name)
    pw = pwd.getpwnam(unix_name)
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)
    return home
