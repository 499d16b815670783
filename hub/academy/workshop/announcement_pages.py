"""The service's announcement routes: trainers post and delete on the workshop page, learners read the API.

- ``POST w/<slug>/announce`` (form field ``text``, at most 500 characters, XSRF as every form) and
  ``POST w/<slug>/announcements/<id>/delete``: the workshop's trainers and admins only
  (``BaseHandler.workshop_or_403``); an id of another workshop's announcement is 404.
- ``GET api/announcements``: the caller's active workshops' announcements, newest first, for a
  learner server's token (``LearnerTokenHandler``), so a learner only ever gets their own
  workshops' messages whatever they send.

The workshop page includes ``announcements.html``, which reads the Jinja global ``announcements``.
"""
from __future__ import annotations

from jupyterhub.utils import url_path_join
from tornado import web

from academy.workshop import actions, announcements
from academy.workshop.forms import InvalidRequest
from academy.workshop.learnerapi import LearnerTokenHandler
from academy.workshop.service import BaseHandler


class AnnounceHandler(BaseHandler):
    def post(self, slug):
        w = self.workshop_or_403(slug)
        try:
            row = announcements.post(self.ctx.sessions, w, self.hub_user.name, self.get_body_argument("text", ""))
        except InvalidRequest as exc:
            self.set_status(400)
            return self.render_page("workshop.html", workshop=w, problems=exc.problems)
        actions.audit(self.ctx, self.hub_user.name, "announcement.post", slug, detail=f"#{row.id}: {row.text[:200]}")
        self.redirect(url_path_join(self.settings["prefix"], "w", slug) + "#announcements")


class DeleteHandler(BaseHandler):
    def post(self, slug, announcement_id):
        self.workshop_or_403(slug)
        if not announcements.remove(self.ctx.sessions, slug, int(announcement_id)):
            raise web.HTTPError(404, f"no announcement #{announcement_id} in {slug}")
        actions.audit(self.ctx, self.hub_user.name, "announcement.delete", slug, detail=f"#{announcement_id}")
        self.redirect(url_path_join(self.settings["prefix"], "w", slug) + "#announcements")


class ApiAnnouncementsHandler(LearnerTokenHandler):
    async def get(self):
        caller = await self.learner()
        rows = announcements.of_workshops(self.settings["ctx"].sessions, caller.workshop_slugs)
        self.set_header("Cache-Control", "no-store")
        self.finish({"announcements": [a.as_json() for a in rows]})


def routes(slug: str) -> list[tuple[str, type]]:
    return [(f"w/{slug}/announce", AnnounceHandler), (rf"w/{slug}/announcements/([0-9]{{1,12}})/delete", DeleteHandler),
            ("api/announcements", ApiAnnouncementsHandler)]


def install(jinja, ctx: actions.Context) -> None:
    """The table exists from the start; ``announcements(workshop)`` lists them all for the workshop page."""
    announcements.ensure_table(ctx.sessions)
    jinja.globals["announcements"] = lambda w: announcements.of_workshops(ctx.sessions, [w.slug], limit=None)
