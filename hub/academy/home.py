"""Deliver the curriculum into a user's home without ever overwriting a file the user changed.

A manifest (``.academy-curriculum.json`` in the target folder) records the hash of each
file as delivered. On every spawn a file is copied when it is missing (so deleting a
lesson restores it, as nbgitpuller does), updated when the user left it untouched and
the curriculum changed, and left alone when the user edited it. The lesson code beside the
notebooks (``lessons/``: checkers and solutions) is never delivered. When the hub is root
the copy runs as the user (``python -m academy.home``), so a symlink planted in the
home cannot redirect a root-owned write.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".academy-curriculum.json"
SKIP_PARTS = {".ipynb_checkpoints", "__pycache__"}
# Top-level folders of a curriculum for its authors, never delivered: ``lessons/`` is the lesson
# code (installed as ``academy_lessons``), every exercise's checker and solution; ``templates/`` the
# project templates, copied into a home only on request (``academy project new``, the Launcher).
AUTHOR_ONLY = frozenset({"lessons", "templates"})


@dataclass
class SyncReport:
    """What one delivery did, by relative path."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept_user_changes: list[str] = field(default_factory=list)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_files(source: Path) -> list[Path]:
    return sorted(
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and not p.is_symlink() and not (SKIP_PARTS & set(p.parts)) and not p.name.startswith(".")
        and p.relative_to(source).parts[0] not in AUTHOR_ONLY
    )


def author_only(source: Path, path: Path) -> bool:
    """Whether ``path`` is, or lies in, a folder of the curriculum ``source`` that is never delivered."""
    try:
        rel = Path(path).resolve().relative_to(Path(source).resolve())
    except ValueError:
        return False
    return bool(rel.parts) and rel.parts[0] in AUTHOR_ONLY


def _safe_target(dest: Path, rel: Path) -> Path:
    """Refuse to write through a symlink anywhere under the user's folder."""
    path = dest
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise PermissionError(f"refusing to write through symlink {path}")
    return path


def sync_curriculum(source: Path, dest: Path) -> SyncReport:
    """Copy ``source`` into ``dest`` under the manifest rules; run as the home's owner."""
    source, dest = Path(source), Path(dest)
    report = SyncReport()
    if dest.is_symlink():
        raise PermissionError(f"refusing to write through symlink {dest}")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    try:
        delivered: dict[str, str] = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        delivered = {}
    for rel in _source_files(source):
        key = rel.as_posix()
        src = source / rel
        target = _safe_target(dest, rel)
        new_hash = _digest(src)
        if target.exists():
            current = _digest(target)
            if delivered.get(key) != current:
                if current != new_hash:
                    report.kept_user_changes.append(key)
                continue
            if current == new_hash:
                continue
            report.updated.append(key)
        else:
            report.copied.append(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.academy-tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        delivered[key] = new_hash
    tmp_manifest = manifest_path.with_name(MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(delivered, indent=1, sort_keys=True))
    os.replace(tmp_manifest, manifest_path)
    return report


def sync_as_user(source: Path, dest: Path, preexec_fn=None, env: dict | None = None) -> SyncReport:
    """Run ``sync_curriculum`` in a child process with the user's uid (``preexec_fn`` drops privileges)."""
    proc = subprocess.run(
        [sys.executable, "-m", "academy.home", str(source), str(dest)],
        preexec_fn=preexec_fn,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"curriculum delivery failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return SyncReport(**json.loads(proc.stdout))


def main(argv: list[str]) -> int:
    source, dest = argv
    report = sync_curriculum(Path(source), Path(dest))
    print(json.dumps(report.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
