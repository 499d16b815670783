"""Load YAML and validate it against the package's JSON Schemas, with errors that name the key path."""
from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jsonschema


class ConfigError(ValueError):
    """A config file is unreadable or invalid; ``str()`` is one line naming the file and key path."""


@functools.cache
def load_schema(name: str) -> dict:
    """The packaged schema ``academy/schema/<name>.schema.yaml``."""
    text = resources.files("academy").joinpath("schema", f"{name}.schema.yaml").read_text()
    return yaml.safe_load(text)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file, turning every failure into a ``ConfigError`` with file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None


def key_path(error: jsonschema.ValidationError) -> str:
    """Dotted path of the offending key, e.g. ``auth.oidc.client_id`` or ``profiles[2].hours.max``."""
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def describe(error: jsonschema.ValidationError) -> str:
    """One readable line for a schema error; unknown keys name their own path."""
    where = key_path(error)
    if error.validator == "additionalProperties":
        extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        base = "" if where == "(top level)" else where + "."
        return f"{', '.join(base + e for e in extras)}: unknown key (allowed: {', '.join(sorted(error.schema.get('properties', {})))})"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        base = "" if where == "(top level)" else where + "."
        return f"{base}{missing}: required key is missing"
    return f"{where}: {error.message}"


def validate(instance: Any, schema_name: str, source: str) -> None:
    """Raise ``ConfigError`` for the first (deepest, most specific) schema violation."""
    schema = load_schema(schema_name)
    # Imported here: jsonschema's import costs most of a second, which every `academy` command
    # would otherwise pay just to build its argument parser.
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    # Deepest first; at equal depth an unknown key wins, since a typo also causes "missing".
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (-len(e.absolute_path), e.validator != "additionalProperties", e.message),
    )
    if errors:
        raise ConfigError(f"{source}: {describe(errors[0])}")
