"""Project templates: read and validate their manifests, validate names, and create a project folder from one.

A template is a folder ``<templates dir>/<slug>/`` holding ``template.yaml`` (the manifest: title,
description, notebook) and the files a new project starts with. Creating a project copies the
folder, without the manifest, to ``<home>/<name>``: the name and the slug are checked by one
function (:func:`check_name`), used by the CLI and the server extension alike, and an existing
file or folder is never overwritten. It runs as the user whose home it writes to (the CLI is run by
them; the server extension runs as the learner), so it needs no privilege and grants none.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from academy.probes import PROJECT_ROOT

MANIFEST = "template.yaml"
DIR_ENV = "ACADEMY_PROJECT_TEMPLATES"
MAX_NAME = 64
# Letters, digits, '-' and '_', starting with a letter or digit: no path separators, no leading dot,
# nothing a shell or a Slurm job name would read as syntax.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
MANIFEST_KEYS = {"title": "one line shown in the Launcher and `academy project list`",
                 "description": "a sentence or two on what the template trains and on what data",
                 "notebook": "the notebook to open first, relative to the template folder"}
# Never copied into a project: the manifest, and what a run of the template's own folder leaves.
SKIPPED = {MANIFEST, "__pycache__", ".ipynb_checkpoints"}


class ProjectError(ValueError):
    """A refused request (bad name, unknown template, existing folder): its text says why; nothing was created."""


class ProjectExists(ProjectError):
    """The name is taken in the home (a file, folder or link): nothing is overwritten."""


@dataclass(frozen=True)
class Template:
    """One project template, as its manifest describes it."""

    slug: str
    title: str
    description: str
    notebook: str
    path: Path

    def as_json(self) -> dict:
        return {"slug": self.slug, "title": self.title, "description": self.description, "notebook": self.notebook}


def templates_dir() -> Path:
    """``$ACADEMY_PROJECT_TEMPLATES``, else the repository's ``notebooks/templates``."""
    return Path(os.environ.get(DIR_ENV) or PROJECT_ROOT / "notebooks" / "templates")


def check_name(name: object, what: str = "project name") -> str:
    """``name`` when it is a safe folder name, else a ``ProjectError`` saying what is wrong with it."""
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{what}: give a name")
    if len(name) > MAX_NAME:
        raise ProjectError(f"{what} {name[:20]!r}...: at most {MAX_NAME} characters, not {len(name)}")
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ProjectError(f"{what} {name!r}: a name, not a path (no '/')")
    if name.startswith("."):
        raise ProjectError(f"{what} {name!r}: may not start with '.' (hidden)")
    if not NAME_RE.fullmatch(name):  # fullmatch: "$" alone would let a trailing newline through
        raise ProjectError(f"{what} {name!r}: use only letters, digits, '-' and '_', starting with a letter or digit")
    return name


def load_template(folder: Path) -> Template:
    """The template in ``folder``; a missing or invalid manifest is a ``ProjectError`` naming the key."""
    import yaml

    folder = Path(folder)
    slug = check_name(folder.name, "template name")
    manifest = folder / MANIFEST
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProjectError(f"template {slug!r}: cannot read {MANIFEST} ({exc})") from None
    if not isinstance(data, dict):
        raise ProjectError(f"template {slug!r}: {MANIFEST} must be a mapping of {', '.join(MANIFEST_KEYS)}")
    unknown = sorted(set(map(str, data)) - set(MANIFEST_KEYS))
    if unknown:
        raise ProjectError(f"template {slug!r}: {MANIFEST}: unknown key {unknown[0]!r} (known: {', '.join(MANIFEST_KEYS)})")
    for key, meaning in MANIFEST_KEYS.items():
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ProjectError(f"template {slug!r}: {MANIFEST}: {key!r} must be a non-empty text ({meaning})")
    notebook = data["notebook"]
    if Path(notebook).is_absolute() or ".." in Path(notebook).parts or not (folder / notebook).is_file():
        raise ProjectError(f"template {slug!r}: {MANIFEST}: 'notebook' {notebook!r} is not a file of the template")
    return Template(slug, data["title"].strip(), " ".join(data["description"].split()), notebook, folder)


def list_templates(root: Path | None = None) -> list[Template]:
    """Every template under ``root`` (default :func:`templates_dir`), by slug; one invalid template is an error."""
    root = Path(root or templates_dir())
    if not root.is_dir():
        raise ProjectError(f"no project templates at {root}")
    return [load_template(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / MANIFEST).exists()]


def find_template(slug: object, root: Path | None = None) -> Template:
    slug = check_name(slug, "template name")
    templates = list_templates(root)
    for template in templates:
        if template.slug == slug:
            return template
    raise ProjectError(f"no template {slug!r} (known: {', '.join(t.slug for t in templates) or 'none'})")


def _copy_tree(source: Path, dest: Path) -> None:
    """Copy regular files and folders only (a symlink in a template is not followed), keeping modes."""
    for entry in sorted(source.iterdir()):
        if entry.name in SKIPPED or entry.is_symlink():
            continue
        target = dest / entry.name
        if entry.is_dir():
            target.mkdir()
            _copy_tree(entry, target)
        elif entry.is_file():
            shutil.copyfile(entry, target)
            mode = 0o755 if entry.stat().st_mode & stat.S_IXUSR else 0o644
            os.chmod(target, mode)


def create_project(template_slug: object, name: object, home: Path | None = None, root: Path | None = None) -> Path:
    """Create ``<home>/<name>`` from the template; returns the new folder.

    Refused (``ProjectError``, nothing created) for a bad name or slug, an unknown template, or a
    name already taken in ``home`` (a file, a folder or a symlink: nothing is ever overwritten).
    ``mkdir`` is the claim, so two requests for one name cannot both win.
    """
    name = check_name(name)
    template = find_template(template_slug, root)
    home = Path(home if home is not None else Path.home())
    if not home.is_dir():
        raise ProjectError(f"home folder {home} does not exist")
    dest = home / name
    try:
        dest.mkdir(mode=0o755)
    except FileExistsError:
        raise ProjectExists(f"{name!r} already exists in your home: choose another name (nothing was changed)") from None
    try:
        _copy_tree(template.path, dest)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # ours alone: we created it a moment ago
        raise
    return dest
