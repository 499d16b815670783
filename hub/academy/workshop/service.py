"""The trainer service the hub runs at /services/academy/: tornado, HubOAuth login, Jinja2 pages, a JSON API.

Authorisation (see the README): the hub lets admins and members of ``workshops.trainer_groups``
reach the service (``access:services!service=academy``); the service then reads the caller's
admin flag and groups from the hub with its own token and shows a trainer only the workshops
whose trainer group they are in. Anyone else gets 403 on every page and API.
"""
from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path

from markupsafe import Markup
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import ioloop, web

from academy.shutdown import exit_now
from academy.runtime import read_runtime
from academy.siteconfig import load_config
from academy.workshop import actions
from academy.workshop.forms import InvalidRequest, Problem, WorkshopRequest, parse_time, split_names
from academy.workshop.hubclient import HubUser
from academy.workshop.models import local

TEMPLATES = Path(__file__).parent / "templates"


def fmt(moment) -> str:
    value = local(moment)
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def ctx(self) -> actions.Context:
        return self.settings["ctx"]

    def prepare(self):
        model = self.get_current_user()
        if model is None:
            if self.request.path.startswith(url_path_join(self.settings["prefix"], "api")):
                raise web.HTTPError(403, "log in through the hub")
            self.redirect(self.get_login_url())
            return
        if model.get("kind", "user") != "user":
            raise web.HTTPError(403)
        # Admin flag and groups fresh from the hub, so a group change counts at once.
        self.hub_user = self.ctx.hub.user(model["name"]) or HubUser(model["name"], False, frozenset())
        if not actions.may_use_service(self.hub_user, self.ctx.cfg) and not actions.visible_workshops(self.ctx, self.hub_user):
            raise web.HTTPError(403, "the workshop service is for trainers")

    def workshop_or_403(self, slug: str):
        w = actions.get_workshop(self.ctx, slug)
        # The same answer for "no such workshop" and "not yours", so slugs cannot be probed.
        if w is None or not actions.can_manage(self.hub_user, w):
            raise web.HTTPError(403, "not a workshop you train")
        return w

    def render_page(self, name: str, **kwargs) -> None:
        env: Environment = self.settings["jinja"]
        self.set_header("Cache-Control", "no-store")
        self.finish(env.get_template(name).render(
            user=self.hub_user, prefix=self.settings["prefix"], hub_prefix=self.settings["hub_prefix"],
            academy_title=self.ctx.cfg["hub"]["title"], xsrf_form_html=lambda: Markup(self.xsrf_form_html()), fmt=fmt, **kwargs))

    def write_error(self, status_code, **kwargs):
        reason = self._reason
        if "exc_info" in kwargs and isinstance(kwargs["exc_info"][1], web.HTTPError) and kwargs["exc_info"][1].log_message:
            reason = kwargs["exc_info"][1].log_message
        if self.request.path.startswith(url_path_join(self.settings["prefix"], "api")):
            self.finish({"status": status_code, "message": reason})
        else:
            self.finish(f"<!DOCTYPE html><title>{status_code}</title><h1>{status_code}</h1><p>{web.escape.xhtml_escape(reason)}</p>")


class IndexHandler(BaseHandler):
    def get(self):
        self.render_page("index.html", workshops=actions.visible_workshops(self.ctx, self.hub_user))


def _items(text: str, kind: str, problems: list[Problem]):
    out = []
    for entry in split_names(text):
        name, _, at = entry.partition("@")
        out.append((name, parse_time(at, kind, problems) if at else None))
    return out


def request_from_form(form: dict[str, list[str]]) -> WorkshopRequest:
    """The posted form as a request; raises InvalidRequest for what cannot even be parsed."""
    one = lambda k: (form.get(k) or [""])[0].strip()  # noqa: E731
    problems: list[Problem] = []
    start, end = parse_time(one("start"), "start", problems), parse_time(one("end"), "end", problems)
    try:
        count = int(one("count") or 0)
    except ValueError:
        problems.append(Problem("count", "a whole number"))
        count = 0
    lessons, assignments = _items(one("lessons"), "lessons", problems), _items(one("assignments"), "assignments", problems)
    if problems:
        raise InvalidRequest(problems)
    return WorkshopRequest(
        slug=one("slug"), title=one("title"), start=start, end=end, profiles=[p for p in form.get("profiles", []) if p],
        reservation=one("reservation"), trainer_group=one("trainer_group"), participant_group=one("participant_group"),
        count=count, usernames=split_names(one("usernames")), lessons=lessons, assignments=assignments)


class NewHandler(BaseHandler):
    def _form(self, problems=(), form=None):
        from academy.profiles import load_profiles

        profiles = load_profiles(Path(self.ctx.cfg["profiles_file"]))
        self.render_page("new.html", problems=list(problems), profiles=profiles, backend=self.ctx.cfg["backend"],
                         max_participants=self.ctx.wcfg["max_participants"], form=form or {"profiles": [], "count": 0})

    def get(self):
        self._form()

    async def post(self):
        from academy.workshop.lifecycle import reservation_problems

        form = {k: [v.decode() for v in vs] for k, vs in self.request.body_arguments.items() if k != "_xsrf"}
        flat = {k: (v[0] if k != "profiles" else v) for k, v in form.items()}
        try:
            req = request_from_form(form)
            workshop, creds = actions.create_workshop(self.ctx, self.hub_user.name, req, await reservation_problems(self.ctx, req))
        except InvalidRequest as exc:
            self.set_status(400)
            return self._form(exc.problems, {"profiles": [], "count": 0, **flat})
        render_sheet(self, workshop, creds)


def render_sheet(handler: BaseHandler, workshop, creds) -> None:
    """The one and only display of new passwords: print-ready slips and the same rows as CSV."""
    if not creds:
        return handler.redirect(url_path_join(handler.settings["prefix"], "w", workshop.slug))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["username", "password", "url"])
    for c in creds:
        writer.writerow([c.username, c.password, handler.ctx.public_url])
    handler.render_page("sheet.html", workshop=workshop, credentials=creds, url=handler.ctx.public_url, csv=buf.getvalue())



class WorkshopHandler(BaseHandler):
    def get(self, slug):
        self.render_page("workshop.html", workshop=self.workshop_or_403(slug), problems=[])


class ParticipantsHandler(BaseHandler):
    async def post(self, slug):
        from academy.workshop.lifecycle import room_problems

        w = self.workshop_or_403(slug)
        try:
            count = int(self.get_body_argument("count", "0") or 0)
            names = split_names(self.get_body_argument("usernames", ""))
            creds = actions.add_participants(self.ctx, self.hub_user.name, slug, count, names,
                                             self.get_body_argument("sso_group", "").strip(),
                                             await room_problems(self.ctx, slug, count + len(names)))
        except ValueError as exc:
            problems = exc.problems if isinstance(exc, InvalidRequest) else [Problem("count", "a whole number")]
            self.set_status(400)
            return self.render_page("workshop.html", workshop=w, problems=problems)
        render_sheet(self, actions.get_workshop(self.ctx, slug), creds)


class RemoveHandler(BaseHandler):
    def post(self, slug):
        self.workshop_or_403(slug)
        actions.remove_participant(self.ctx, self.hub_user.name, slug, self.get_body_argument("username"))
        self.redirect(url_path_join(self.settings["prefix"], "w", slug))


class ReleaseHandler(BaseHandler):
    def post(self, slug):
        from academy.workshop.release import release_content

        self.workshop_or_403(slug)
        kind, name = self.get_body_argument("kind"), self.get_body_argument("name")
        try:
            notice = release_content(self.ctx, self.hub_user.name, slug, kind, name)
        except InvalidRequest as exc:
            self.set_status(400)
            return self.render_page("workshop.html", workshop=actions.get_workshop(self.ctx, slug), problems=exc.problems)
        self.render_page("workshop.html", workshop=actions.get_workshop(self.ctx, slug), problems=[], notice=f"{name}: {notice}")


def release_due(ctx: actions.Context) -> None:
    """Release what has reached its time; a failure is logged in the audit log and retried next round."""
    from academy.workshop.release import due, release_content

    for slug, kind, name in due(ctx):
        try:
            release_content(ctx, "academy (scheduled)", slug, kind, name)
        except InvalidRequest as exc:
            actions.audit(ctx, "academy (scheduled)", f"{kind}.release-failed", slug, detail=f"{name}: {exc}")


def _cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (titles and details are typed by trainers)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


class AuditHandler(BaseHandler):
    def prepare(self):
        super().prepare()
        if self._finished:
            return
        if not self.hub_user.admin:
            raise web.HTTPError(403, "the audit log is for admins")

    def get(self, as_csv=None):
        events = actions.audit_events(self.ctx)
        if not as_csv:
            return self.render_page("audit.html", events=events)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["at_utc", "actor", "action", "workshop", "participant", "detail"])
        for e in reversed(events):
            writer.writerow([_cell(v) for v in (e.at.isoformat(), e.actor, e.action, e.workshop, e.participant, e.detail)])
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="academy-audit.csv"')
        self.finish(buf.getvalue())


def workshop_json(w) -> dict:
    return {"slug": w.slug, "title": w.title, "start": local(w.start).isoformat(), "end": local(w.end).isoformat(),
            "profiles": w.profiles, "reservation": w.reservation, "trainer_group": w.trainer_group,
            "participant_group": w.participant_group, "participants": [p.username for p in w.participants],
            "content": [{"kind": c.kind, "name": c.name, "release_at": c.release_at and local(c.release_at).isoformat(),
                         "released_at": c.released_at and local(c.released_at).isoformat()} for c in w.content]}


class ApiListHandler(BaseHandler):
    def get(self):
        self.finish({"workshops": [workshop_json(w) for w in actions.visible_workshops(self.ctx, self.hub_user)]})


class ApiWorkshopHandler(BaseHandler):
    def get(self, slug):
        self.finish(workshop_json(self.workshop_or_403(slug)))


def make_app(ctx: actions.Context, prefix: str, hub_prefix: str, cookie_secret: bytes) -> web.Application:
    slug = r"([a-z][a-z0-9-]{0,39})"
    routes = [
        ("", IndexHandler), ("new", NewHandler), (f"w/{slug}", WorkshopHandler),
        (f"w/{slug}/participants", ParticipantsHandler), (f"w/{slug}/remove", RemoveHandler),
        (f"w/{slug}/release", ReleaseHandler),
        ("audit", AuditHandler), (r"audit(\.csv)", AuditHandler),
        ("api/workshops", ApiListHandler), (f"api/workshops/{slug}", ApiWorkshopHandler),
        ("oauth_callback", HubOAuthCallbackHandler),
    ]
    # Course work and the lifecycle (warm start, teardown, purge): their own handlers and page sections.
    from academy.workshop import (announcement_pages, coursework_pages, dashboard, events_api, lifecycle_pages,
                                  privacy)
    routes += coursework_pages.routes(slug) + lifecycle_pages.routes(slug)
    routes += dashboard.routes(slug) + events_api.routes()  # the live dashboard and the learners' event API
    routes += announcement_pages.routes(slug) + privacy.routes(slug)  # announcements, export/forget
    from academy.workshop import link_pages
    routes += link_pages.routes(slug)  # one-click links for the workshop's content
    from academy.workshop import team_pages
    routes += team_pages.routes()  # team folders' members and disk use (admins)
    from academy.workshop import budget_pages
    routes += budget_pages.routes()  # GPU-hour budgets per Slurm account (admins and trainers)
    jinja = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]))
    coursework_pages.register(jinja, ctx)
    lifecycle_pages.install(jinja, ctx)
    announcement_pages.install(jinja, ctx)
    return web.Application(
        [(url_path_join(prefix, path), handler) for path, handler in routes],
        ctx=ctx, jinja=jinja, prefix=prefix, hub_prefix=hub_prefix, cookie_secret=cookie_secret, xsrf_cookies=True,
        live=dashboard.Live(),
    )


def ensure_profile_groups(ctx: actions.Context) -> None:
    """Groups that profiles.yaml limits profiles to exist, so admins can fill them in the admin page."""
    from academy.profiles import load_profiles

    for profile in load_profiles(Path(ctx.cfg["profiles_file"])):
        for group in sorted(profile.groups):
            ctx.hub.ensure_group(group)


def cookie_secret(cfg: dict) -> bytes:
    """Kept in the state dir, so trainers stay logged in to the service across a restart."""
    from academy.up import _secret_file

    return _secret_file(Path(cfg["hub"]["state_dir"]) / "academy-service-cookie-secret").encode()


def main() -> None:
    cfg = load_config(None, read_runtime())  # with the ports `academy up` chose, as the hub has them
    ctx = actions.make_context(cfg, api_url=os.environ["JUPYTERHUB_API_URL"], token=os.environ["JUPYTERHUB_API_TOKEN"])
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/academy/")
    hub_prefix = url_path_join(os.environ.get("JUPYTERHUB_BASE_URL", "/"), "hub/")
    ensure_profile_groups(ctx)
    from urllib.parse import urlparse

    url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
    app = make_app(ctx, prefix, hub_prefix, cookie_secret(cfg))
    app.listen(url.port, url.hostname)
    actions.audit(ctx, "academy", "service.start", detail=json.dumps({"prefix": prefix}))
    ioloop.PeriodicCallback(lambda: release_due(ctx), ctx.wcfg["tick_seconds"] * 1000).start()
    from academy.workshop.lifecycle_pages import start_scheduler
    start_scheduler(ctx)

    def stop(signum, frame):  # noqa: ARG001
        # The hub waits for this process before it stops any learner's server: leave at once.
        print(f"academy service: stopping ({signal.Signals(signum).name})", flush=True)
        exit_now(0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
