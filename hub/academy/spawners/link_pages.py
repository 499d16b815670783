"""One-click links at ``/hub/spawn?opt-profile=..&opt-hours=..&next=..``: a preselected form, never a start on GET.

JupyterHub 6 starts a server straight from ``opt-`` query options (or bare ones), and sends a learner
whose server already runs to ``next`` whatever profile it runs on. For the learner's own default
server (``/hub/spawn`` and ``/hub/spawn/<own name>``) this handler (JupyterHub's ``SpawnHandler``, put in its place by :func:`install`) does instead:

* a link whose options pass the spawn form's checks shows that form preselected: one click starts;
* a crafted link (unknown profile, hours out of bounds, a key twice, an unknown key) shows the
  form with the form's own error, HTTP 400, nothing started;
* a server running on the link's profile: straight to ``next``; on another profile: a page that
  asks "open anyway" or "stop and restart on the linked profile" (a POST with the hub's XSRF token);
* ``next`` is kept only when it is a path on the learner's own server (:func:`academy.spawners.links.safe_next`).
"""
from __future__ import annotations

from jupyterhub import handlers
from jupyterhub.handlers import pages
from jupyterhub.scopes import needs_scope
from jupyterhub.utils import url_escape_path, url_path_join
from tornado import web
from tornado.httputil import url_concat

from academy.spawners.links import is_link, parse_link, safe_next
from academy.spawners.options import OptionsError

RESTART_FIELD = "academy-restart"


class LinkSpawnHandler(pages.SpawnHandler):
    """``/hub/spawn`` with one-click links; everything else as JupyterHub does it."""

    def _query(self) -> dict[str, list[str]]:
        return {k: [v.decode("utf8", "replace") for v in vs] for k, vs in self.request.query_arguments.items()}

    def _safe_next(self, user) -> str:
        return safe_next(self.get_argument("next", ""), user.url, self.hub.base_url)

    def _own_default(self, user_name, server_name) -> bool:
        me = self.current_user
        return user_name in (None, me.name) and not server_name and hasattr(me.spawner, "_parse_request")

    @web.authenticated
    def get(self, user_name=None, server_name=""):
        if self._own_default(user_name, server_name) and is_link(self.request.query_arguments):
            return self._link(user_name=self.current_user.name)
        return super().get(user_name, server_name)

    @web.authenticated
    def post(self, user_name=None, server_name="", display_name=""):
        if self._own_default(user_name, server_name) and RESTART_FIELD in self.request.body_arguments:
            return self._restart(user_name=self.current_user.name)
        return super().post(user_name, server_name, display_name)

    def _get_pending_url(self, user, server_name):
        # The stock one forwards any `next` the hub would follow; ours may only lead to the user's own server.
        if user.name != self.current_user.name:
            return super()._get_pending_url(user, server_name)
        url = url_path_join(self.hub.base_url, "spawn-pending", user.escaped_name, url_escape_path(server_name))
        nxt = self._safe_next(user)
        return url_concat(url, {"next": nxt}) if nxt else url

    @needs_scope("servers")
    async def _link(self, user_name):
        user = self.current_user
        spawner = user.spawner
        spawner.handler = self
        await spawner.run_auth_state_hook(await user.get_auth_state())
        nxt = self._safe_next(user)
        try:
            request = spawner._parse_request(parse_link(self._query()).options)
        except (OptionsError, web.HTTPError) as exc:
            message = exc.log_message if isinstance(exc, web.HTTPError) else str(exc)
            if isinstance(exc, OptionsError):  # the picker logs its own refusals
                self.log.warning("Refused spawn request for %s: %s", spawner._log_name, message)
            if spawner.active:
                raise web.HTTPError(400, message) from None
            return await self._form(user, spawner, None, nxt, error=message)
        if spawner.ready:
            running = (spawner.user_options or {}).get("profile")
            if running == request.profile.slug:
                return self.redirect(nxt or user.url)
            return await self._choice(user, spawner, request, running, nxt)
        if spawner.active:
            return self.redirect(self._get_pending_url(user, ""))
        dropped = bool(self.get_argument("next", "")) and not nxt
        return await self._form(user, spawner, request, nxt, dropped=dropped)

    def _post_url(self, nxt: str) -> str:
        url = url_path_join(self.hub.base_url, "spawn")
        return url_concat(url, {"next": nxt} if nxt else {})

    async def _form(self, user, spawner, request, nxt, error="", dropped=False):
        notes = []
        if request is not None:
            notes.append(f"Opened from a link: {request.profile.display_name}, {request.hours} "
                         f"hour{'s' if request.hours > 1 else ''}. Check the choice and press Start.")
        if dropped:
            notes.append("The link's page was not on your own server, so you will land on your server's start page.")
        form = await spawner._render_form(preselect=request, extra_note=" ".join(notes))
        if error:
            self.set_status(400)
        html = await self.render_template(
            "spawn.html",
            for_user=user,
            auth_state=await user.get_auth_state(),
            spawner_options_form=form,
            error_message=error or None,
            html_error_message=None,
            url=url_concat(self._post_url(nxt), {"_xsrf": self.xsrf_token.decode("ascii")}),
            spawner=spawner,
        )
        self.finish(html)

    async def _choice(self, user, spawner, request, running, nxt):
        profiles = {p.slug: p for p in spawner.load_profiles()}
        current = profiles.get(running)
        html = await self.render_template(
            "link_choice.html",
            running_name=current.display_name if current else (running or "another profile"),
            linked=request,
            open_url=nxt or user.url,
            restart_url=self._post_url(nxt),
            restart_field=RESTART_FIELD,
            xsrf=self.xsrf_token.decode("ascii"),
        )
        self.finish(html)

    @needs_scope("servers")
    async def _restart(self, user_name):
        user = self.current_user
        spawner = user.spawner
        form = {k: [v.decode("utf8", "replace") for v in vs]
                for k, vs in self.request.body_arguments.items() if k not in ("_xsrf", RESTART_FIELD)}
        # Vetted before anything stops: a refused restart leaves the running server alone.
        options = spawner.options_from_form(form)
        if spawner.pending:
            raise web.HTTPError(409, f"Your server is {spawner.pending}ing; try the link again in a moment.")
        if spawner.ready:
            self.log.info("One-click link: restarting %s on %s", spawner._log_name, options.get("profile"))
            await self.stop_single_user(user, "")
            if spawner._stop_future:  # a slow stop goes on in the background: wait for its end
                await spawner._stop_future
        return await self._wrap_spawn_single_user(user, "", "", spawner, self._get_pending_url(user, ""), options)


def install() -> None:
    """Put ``LinkSpawnHandler`` in place of JupyterHub's ``/spawn...`` handlers (idempotent).

    Tornado takes the first matching route and ``extra_handlers`` come after the defaults, so the
    entry is replaced in the table JupyterHub reads when it builds its application.
    """
    for table in (handlers.default_handlers, pages.default_handlers):
        for i, entry in enumerate(table):
            if entry[0].startswith(r"/spawn") and entry[1] is pages.SpawnHandler:
                table[i] = (entry[0], LinkSpawnHandler)
