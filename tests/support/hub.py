"""A real hub for one test module: ``running_hub()`` over testbed's ``HubProcess``, skipping without a proxy."""
from __future__ import annotations

import contextlib
import shutil

from academy.doctor_checks import find_proxy
from academy.siteconfig import DEFAULTS
from support.skip import need
from testbed.accounts import remove_accounts
from testbed.hub import REPO, HubProcess, shared_tmpdir


def proxy_available() -> bool:
    """Would `academy up` find configurable-http-proxy (the project's npm copy, then PATH)?"""
    return find_proxy({**DEFAULTS, "_root": str(REPO)}) is not None


@contextlib.contextmanager
def running_hub(prefix: str, site: dict | None = None):
    """A started hub in its own traversable temp dir; stopped, removed and de-accounted afterwards."""
    need(proxy_available(), "configurable-http-proxy (npm install)")
    h = HubProcess(shared_tmpdir(prefix), site=site or {}).start()
    try:
        yield h
    finally:
        h.stop()
        shutil.rmtree(h.workdir, ignore_errors=True)
        remove_accounts()
