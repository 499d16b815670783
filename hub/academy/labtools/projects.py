"""``GET|POST academy/api/projects`` on the learner's server: the Launcher's "New project".

The server runs as the learner, so the project folder is created by the learner, in the server's
root folder (their home), with the same code and the same name check as ``academy project new``
(:mod:`academy.project.templates`). The Jupyter server's own authentication guards both routes
(the hub's token or cookie, XSRF for a browser POST): only the server's owner gets in.

- ``GET``: ``{"templates": [{slug, title, description, notebook}, ...]}``.
- ``POST {"template": slug, "name": name}``: 201 ``{"path": name, "notebook": "name/project.ipynb"}``;
  400 for a bad name or unknown template, 409 when the name is taken; nothing is created then.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from jupyter_server.base.handlers import APIHandler
from tornado import web

from academy.project.templates import ProjectError, ProjectExists, create_project, list_templates


class ProjectsHandler(APIHandler):
    def _home(self) -> Path:
        return Path(os.path.expanduser(self.settings.get("server_root_dir") or "~"))

    @web.authenticated
    def get(self):
        try:
            templates = list_templates()
        except ProjectError as exc:
            raise web.HTTPError(404, str(exc)) from None
        self.finish({"templates": [t.as_json() for t in templates]})

    @web.authenticated
    def post(self):
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "body: expected JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "body: expected a JSON object with 'template' and 'name'")
        try:
            dest = create_project(data.get("template"), data.get("name"), self._home())
        except ProjectExists as exc:
            raise web.HTTPError(409, str(exc)) from None
        except ProjectError as exc:
            raise web.HTTPError(400, str(exc)) from None
        notebook = next(t.notebook for t in list_templates() if t.slug == data["template"])
        self.log.info("academy.labtools: created project %s from template %s", dest, data["template"])
        self.set_status(201)
        self.finish({"path": dest.name, "notebook": f"{dest.name}/{notebook}"})


def routes(base_url: str) -> list[tuple]:
    from jupyter_server.utils import url_path_join as join

    return [(join(base_url, "academy", "api", "projects"), ProjectsHandler)]
