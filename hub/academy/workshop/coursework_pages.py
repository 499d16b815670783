"""The workshop page's course-work buttons and downloads: collect, autograde, feedback, export, status.

Each POST (XSRF-checked by tornado) starts one action of :mod:`academy.workshop.coursework` in a
background thread and redirects back to the workshop page, whose status line follows the run
through ``api/workshops/<slug>/coursework``. Downloads (``grades.csv``, ``tests.csv``, one report
per participant) are served from the service's private folder as attachments. Everything is
authorised exactly like the other workshop handlers (``workshop_or_403``): admins and the
workshop's trainers; anyone else, participants included, gets 403.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone

from jupyterhub.utils import url_path_join
from tornado import web

from academy.workshop import actions, coursework
from academy.workshop.forms import InvalidRequest
from academy.workshop.models import local
from academy.workshop.service import BaseHandler

CONTENT_TYPES = {".csv": "text/csv; charset=utf-8", ".html": "text/html; charset=utf-8"}


def downloads(ctx: actions.Context, slug: str) -> list[dict]:
    """What the last export left: the two CSVs, then one report per participant."""
    base = coursework.export_dir(ctx, slug)
    files = [{"name": n, "path": f"download/{n}"} for n in coursework.EXPORT_FILES if (base / n).is_file()]
    reports = base / "reports"
    if reports.is_dir():
        files += [{"name": p.name, "path": f"report/{p.name}"} for p in sorted(reports.glob("*.html"))]
    return files


def view(ctx: actions.Context, slug: str) -> dict:
    status = coursework.read_status(ctx, slug)
    fmt = lambda t: local(datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)).strftime("%H:%M:%S") if t else ""  # noqa: E731
    fg = ctx.wcfg.get("formgrader") or {}
    formgrader = url_path_join(ctx.cfg["hub"]["base_url"], "services/formgrader/formgrader") if fg.get("enabled") else ""
    return {"status": asdict(status), "started": fmt(status.started_at), "finished": fmt(status.finished_at),
            "downloads": downloads(ctx, slug), "formgrader": formgrader}


class ActionHandler(BaseHandler):
    def post(self, slug, action):
        w = self.workshop_or_403(slug)
        kwargs = {}
        assignment = self.get_body_argument("assignment", "").strip()
        if assignment and action != "export":
            kwargs["assignment"] = assignment
        if action == "autograde":
            kwargs["jobs"] = self.get_body_argument("jobs", "2").strip()
        try:
            coursework.start(self.ctx, self.hub_user.name, slug, action, **kwargs)
        except InvalidRequest as exc:
            self.set_status(400)
            return self.render_page("workshop.html", workshop=w, problems=exc.problems)
        self.redirect(url_path_join(self.settings["prefix"], "w", slug) + "#coursework", status=303)


class StatusHandler(BaseHandler):
    def get(self, slug):
        self.workshop_or_403(slug)
        self.set_header("Cache-Control", "no-store")
        self.finish(view(self.ctx, slug))


class DownloadHandler(BaseHandler):
    def get(self, slug, kind, name):
        w = self.workshop_or_403(slug)
        base = coursework.export_dir(self.ctx, slug)
        # Only names we wrote: the two CSVs and <participant>.html of a current participant.
        if kind == "download" and name in coursework.EXPORT_FILES:
            path = base / name
        elif kind == "report" and name.endswith(".html") and name[:-5] in {p.username for p in w.participants}:
            path = base / "reports" / name
        else:
            raise web.HTTPError(404, "no such export file")
        if not path.is_file():
            raise web.HTTPError(404, "not exported yet: press Export")
        actions.audit(self.ctx, self.hub_user.name, "coursework.download", slug, detail=f"{kind}/{name}")
        self.set_header("Content-Type", CONTENT_TYPES[path.suffix])
        self.set_header("Content-Disposition", f'attachment; filename="{slug}-{name}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "sandbox")
        self.set_header("Cache-Control", "no-store")
        self.finish(path.read_bytes())


def routes(slug: str) -> list[tuple[str, type]]:
    return [
        (f"w/{slug}/coursework/(collect|autograde|feedback|export)", ActionHandler),
        (f"w/{slug}/coursework/(download|report)/([a-z0-9_.-]+)", DownloadHandler),
        (f"api/workshops/{slug}/coursework", StatusHandler),
    ]


def register(jinja, ctx: actions.Context) -> None:
    """The workshop page's include reads the status through this global."""
    jinja.globals["coursework_view"] = lambda slug: view(ctx, slug)
