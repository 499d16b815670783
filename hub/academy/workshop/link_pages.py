"""The workshop page's link builder: one-click links (README "One-click links") for its lessons and assignments.

``GET w/<slug>/link?item=lesson:NAME&profile=P&hours=N`` (the workshop's trainers and admins only)
answers with the workshop page and the link, checked as ``academy link`` checks it: a profile of this
workshop, hours within that profile, an item of this workshop. A GET changes nothing, so it needs no XSRF.
A lesson opens as ``<curriculum.target>/<lesson>`` (where release copies it), an assignment as the
folder nbgrader's fetch makes in the home.
"""
from __future__ import annotations

from pathlib import Path

from academy.workshop.forms import Problem
from academy.workshop.service import BaseHandler


def item_path(cfg: dict, kind: str, name: str) -> str:
    """Where a released item lives in a learner's home, relative to it."""
    if kind == "assignment":
        return name
    source = Path(cfg["curriculum"]["source"]) / name
    return f"{cfg['curriculum']['target']}/{name if source.exists() else name + '.ipynb'}"


class LinkHandler(BaseHandler):
    def get(self, slug):
        from academy.link import make_link
        from academy.spawners.options import OptionsError

        w = self.workshop_or_403(slug)
        item, profile, hours = (self.get_query_argument(k, "") for k in ("item", "profile", "hours"))
        kind, _, name = item.partition(":")
        problems, link = [], ""
        if not any(c.kind == kind and c.name == name for c in w.content):
            problems.append(Problem("link", "choose a lesson or assignment of this workshop"))
        elif profile not in (w.profiles or []):
            problems.append(Problem("link", f"choose one of this workshop's profiles: {', '.join(w.profiles or [])}"))
        else:
            # The hub's public address as the trainer reached it (the proxy keeps the Host header).
            base = self.settings["hub_prefix"].rstrip("/").removesuffix("/hub")
            proto = self.request.headers.get("X-Forwarded-Proto", self.request.protocol).split(",")[0].strip()
            try:
                link = make_link(Path(self.ctx.cfg["profiles_file"]), profile, hours, item_path(self.ctx.cfg, kind, name),
                                 f"{proto}://{self.request.host}{base}")
            except OptionsError as exc:
                problems.append(Problem("link", str(exc)))
        if problems:
            self.set_status(400)
        self.render_page("workshop.html", workshop=w, problems=problems, link=link,
                         link_choice={"item": item, "profile": profile, "hours": hours})


def routes(slug: str) -> list[tuple[str, type]]:
    return [(f"w/{slug}/link", LinkHandler)]
