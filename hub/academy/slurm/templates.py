"""Render a batch-script template file: unknown names are errors, and ``|q`` shell-quotes a value.

Every batch script the academy submits comes from a template in ``spawner_config/`` (a learner's
server, ``slurm.sh.j2``; the course's grading array, ``autograde.sh.j2``) and is rendered here, by one
set of rules: callers check every value before it gets here, ``#SBATCH`` values come from patterns
without spaces or quotes, and shell lines quote each value with ``|q``.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import jinja2


class ScriptError(ValueError):
    """A value cannot be put into a batch script safely; the message names it."""


def render_template(template_path: str | Path, **values) -> str:
    """Render the template file with ``values``; a missing or broken template is a ``ScriptError``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(template_path).parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = shlex.quote
    try:
        template = env.get_template(Path(template_path).name)
    except jinja2.TemplateNotFound:
        raise ScriptError(f"batch script template {template_path} not found") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ScriptError(f"{template_path}:{exc.lineno}: {exc.message}") from None
    return template.render(**values)
