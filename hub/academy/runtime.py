"""What `academy up` decides at start-up (ports, the proxy binary), handed to the hub process once.

The channel is one environment variable, ``$ACADEMY_RUNTIME``, holding a JSON object of the
fields of ``RunFacts``; ``RunFacts.to_env`` writes it (in ``academy up``) and ``read_runtime``
is its one reader (in ``siteconfig.hub_config``, which ``jupyterhub_config.py`` calls). An
environment variable lives exactly as long as the hub process it was given to, so a later
``jupyterhub -f hub/jupyterhub_config.py`` without ``academy up`` cannot pick up a stale
decision: it finds no variable and runs with the YAML's own values.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Mapping

from academy.validation import ConfigError

RUNTIME_ENV = "ACADEMY_RUNTIME"


@dataclass(frozen=True)
class RunFacts:
    """One run's facts; ``None`` leaves the YAML's value (or, with no YAML key, JupyterHub's default)."""

    port: int | None = None  # the public port: hub.port, or `academy up --port`
    hub_port: int | None = None  # the hub API's port: hub.hub_port, or a free one `academy up` picked
    proxy_api_port: int | None = None  # the proxy's REST API: a free one, so two hubs never share 8001
    proxy_cmd: str | None = None  # the configurable-http-proxy `academy up` checked before starting

    def to_env(self) -> dict[str, str]:
        """The environment entry that carries these facts to the hub process."""
        return {RUNTIME_ENV: json.dumps(asdict(self))}

    def site_overrides(self) -> dict:
        """The ports that replace a site-config key, shaped like the YAML (validated as it is).

        ``proxy_cmd`` is not among them: it is used as given (siteconfig.resolve_runtime), where a
        configured path would first be resolved against the project root."""
        hub = {"port": self.port, "hub_port": self.hub_port}
        return {"hub": {key: value for key, value in hub.items() if value is not None}}


def read_runtime(environ: Mapping[str, str] | None = None) -> RunFacts:
    """The facts `academy up` passed, or empty ones (a plain ``jupyterhub -f``); a garbled value is a ConfigError."""
    raw = (os.environ if environ is None else environ).get(RUNTIME_ENV, "")
    if not raw:
        return RunFacts()
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object is expected, not {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(RunFacts)}
        if unknown:
            raise TypeError(f"unknown field(s) {', '.join(sorted(unknown))}")
        facts = RunFacts(**data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"${RUNTIME_ENV}: {exc}") from None
    for name in ("port", "hub_port", "proxy_api_port"):
        value = getattr(facts, name)
        if value is not None and (type(value) is not int or not 0 < value < 65536):
            raise ConfigError(f"${RUNTIME_ENV}: {name}: {value!r} is not a port number")
    if facts.proxy_cmd is not None and not isinstance(facts.proxy_cmd, str):
        raise ConfigError(f"${RUNTIME_ENV}: proxy_cmd: {facts.proxy_cmd!r} is not a path")
    return facts
