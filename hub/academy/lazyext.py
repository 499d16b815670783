"""Load a Jupyter server extension on its first request instead of at server start.

nbgrader's learner extensions (validate, and later the Assignments panel) import all of nbgrader
(nbconvert, SQLAlchemy, the apps) when they load: several CPU-seconds per server, paid by every
learner at the moment a whole class starts at once, although most never press "Validate" in their
first minutes.  This extension registers, for each configured extension, only its URL prefixes; the
first request under one of them imports the extension, runs its own loader (which sets up its
settings and handlers exactly as if it had been enabled) and is then routed to the extension's own
handler, as is every later request.  Configured in hub/singleuser/jupyter_server_config.json.
"""
from __future__ import annotations

import importlib
import re
import time

from tornado.routing import PathMatches, Router
from tornado.web import Application
from traitlets import Dict, List, Unicode
from traitlets.config import Configurable


class LazyExtensions(Configurable):
    """Which server extensions load on first use, and under which URL prefixes they answer."""

    extensions = Dict(
        value_trait=List(Unicode()),
        config=True,
        help="Extension module -> URL prefixes (below base_url) whose first request loads it, "
        'e.g. {"nbgrader.server_extensions.validate_assignment": ["/assignments/validate", "/nbgrader_version"]}.',
    )


class LazyExtensionRouter(Router):
    """Routes one extension's URLs; imports and loads the extension on the first request."""

    def __init__(self, serverapp, module: str):
        self.serverapp, self.module = serverapp, module
        self._rules: list[tuple[re.Pattern, type]] | None = None

    def _load(self) -> list[tuple[re.Pattern, type]]:
        started = time.perf_counter()
        mod = importlib.import_module(self.module)
        loader = getattr(mod, "_load_jupyter_server_extension", None) or mod.load_jupyter_server_extension
        loader(self.serverapp)
        handlers_mod = importlib.import_module(mod.load_jupyter_server_extension.__module__)
        base = self.serverapp.web_app.settings["base_url"].rstrip("/")
        self.serverapp.log.info("Loaded %s on first use in %.2f s", self.module, time.perf_counter() - started)
        return [(re.compile(re.escape(base) + pattern + "$"), handler)
                for pattern, handler in handlers_mod.default_handlers]

    def find_handler(self, request, **kwargs):
        if self._rules is None:
            self._rules = self._load()
        for regex, handler in self._rules:
            match = regex.match(request.path)
            if match:
                return self.serverapp.web_app.get_handler_delegate(
                    request, handler, path_args=[g.encode() if g is not None else None for g in match.groups()]
                )
        return None


def _jupyter_server_extension_points():
    return [{"module": "academy.lazyext"}]


def _load_jupyter_server_extension(serverapp):
    config = LazyExtensions(parent=serverapp)
    base = serverapp.web_app.settings["base_url"].rstrip("/")
    for module, prefixes in config.extensions.items():
        router = LazyExtensionRouter(serverapp, module)
        pattern = "(" + "|".join(re.escape(p.rstrip("/")) for p in prefixes) + ")(/.*)?$"
        # Tornado's own add_handlers: jupyter_server's checks each handler's auth decorators, which a
        # router has none of; the extension's real handlers are checked when its loader adds them.
        Application.add_handlers(serverapp.web_app, ".*$", [(PathMatches(re.escape(base) + pattern), router)])
    if config.extensions:
        serverapp.log.info("Deferred until first use: %s", ", ".join(config.extensions))
