"""Helpers the workshop service tests share: a trainer account, the service's forms, participants' cleanup."""
from __future__ import annotations

import pwd
import re

import requests

from testbed.accounts import CREATED
from testbed.hub import HubProcess, Learner, make_learner

SERVICE = "/services/academy/"


def service_url(hub: HubProcess, path: str = "") -> str:
    return f"{hub.url}{SERVICE}{path}"


def admin_session(hub: HubProcess) -> requests.Session:
    return hub.login("admin", hub.admin_password)


def admin_token(hub: HubProcess) -> str:
    return hub.token_for(admin_session(hub), "admin", note="workshop-tests")


def make_trainer(hub: HubProcess, prefix: str = "trainer") -> Learner:
    """A native account in the configured trainer group, logged in."""
    t = make_learner(hub, prefix)
    r = hub.api("POST", "/groups/trainers/users", admin_token(hub), json={"users": [t.name]})
    assert r.status_code == 200, r.text
    return t


def xsrf(session: requests.Session, hub: HubProcess, path: str) -> str:
    r = session.get(service_url(hub, path), timeout=60)
    assert r.status_code == 200, (r.status_code, r.text[:500])
    return re.search(r'name="_xsrf" value="([^"]+)"', r.text).group(1)


def workshop_form(slug: str, **over) -> dict:
    form = {"slug": slug, "title": f"Workshop {slug}", "start": "2030-03-02T09:00", "end": "2030-03-02T17:00",
            "profiles": "cpu", "count": "2", "reservation": "", "usernames": ""}
    form.update(over)
    return form


def post_form(session: requests.Session, hub: HubProcess, path: str, form: dict) -> requests.Response:
    token = xsrf(session, hub, "new" if path == "new" else path.rsplit("/", 1)[0])
    return session.post(service_url(hub, path), data={"_xsrf": token, **form}, timeout=120)


def sheet_credentials(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="username">([^<]+)</code> · Password <code class="password">([^<]+)</code>', html))


def track(*names: str) -> None:
    """Participants' acad- Unix accounts go with the hub's other test accounts."""
    CREATED.extend(names)


def unix_account(name: str):
    try:
        return pwd.getpwnam(f"acad-{name}")
    except KeyError:
        return None
