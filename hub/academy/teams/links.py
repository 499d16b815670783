"""The ``~/team-<group>`` links in a learner's home, made and removed as the learner (never as root).

The learner owns their home and may plant anything at a link's path; so this runs with the learner's
uid (``python -m academy.teams.links``, started by the hub with its privileges dropped, or through the
Slurm ``exec_prefix``), looks at the path with ``lstat`` only, and never writes through what it finds:
a missing path gets the link, our own link is kept, anything else (a file, a folder, a link elsewhere)
is left alone and reported. A link to a team the learner has left is removed only when it is exactly
the link we made.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

LINK_PREFIX = "team-"


@dataclass
class LinkReport:
    """What one pass did, by link name."""

    made: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "name: why"


def link_name(group: str) -> str:
    return f"{LINK_PREFIX}{group}"


def sync_links(home: str | os.PathLike, wanted: dict[str, str], stale: dict[str, str]) -> LinkReport:
    """In ``home``: a link ``team-<group>`` -> target for each of ``wanted``, and our own links of ``stale`` gone."""
    report = LinkReport()
    home = Path(home)
    if home.is_symlink() or not home.is_dir():
        report.refused.append(f"{home}: the home is not a folder")
        return report
    for group, target in sorted(wanted.items()):
        name = link_name(group)
        path = home / name
        try:
            current = os.readlink(path)
        except FileNotFoundError:
            try:
                os.symlink(target, path)
            except FileExistsError:  # planted between the look and the link
                report.refused.append(f"{name}: something else appeared there; left as it is")
                continue
            report.made.append(name)
            continue
        except OSError:  # exists but is no link: a file or folder of the learner's
            report.refused.append(f"{name}: something else is there (not our link); left as it is")
            continue
        if current == target:
            report.kept.append(name)
        else:
            report.refused.append(f"{name}: a link to {current[:200]!r} is there (not our link); left as it is")
    for group, target in sorted(stale.items()):
        name = link_name(group)
        path = home / name
        try:
            if os.readlink(path) == target:
                os.unlink(path)
                report.removed.append(name)
        except OSError:
            pass
    return report


def sync_as(home: str, wanted: dict[str, str], stale: dict[str, str], *, preexec_fn=None,
            prefix: list[str] | None = None, env: dict | None = None) -> LinkReport:
    """``sync_links`` in a child process as the learner: ``preexec_fn`` drops privileges (local backend),
    or ``prefix`` is the Slurm backend's ``exec_prefix`` words (``runuser -u NAME --``)."""
    argv = [*(prefix or []), sys.executable, "-m", "academy.teams.links", home,
            json.dumps({"wanted": wanted, "stale": stale})]
    proc = subprocess.run(argv, preexec_fn=preexec_fn, env=env, capture_output=True, text=True, timeout=60, cwd="/")
    if proc.returncode != 0:
        raise RuntimeError(f"team links failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return LinkReport(**json.loads(proc.stdout))


def main(argv: list[str]) -> int:
    home, spec = argv
    data = json.loads(spec)
    print(json.dumps(asdict(sync_links(home, data["wanted"], data["stale"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
