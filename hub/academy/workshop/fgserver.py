"""A Jupyter server extension that makes the Formgrader's server a grading desk and nothing more.

The Formgrader runs as the course owner, who owns the course state that the root-run pipeline
reads; so that account must never run code or write files it chooses. This extension (loaded
only in the Formgrader service, see ``formgrader.py``) answers 403, ahead of every other route,
to kernels, sessions and terminals, and to the Formgrader actions that would run student code
unsandboxed or use nbgrader's own exchange (autograde, assign, release, collect, feedback):
those stay with the workshop service. ``ReadOnlyContents`` refuses every write through the
contents API. What is left: reading the course and writing grades and comments to the gradebook.
"""
from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

BLOCKED = [
    r"/api/kernels.*", r"/api/sessions.*", r"/api/terminals.*", r"/terminals.*",
    r"/formgrader/api/assignment/[^/]+/(assign|unrelease|release|collect|generate_feedback|release_feedback)",
    r"/formgrader/api/assignment/[^/]+/[^/]+/(generate_feedback|release_feedback)",
    r"/formgrader/api/submission/[^/]+/[^/]+/autograde",
]


class Refused(web.RequestHandler):
    def prepare(self):
        self.set_status(403)
        self.finish({"message": "not in the Formgrader: use the workshop page for course work"})


class ReadOnlyContents(AsyncLargeFileManager):
    async def save(self, model, path=""):
        raise web.HTTPError(403, "the Formgrader's files are read-only")

    async def delete_file(self, path):
        raise web.HTTPError(403, "the Formgrader's files are read-only")

    async def rename_file(self, old_path, new_path):
        raise web.HTTPError(403, "the Formgrader's files are read-only")

    async def create_checkpoint(self, path):
        raise web.HTTPError(403, "the Formgrader's files are read-only")

    async def copy(self, from_path, to_path=None):  # copies folders without save()
        raise web.HTTPError(403, "the Formgrader's files are read-only")

    async def restore_checkpoint(self, checkpoint_id, path):
        raise web.HTTPError(403, "the Formgrader's files are read-only")


def _jupyter_server_extension_points():
    return [{"module": "academy.workshop.fgserver"}]


def _load_jupyter_server_extension(serverapp):
    from jupyter_server.utils import url_path_join

    app = serverapp.web_app
    base = app.settings["base_url"]
    before = list(app.default_router.rules)
    app.add_handlers(".*$", [(url_path_join(base, pattern), Refused) for pattern in BLOCKED])
    added = [rule for rule in app.default_router.rules if rule not in before]
    # Tornado tries rules in order: ours first, ahead of the Formgrader's and the server's own.
    for rule in added:
        app.default_router.rules.remove(rule)
    app.default_router.rules[0:0] = added
