"""Find notebooks (the curriculum's, or any trainer's files and folders), resolve names, and parse ``-p name=value``."""
from __future__ import annotations

import fnmatch
import json
import keyword
import os
import re
from pathlib import Path
from typing import Any

from academy.curriculum.results import Target
from academy.probes import PROJECT_ROOT

NOTEBOOK_RE = re.compile(r"^(?P<number>\d{2})_(?P<slug>[a-z0-9][a-z0-9_]*)\.ipynb$")
DIR_ENV = "ACADEMY_NOTEBOOKS_DIR"


def default_notebooks_dir() -> Path:
    """``$ACADEMY_NOTEBOOKS_DIR``, else ``./notebooks``, else the repository's ``notebooks/``."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    return PROJECT_ROOT / "notebooks"


def curriculum_notebooks(directory: Path) -> list[Path]:
    """The ``NN_slug.ipynb`` notebooks of ``directory``, in curriculum order."""
    if not directory.is_dir():
        raise FileNotFoundError(f"notebooks directory {directory} does not exist")
    return sorted(p for p in directory.iterdir() if p.is_file() and NOTEBOOK_RE.match(p.name))


def stray_notebooks(directory: Path) -> list[Path]:
    """Notebooks beside the curriculum that do not follow ``NN_slug.ipynb`` (e.g. ``Untitled.ipynb``)."""
    return sorted(p for p in directory.glob("*.ipynb") if not NOTEBOOK_RE.match(p.name))


def select(notebooks: list[Path], names: list[str]) -> list[Path]:
    """The notebooks named by number (``3``, ``03``), stem (``03_classical_ml``), slug or file name.

    Keeps curriculum order and drops duplicates; an unknown name is a ``ValueError``
    listing what exists, so a typo never silently runs nothing.
    """
    if not names:
        return list(notebooks)
    chosen: set[Path] = set()
    for raw in names:
        token = raw.strip()
        matches = [nb for nb in notebooks if _matches(nb, token)]
        if not matches:
            known = ", ".join(nb.stem for nb in notebooks) or "none"
            raise ValueError(f"no curriculum notebook matches {raw!r} (known: {known})")
        chosen.update(matches)
    return [nb for nb in notebooks if nb in chosen]


def _matches(nb: Path, token: str) -> bool:
    m = NOTEBOOK_RE.match(nb.name)
    if m is None:
        return False
    if token.isdigit():
        return int(token) == int(m["number"])
    token = token.removesuffix(".ipynb")
    return token in {nb.stem, m["slug"]} or Path(token).name == nb.stem


def _skipped_dir(name: str) -> bool:
    return name.startswith(".") or name in {"__pycache__", "node_modules", "site-packages"}


def excluded(rel: str, patterns: list[str]) -> bool:
    """``--exclude`` globs match the path relative to its root, any trailing part of it, or a folder on it."""
    parts = rel.split("/")
    tails = ["/".join(parts[i:]) for i in range(len(parts))]
    folders = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)] + parts[:-1]
    return any(fnmatch.fnmatchcase(candidate, pattern.rstrip("/")) for pattern in patterns for candidate in tails + folders)


#: Sub-folders of the curriculum folder that are a track of their own, run only when named
#: (``academy curriculum test notebooks/templates``): the project templates are not lessons.
SEPARATE_TRACKS = frozenset({"templates"})


def find_notebooks(paths: list[Path], exclude: list[str] = (), curriculum_dir: Path | None = None) -> list[Target]:
    """Every ``.ipynb`` under ``paths`` (files, or folders walked recursively), named relative to the path given.

    Hidden folders (``.git``, ``.ipynb_checkpoints``, ``.venv``...) and ``__pycache__`` are
    skipped, and so are hidden notebook files, and the curriculum folder's :data:`SEPARATE_TRACKS` when that folder
    itself is given. A notebook of the Academy's curriculum (an ``NN_slug.ipynb`` directly in
    ``curriculum_dir``) is named by its stem and keeps the house rules. A path that does not
    exist is a ``FileNotFoundError``; a file that is not ``.ipynb`` a ``ValueError``.
    """
    house_dir = curriculum_dir.resolve() if curriculum_dir is not None and curriculum_dir.is_dir() else None
    found: list[tuple[Path, str]] = []
    for given in paths:
        if given.is_file():
            if given.suffix != ".ipynb":
                raise ValueError(f"{given} is not a notebook (.ipynb)")
            found.append((given, given.name))
        elif given.is_dir():
            top = given.resolve() == house_dir
            for folder, dirs, files in os.walk(given):
                dirs[:] = sorted(d for d in dirs if not _skipped_dir(d)
                                 and not (top and Path(folder) == given and d in SEPARATE_TRACKS))
                for name in sorted(files):
                    if name.endswith(".ipynb") and not name.startswith("."):
                        path = Path(folder) / name
                        found.append((path, path.relative_to(given).as_posix()))
        else:
            raise FileNotFoundError(f"no notebook, folder or curriculum notebook named {str(given)!r}")
    targets: list[Target] = []
    seen: set[Path] = set()
    names: set[str] = set()
    for path, rel in found:
        if excluded(rel, list(exclude)) or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        house = house_dir is not None and path.resolve().parent == house_dir and NOTEBOOK_RE.match(path.name) is not None
        name = path.stem if house else rel
        if name in names:  # two roots with the same layout: fall back to the path as given
            name = path.as_posix()
        names.add(name)
        targets.append(Target(path, name, house))
    return targets


def parse_parameter(text: str) -> tuple[str, Any]:
    """``name=value`` with papermill-like typing: True/False/None, int, float, JSON list/dict, else str."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"parameter {text!r} must look like name=value with a Python identifier as name")
    return name, parse_value(raw.strip())


def parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"parameter value {raw!r} looks like JSON but does not parse: {exc.msg}") from None
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw
