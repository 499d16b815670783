"""Helpers for the course pipeline tests: course layouts in tmp dirs, submissions, gradebook comparisons.

``place_submission`` (what collect leaves in submitted/), ``gradebook_rows`` (every field nbgrader's
autograde writes, for comparisons), ``stock_autograde`` (serial nbgrader), ``run_academy`` (the CLI in a
subprocess, optionally as another Unix user).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from academy.course import layout as course_layout

from testbed import tiny_course

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
A1 = "a1_numpy_foundations"
FIXED_TIME = "2030-01-01 00:00:00.000000 UTC"


def sandbox_available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("bwrap", "prlimit", "setpriv", "useradd"))


def make_layout(course_dir: Path, state_dir: Path, exchange_dir: Path | None = None):
    return course_layout.resolve(str(course_dir), str(state_dir), str(exchange_dir or state_dir / "exchange"))


def shared_tiny_course(prefix: str) -> Path:
    """A fresh folder under /tmp whose ``course/`` (the tiny assignment) every account can read.

    Students' CLI runs must read the course config; the exchange goes beside it, the state elsewhere."""
    shared = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(shared, 0o755)
    tiny_course.write_source(shared / "course")
    for dirpath, _, files in os.walk(shared / "course"):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return shared


def tiny_release_nb(layout) -> Path:
    return layout.step_dir("release", ".", tiny_course.ASSIGNMENT) / f"{tiny_course.NOTEBOOK}.ipynb"


def place_submission(layout, student: str, assignment: str, files: dict, timestamp: str = FIXED_TIME) -> Path:
    """Put files where `collect` would: submitted/<student>/<assignment>/, with a system timestamp."""
    folder = layout.step_dir("submitted", student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, nbformat.NotebookNode):
            nbformat.write(content, folder / name)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    (folder / "timestamp.txt").write_text(timestamp)
    return folder


def gradebook_rows(db_url: str, assignment: str) -> dict:
    """Every field nbgrader's autograde writes, keyed by student/notebook/cell."""
    from nbgrader.api import Gradebook
    rows = {}
    with Gradebook(db_url) as gb:
        for sub in gb.find_assignment(assignment).submissions:
            sid = sub.student.id
            rows[(sid, "timestamp")] = str(sub.timestamp)
            for nb in sub.notebooks:
                rows[(sid, nb.name, "late_penalty")] = nb.late_submission_penalty
                for g in nb.grades:
                    rows[(sid, nb.name, g.name, "grade")] = (g.auto_score, g.manual_score, g.needs_manual_grade)
                for c in nb.comments:
                    rows[(sid, nb.name, c.name, "comment")] = (c.auto_comment, c.manual_comment)
    return rows


def scores(db_url: str, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        return {s.student.id: s.score for s in gb.find_assignment(assignment).submissions}


def stock_autograde(layout, assignment: str) -> subprocess.CompletedProcess:
    """Stock, serial `nbgrader autograde` in the course root (same generated nbgrader_config.py)."""
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(VENV_BIN / "nbgrader"), "autograde", assignment, "--force"], cwd=layout.root,
                           env=env, capture_output=True, text=True, timeout=900)


def run_academy(*args: str, user: str | None = None, cwd: str | None = None,
                timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`academy ...` in a subprocess, optionally as another Unix user (runuser; sudo may be absent).

    The environment is minimal (no hub tokens leak in); ``env`` adds variables such as JUPYTERHUB_USER."""
    cmd = [sys.executable, "-m", "academy", *args]
    env = {"PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "COLUMNS": "200", **(env or {})}
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
        env["HOME"] = os.path.expanduser(f"~{user}")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
