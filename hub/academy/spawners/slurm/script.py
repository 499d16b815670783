"""Render the Slurm batch script (``spawner_config/slurm.sh.j2``) from vetted values only.

batchspawner renders its script from every ``req_*`` trait *and* every ``user_options`` key,
so whatever a user posts can land in the script. Here the template sees one ``ScriptContext``:
the profile (validated ``profiles.yaml``), the hours (checked against that profile), names and
paths checked against strict patterns, and the ``q`` filter (``shlex.quote``) for shell lines
(:mod:`academy.slurm.templates`, the renderer every batch script shares).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from academy.profiles import Profile
from academy.slurm.templates import ScriptError, render_template

PATH_RE = re.compile(r"^/[A-Za-z0-9_.@+/-]*$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _path(value: str, what: str) -> str:
    if not PATH_RE.match(value) or "/../" in value + "/":
        raise ScriptError(f"{what}: {value[:80]!r} is not a plain absolute path")
    return value


@dataclass(frozen=True)
class ScriptContext:
    """Everything the batch-script template may use; built by ``build_context``."""

    job_name: str
    username: str
    home: str
    log_path: str
    profile: Profile
    hours: int
    python_env: str
    command: list[str]
    export: list[str]
    curriculum_source: str = ""
    curriculum_target: str = ""
    jobrc: str = ""

    @property
    def time_limit(self) -> str:
        return f"{self.hours:02d}:00:00"

    @property
    def walltime_seconds(self) -> int:
        return self.hours * 3600

    @property
    def python(self) -> str:
        return f"{self.python_env}/bin/python"

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(part) for part in self.command)


def build_context(*, username: str, home: str, job_name: str, profile: Profile, hours: int, python_env: str,
                  command: list[str], export: list[str], log_dir: str, curriculum_source: str = "",
                  curriculum_target: str = "", jobrc: str = "") -> ScriptContext:
    """Check every value once, here, so the template can stay a plain template."""
    if not 1 <= hours <= profile.max_hours:
        raise ScriptError(f"hours: {hours} is outside 1..{profile.max_hours}")
    if not JOB_NAME_RE.match(job_name):
        raise ScriptError(f"job name {job_name[:80]!r} has characters Slurm or the shell would misread")
    bad = [name for name in export if not ENV_NAME_RE.match(name)]
    if bad:
        raise ScriptError(f"environment variable name {bad[0][:80]!r} is not exportable")
    if curriculum_target and not re.match(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$", curriculum_target):
        raise ScriptError(f"curriculum target {curriculum_target[:80]!r} is not a plain folder name")
    if jobrc and (jobrc.startswith("/") or ".." in jobrc.split("/") or not PATH_RE.match("/" + jobrc)):
        raise ScriptError(f"jobrc {jobrc[:80]!r} must be a plain path relative to the home directory")
    return ScriptContext(
        job_name=job_name,
        username=username,
        home=_path(home, "home directory"),
        log_path=_path(log_dir, "log directory") + "/slurm-%j.log",
        profile=profile,
        hours=hours,
        python_env=_path(python_env.rstrip("/"), "python_env"),
        command=list(command),
        export=sorted(set(export)),
        curriculum_source=_path(curriculum_source, "curriculum source") if curriculum_source else "",
        curriculum_target=curriculum_target,
        jobrc=jobrc,
    )


def render(template_path: str | Path, ctx: ScriptContext) -> str:
    """Render the template file with ``ctx``; unknown names in the template are errors, not blanks."""
    return render_template(template_path, ctx=ctx, profile=ctx.profile)
