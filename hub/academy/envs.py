"""Own Python environments: a learner's named venv on top of the shared one, registered as a Jupyter kernel.

An environment is ``~/.academy/envs/<name>``: a venv made with ``--system-site-packages`` that also
sees the shared environment's packages (the shared environment is itself a venv, so a ``.pth`` line
adds its site directory), and a kernel spec ``academy-<name>`` in the user's Jupyter data dir.
Packages come from the configured index (pip reads ``PIP_INDEX_URL``, which the hub sets from
``envs.index_url``).  Everything runs as the calling user and only writes into their home, so it
works the same on the hub machine and inside a Slurm job (homes on the shared file system).

Names are checked against a strict pattern (no path characters) and every package spec must parse
as a PEP 508 requirement from an index (no URLs, no options); pip is run with an argument list,
never through a shell.  Used by ``academy env`` (:mod:`academy.env`) and by the ``academy.labtools`` server extension.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from packaging.requirements import InvalidRequirement, Requirement

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
KERNEL_PREFIX = "academy-"
MARKER = "academy-env.json"
MAX_PACKAGES = 50
MAX_SPEC_LENGTH = 200


class EnvError(ValueError):
    """A refused request; the message says which field and why."""


@dataclass
class EnvInfo:
    """One environment as ``academy env list`` and ``GET academy/api/envs`` show it."""

    name: str
    kernel: str
    path: str
    packages: list[str] = field(default_factory=list)
    created: str = ""


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise EnvError(
            f"name {name!r}: use 1-32 lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return name


def check_packages(specs: object) -> list[str]:
    """Each spec must be a plain requirement from the index, e.g. ``rich>=13`` or ``numpy==1.26.4``."""
    if not isinstance(specs, list) or len(specs) > MAX_PACKAGES:
        raise EnvError(f"packages: expected a list of at most {MAX_PACKAGES} requirement strings")
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, str) or not spec.strip() or len(spec) > MAX_SPEC_LENGTH:
            raise EnvError(f"packages[{i}]: expected a requirement such as 'rich>=13'")
        spec = spec.strip()
        if spec.startswith("-"):
            raise EnvError(f"packages[{i}] {spec!r}: pip options are not accepted, only package names")
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise EnvError(f"packages[{i}] {spec!r}: not a package requirement ({exc})") from None
        if req.url:
            raise EnvError(f"packages[{i}] {spec!r}: packages come from the configured index, not from URLs")
        out.append(str(req))
    return out


def envs_root(home: Path | None = None) -> Path:
    return (home or Path.home()) / ".academy" / "envs"


def kernels_root(home: Path | None = None) -> Path:
    if home is None:
        return Path(jupyter_data_dir()) / "kernels"
    return home / ".local" / "share" / "jupyter" / "kernels"


def shared_site_packages() -> str:
    """The shared environment's site directory (the interpreter this code runs in)."""
    return sysconfig.get_paths()["purelib"]


def _env_python(path: Path) -> Path:
    return path / "bin" / "python"


def _env_site(path: Path) -> Path:
    found = sorted((path / "lib").glob("python3*/site-packages"))
    if not found:
        raise EnvError(f"{path}: not a Python environment")
    return found[0]


def _run(cmd: list[str], log) -> None:
    log(" ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise EnvError(f"{cmd[0]} {' '.join(cmd[1:4])} … failed (exit {proc.returncode}):\n{tail}")


def pip_install(name: str, specs: list[str], home: Path | None = None, log=lambda _m: None) -> None:
    """Install requirements into an existing environment from the configured index."""
    path = envs_root(home) / check_name(name)
    if not (path / MARKER).exists():
        raise EnvError(f"name {name!r}: no such environment")
    specs = check_packages(specs)
    if specs:
        _run([str(_env_python(path)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", *specs], log)
    marker = json.loads((path / MARKER).read_text())
    marker["requested"] = sorted(set(marker.get("requested", [])) | set(specs))
    (path / MARKER).write_text(json.dumps(marker))


def create(name: str, packages: list[str] | None = None, home: Path | None = None, log=lambda _m: None) -> EnvInfo:
    """Create the venv, make it see the shared packages, register its kernel, install ``packages``."""
    name = check_name(name)
    specs = check_packages(packages or [])
    path = envs_root(home) / name
    if path.exists():
        raise EnvError(f"name {name!r}: an environment of that name exists (remove it first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # pip comes from the shared environment (seen through the .pth below), which saves a
        # copy per environment and keeps pip the version the site tested.
        _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)], log)
        site = _env_site(path)
        shared = shared_site_packages()
        # Processed after the env's own site-packages, so what the learner installs wins; addsitedir
        # also reads the shared env's own .pth files (editable installs).
        (site / "_academy_shared.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
        (path / MARKER).write_text(json.dumps({"name": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "requested": []}))
        _write_kernel(name, path, home)
        if specs:
            pip_install(name, specs, home, log)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(kernels_root(home) / f"{KERNEL_PREFIX}{name}", ignore_errors=True)
        raise
    return info(name, home)


def _write_kernel(name: str, path: Path, home: Path | None) -> None:
    kdir = kernels_root(home) / f"{KERNEL_PREFIX}{name}"
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [str(_env_python(path)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({name})",
        "language": "python",
        "metadata": {"academy_env": name},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec, indent=1))


def info(name: str, home: Path | None = None) -> EnvInfo:
    path = envs_root(home) / check_name(name)
    marker = json.loads((path / MARKER).read_text())
    dists = metadata.distributions(path=[str(_env_site(path))])
    packages = sorted({f"{d.metadata['Name']}=={d.version}" for d in dists if d.metadata["Name"]}, key=str.lower)
    return EnvInfo(name, f"{KERNEL_PREFIX}{name}", str(path), packages, marker.get("created", ""))


def list_envs(home: Path | None = None) -> list[EnvInfo]:
    root = envs_root(home)
    if not root.is_dir():
        return []
    return [info(p.name, home) for p in sorted(root.iterdir()) if NAME_RE.match(p.name) and (p / MARKER).exists()]


def remove(name: str, home: Path | None = None) -> None:
    path = envs_root(home) / check_name(name)
    if not (path / MARKER).exists():
        raise EnvError(f"name {name!r}: no such environment")
    shutil.rmtree(kernels_root(home) / f"{KERNEL_PREFIX}{name}", ignore_errors=True)
    shutil.rmtree(path)
