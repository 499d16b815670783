"""Content release: a lesson into each participant's home (as the participant), an assignment via the course release.

Assignments go through :func:`academy.course.release.release` (nbgrader's generate_assignment, the
hidden-test leak check, the exchange), exactly as ``academy course release`` does. Lessons are
curriculum folders copied into ``<home>/<curriculum.target>/<lesson>`` by a child process that
runs with the participant's uid (local backend, hub as root).
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from academy.configurer import state_path
from academy.workshop.actions import Context, audit, get_workshop
from academy.workshop.forms import InvalidRequest, Problem
from academy.workshop.models import Content, utcnow


# Runs with the participant's uid: copies one notebook, never over a copy the participant already has.
_COPY = ("import os, shutil, sys; src, dst = sys.argv[1:3]; os.makedirs(os.path.dirname(dst), exist_ok=True); "
         "os.path.lexists(dst) or shutil.copyfile(src, dst)")


def _release_lesson(ctx: Context, workshop, name: str) -> str:
    import subprocess
    import sys

    from jupyterhub.spawner import set_user_setuid

    from academy.accounts import LOCAL_UNIX_PREFIX
    from academy.home import author_only, sync_as_user

    base = Path(ctx.cfg["curriculum"]["source"])
    source = next((c for c in (base / name, base / f"{name}.ipynb") if c.exists()), None)
    if source is None:
        raise InvalidRequest([Problem("lessons", f"no lesson {name!r} (notebook or folder) in {base}")])
    if author_only(base, source):
        raise InvalidRequest([Problem("lessons", f"{name!r} is the lesson code (checkers and solutions), not a lesson; "
                                                 "it is never copied into homes")])
    if ctx.cfg["backend"] != "local" or os.geteuid() != 0:
        raise InvalidRequest([Problem("lessons", "releasing a lesson into homes needs the local backend with the hub as root; "
                                                 "on Slurm every spawn already delivers the curriculum")])
    homes = Path(ctx.cfg["local"]["homes_dir"] or state_path(ctx.cfg, "homes"))
    for p in workshop.participants:
        home = homes / p.username
        dest = home / ctx.cfg["curriculum"]["target"] / source.name
        as_user = {"preexec_fn": set_user_setuid(f"{LOCAL_UNIX_PREFIX}{p.username}"), "env": {"PATH": "/usr/bin:/bin", "HOME": str(home)}}
        if source.is_dir():
            sync_as_user(source, dest, **as_user)
        else:
            subprocess.run([sys.executable, "-c", _COPY, str(source), str(dest)], check=True, capture_output=True, timeout=60, **as_user)
    return f"copied into {len(workshop.participants)} homes"


def _release_assignment(ctx: Context, workshop, name: str) -> str:
    from academy.course.exchange import ExchangeError
    from academy.course.layout import LayoutError, check_id
    from academy.course.release import ReleaseError, release
    from academy.workshop.coursework import course_layout, prepare_exchange

    try:
        layout = course_layout(ctx)
        if not (layout.source_dir / check_id(name, "assignment")).is_dir():
            raise LayoutError(f"no source for assignment {name!r} in {layout.source_dir}")
        prepare_exchange(ctx, layout, [p.username for p in workshop.participants])
        result = release(layout, name)
    except (LayoutError, ReleaseError, ExchangeError, OSError) as exc:
        raise InvalidRequest([Problem("assignments", str(exc))]) from None
    return f"released {len(result.notebooks)} notebook(s) to {result.published_to}"


def release_content(ctx: Context, actor: str, slug: str, kind: str, name: str) -> str:
    """Release one lesson or assignment of ``slug`` now; idempotent (a second release re-syncs)."""
    workshop = get_workshop(ctx, slug)
    with ctx.sessions() as db:
        row = db.scalar(select(Content).filter_by(workshop_id=workshop.id, kind=kind, name=name))
        if row is None:
            raise InvalidRequest([Problem(f"{kind}s", f"{name!r} is not a {kind} of {slug}")])
    outcome = _release_lesson(ctx, workshop, name) if kind == "lesson" else _release_assignment(ctx, workshop, name)
    with ctx.sessions() as db:
        row = db.scalar(select(Content).filter_by(workshop_id=workshop.id, kind=kind, name=name))
        row.released_at = utcnow()
        db.commit()
    audit(ctx, actor, f"{kind}.release", slug, detail=f"{name}: {outcome}")
    return outcome


def due(ctx: Context) -> list[tuple[str, str, str]]:
    """(workshop, kind, name) whose release time has come and that are not released yet."""
    from academy.workshop.models import Workshop

    with ctx.sessions() as db:
        rows = db.execute(select(Workshop.slug, Content.kind, Content.name).join(Content)
                          .where(Content.released_at.is_(None), Content.release_at.is_not(None),
                                 Content.release_at <= utcnow(), Workshop.torn_down_at.is_(None))).all()
    return [tuple(r) for r in rows]
