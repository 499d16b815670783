"""``academy up --ready-file FILE``: what a script needs once the hub answers, as JSON, instead of ``up``'s prose.

The file is written after the last start-up line ``up`` prints, so a reader that sees it has all of that
output too. It is written to a temporary file in the same folder and renamed into place (a reader never
sees half a file), owner-only (mode 0600: it may hold the first-run admin password). Fields:

- ``url``: the hub's public URL; ``pid``: this ``academy up`` process (SIGINT or SIGTERM stops everything);
  ``hub_pid``: the JupyterHub process it runs;
- ``admin_user``: the first of ``auth.admin_users`` on a native-login site, else null;
  ``admin_password``: its password when this start created the account (shown once), else null;
- ``backend``, ``config`` (the file read), ``state_dir``, ``log``;
- ``load_test``: null, or the files holding the shared password and the load client's token.

The file stays after the hub stops; ``pid`` tells whether it still runs.

``up`` also writes the same facts, without any password, to ``<state_dir>/running.json`` on every start,
so commands run beside it (``academy workshop``) reach the hub where this run put it (``up --port``), and
fall back to the site config's port when that ``up`` no longer runs.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from academy import loadtest


def ready_facts(cfg: dict, *, url: str, hub_pid: int, credential=None) -> dict:
    """The JSON object of the ready file (``credential``: the admin account this start created, if any)."""
    state = Path(cfg["hub"]["state_dir"])
    native_admins = cfg["auth"]["type"] == "native" and cfg["auth"]["admin_users"]
    return {
        "url": url,
        "pid": os.getpid(),
        "hub_pid": hub_pid,
        "admin_user": credential.username if credential else (cfg["auth"]["admin_users"][0] if native_admins else None),
        "admin_password": credential.password if credential else None,
        "backend": cfg["backend"],
        "config": cfg["_source"],
        "state_dir": str(state),
        "log": str(state / "jupyterhub.log"),
        "load_test": {"password_file": str(state / loadtest.PASSWORD_FILE), "token_file": str(state / loadtest.TOKEN_FILE)}
        if cfg["load_test"]["enabled"] else None,
    }


RUNNING = "running.json"


def running_url(cfg: dict) -> str | None:
    """The public URL of the hub an ``academy up`` on this state directory runs now, else None."""
    try:
        facts = json.loads((Path(cfg["hub"]["state_dir"]) / RUNNING).read_text())
        os.kill(int(facts["pid"]), 0)  # still running (signal 0 only checks)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return facts["url"] if isinstance(facts.get("url"), str) else None


def write_ready_file(path: str | os.PathLike | None, cfg: dict, *, url: str, hub_pid: int, credential=None) -> None:
    """Write the ready file atomically and owner-only; nothing when ``path`` is None (no ``--ready-file``)."""
    if path is None:
        return
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(ready_facts(cfg, url=url, hub_pid=hub_pid, credential=credential), fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
