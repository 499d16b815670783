"""nbgrader's Formgrader for trainers, as a hub-managed service run as the course-owner account (never root).

The hub starts ``python -m academy.workshop.formgrader`` as the service ``formgrader``
(``configurer.update_formgrader``). As root, this wrapper makes the course-owner account
(``workshops.formgrader.user``, a system account with no login), hands the course state to it
(the gradebook and nbgrader's course root, never the hub's own state or the exchange), lets its
group read the instructor notebooks (``source/``, still closed to students), drops to that account
and replaces itself with ``jupyterhub-singleuser``: a Jupyter server whose root is the course root,
logged in through the hub's OAuth and open only to holders of ``access:services!service=formgrader``
(admins and the trainer groups). Only the Formgrader server extension is loaded, with nbgrader's
exchange root set to ours, so it sees our released assignments, submissions and gradebook.
"""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from academy.siteconfig import load_config

EXTENSIONS = {"academy.workshop.fgserver": True, "nbgrader.server_extensions.formgrader": True, "nbgrader.server_extensions.assignment_list": False,
              "nbgrader.server_extensions.course_list": False, "nbgrader.server_extensions.validate_assignment": False,
              "jupyter_server_terminals": False, "jupyter_lsp": False, "jupyter_resource_usage": False,
              "jupyterlab": False, "notebook": False}


class SharedState(RuntimeError):
    """The course state folder is (or holds) the hub's state or the exchange: never give it away."""


def ensure_owner(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
        return pwd.getpwnam(name)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirs, files in os.walk(path):
        os.lchown(dirpath, uid, gid)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def check_course_state(cfg: dict, layout) -> None:
    state, hub_state = layout.state_dir.resolve(), Path(cfg["hub"]["state_dir"]).resolve()
    if state == hub_state or hub_state.is_relative_to(state) or layout.exchange_dir.resolve().is_relative_to(state):
        raise SharedState(f"workshops.formgrader: the course state {state} is shared with the hub's state or the exchange; "
                          "set workshops.course.state_dir to a folder of its own")


def hand_over(cfg: dict, layout, owner: pwd.struct_passwd) -> None:
    """The course owner gets the course state; refused when that folder is (or holds) the hub's own state."""
    check_course_state(cfg, layout)
    state = layout.state_dir.resolve()
    layout.ensure()
    os.lchown(state, owner.pw_uid, owner.pw_gid)
    if layout.db_url.startswith("sqlite:///"):
        db = Path(layout.db_url[len("sqlite:///"):])
        if db.exists() and db.parent == state:
            os.lchown(db, owner.pw_uid, owner.pw_gid)
    _chown_tree(layout.root, owner.pw_uid, owner.pw_gid)
    home = state / ".formgrader-home"
    home.mkdir(mode=0o700, exist_ok=True)
    os.lchown(home, owner.pw_uid, owner.pw_gid)
    if layout.source_dir.is_dir():
        # Instructor notebooks: their owner keeps them, the course owner's group reads, students never.
        os.chown(layout.source_dir, -1, owner.pw_gid)
        os.chmod(layout.source_dir, 0o750)


def refresh(cfg: dict, layout) -> None:
    """After a root-run course step: what it wrote in the course state goes to the course owner too."""
    fg = cfg["workshops"].get("formgrader") or {}
    if os.geteuid() != 0 or not fg.get("enabled"):
        return
    try:
        owner = pwd.getpwnam(fg["user"])
    except KeyError:
        return  # the service makes it at its first start
    try:
        hand_over(cfg, layout, owner)
    except SharedState:
        pass  # the service itself refuses to start and says why in the hub log


def write_server_config(config_dir: Path, layout) -> None:
    """Only the Formgrader (the user-level config outranks the environment's, which enables every extension),
    and nbgrader's exchange root on ours, which nbgrader's apps read from the same folder."""
    config_dir.mkdir(mode=0o700, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": EXTENSIONS}}))
    nbgrader = {"Exchange": {"root": str(layout.exchange_dir)},
                "ExchangeFactory": {"list": "academy.workshop.fgexchange.ReadOnlyList"},
                # A submission's markdown is the student's HTML, shown to the trainer in the hub's origin.
                "HTMLExporter": {"sanitize_html": True, "preprocessors": ["nbconvert.preprocessors.sanitize.SanitizeHTML"]}}
    (config_dir / "nbgrader_config.json").write_text(json.dumps(nbgrader))


def command(layout, cfg: dict) -> list[str]:
    return [str(Path(sys.executable).parent / "jupyterhub-singleuser"),
            "--ServerApp.terminals_enabled=False", "--ServerApp.default_url=/formgrader",
            "--ServerApp.contents_manager_class=academy.workshop.fgserver.ReadOnlyContents",
            f"--Exchange.root={layout.exchange_dir}", f"--CourseDirectory.root={layout.root}"]


def main() -> None:
    from academy.workshop.coursework import layout_for

    cfg = load_config()
    layout = layout_for(cfg)
    env = {k: v for k, v in os.environ.items() if k.startswith("JUPYTERHUB_") or k in ("PATH", "LANG", "LC_ALL")}
    env.update(JUPYTERHUB_ROOT_DIR=str(layout.root), HOME=str(layout.state_dir / ".formgrader-home"),
               JUPYTER_CONFIG_DIR=str(layout.state_dir / ".formgrader-home" / "config"))
    if os.geteuid() == 0:
        owner = ensure_owner(cfg["workshops"]["formgrader"]["user"])
        try:
            hand_over(cfg, layout, owner)
        except SharedState as exc:
            raise SystemExit(str(exc)) from None
        os.setgroups([])
        os.setgid(owner.pw_gid)
        os.setuid(owner.pw_uid)
    else:
        layout.ensure()
        Path(env["HOME"]).mkdir(mode=0o700, exist_ok=True)
    write_server_config(Path(env["JUPYTER_CONFIG_DIR"]), layout)  # as the course owner, never as root
    os.chdir(layout.root)
    args = command(layout, cfg)
    os.execve(args[0], args, env)


if __name__ == "__main__":
    main()
