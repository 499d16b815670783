"""Root's side of team folders: the names, the folder (root:<group>, setgid, 2770, default ACL), the Unix
group's members, and a cheap measure of disk use.

A hub group ``ml-team`` gets the Unix group ``acadteam-ml-team`` (prefix from the site config) and the
folder ``<root>/ml-team``. Names are checked here again (the schema checks the site config), because a
name reaches ``groupadd``, ``gpasswd`` and a path. Every command is an argument list, never a shell.
"""
from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import stat
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# Debian's groupadd takes at most 32 characters; with the prefix (at most 9) a team name keeps 23.
TEAM_RE = re.compile(r"^[a-z][a-z0-9_-]{0,22}$")
PREFIX_RE = re.compile(r"^[a-z][a-z0-9_-]{0,8}$")
FOLDER_MODE = 0o2770
# /etc/group is locked by each groupadd/gpasswd; starts of a whole class come at once, so one at a time.
_GROUP_LOCK = threading.Lock()


class TeamError(ValueError):
    """A team name, prefix or folder that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Team:
    """One hub group's team folder."""

    group: str  # the hub group
    unix_group: str
    path: Path


@dataclass(frozen=True)
class Usage:
    """Disk use of one folder as measured by ``measure``."""

    bytes: int
    files: int
    complete: bool  # False: the time budget ran out, so the figures are a lower bound
    measured_at: float


def team(group: str, root: str | os.PathLike, prefix: str = "acadteam-") -> Team:
    """The checked names of ``group``'s team folder; ``TeamError`` for a name with other characters."""
    if not isinstance(group, str) or not TEAM_RE.match(group):
        raise TeamError(f"team_folders.groups: {str(group)[:40]!r} cannot be a team folder: use lower-case "
                        "letters, digits, '-' and '_' (at most 23, starting with a letter)")
    if not PREFIX_RE.match(prefix):
        raise TeamError(f"team_folders.unix_group_prefix: {prefix[:20]!r} is not a valid Unix group prefix")
    if not os.path.isabs(str(root)):
        raise TeamError(f"team_folders.root: {str(root)!r} must be an absolute path")
    return Team(group, f"{prefix}{group}", Path(root) / group)


def gid_of(unix_group: str) -> int | None:
    try:
        return grp.getgrnam(unix_group).gr_gid
    except KeyError:
        return None


def in_group(account: str, unix_group: str) -> bool:
    """Whether the system (files, LDAP/sssd: whatever NSS says) puts ``account`` in ``unix_group``."""
    gid = gid_of(unix_group)
    try:
        entry = pwd.getpwnam(account)
    except KeyError:
        return False
    return gid is not None and gid in os.getgrouplist(account, entry.pw_gid)


def _run(argv: list[str]) -> None:
    """A group command, retried briefly: useradd (a workshop making accounts) may hold /etc/group's lock."""
    for attempt in range(5):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return
        time.sleep(0.2 * (attempt + 1))
    raise OSError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")


def ensure_unix_group(t: Team) -> int:
    """As root: the team's Unix group (a system group), made if missing; returns its gid."""
    with _GROUP_LOCK:
        gid = gid_of(t.unix_group)
        if gid is None:
            made = subprocess.run(["groupadd", "--system", t.unix_group], capture_output=True, text=True, timeout=30)
            gid = gid_of(t.unix_group)
            if gid is None:
                raise OSError(f"groupadd {t.unix_group} failed: {made.stderr.strip() or made.returncode}")
        return gid


def set_member(t: Team, account: str, member: bool) -> bool:
    """As root: add ``account`` to (or remove it from) the team's Unix group; True when that changed anything."""
    with _GROUP_LOCK:
        try:
            members = grp.getgrnam(t.unix_group).gr_mem
        except KeyError:
            return False
        if member == (account in members):
            return False
        _run(["gpasswd", "--add" if member else "--delete", account, t.unix_group])
        return True


def _acl(entries: list[tuple[int, int]]) -> bytes:
    """A POSIX ACL in the kernel's xattr form (version 2; ids unused for the owner/group/mask/other entries)."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in entries)


# Default ACL: owner, group and mask rwx, others nothing, so files a member makes are writable by the
# team whatever that member's umask (a default ACL replaces the umask for new files and folders).
DEFAULT_ACL = _acl([(0x01, 7), (0x04, 7), (0x10, 7), (0x20, 0)])


def ensure_folder(t: Team, gid: int) -> bool:
    """As root: ``<root>/<group>`` owned root:<gid>, mode 2770, with the default ACL; False when the
    filesystem has no POSIX ACLs (then members' own umask decides whether others may edit their files)."""
    root = Path(t.path).parent
    root.mkdir(parents=True, exist_ok=True)
    # Others may pass through the root to their own team's folder, but not list which teams exist.
    if os.stat(root).st_uid == 0:
        os.chmod(root, 0o711)
    try:
        os.mkdir(t.path, 0o700)
    except FileExistsError:
        pass
    # Never chown or chmod what a path resolves to: the folder must be a real folder of root's.
    fd = os.open(t.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise TeamError(f"{t.path} is not a folder")
        os.fchown(fd, 0, gid)
        os.fchmod(fd, FOLDER_MODE)
        try:
            os.setxattr(fd, "system.posix_acl_default", DEFAULT_ACL)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL):
                return False
            raise
        return True
    finally:
        os.close(fd)


def measure(path: str | os.PathLike, budget_seconds: float = 2.0) -> Usage:
    """Disk use of ``path`` (allocated blocks, hard links once, symlinks not followed), walked with
    ``os.scandir`` for at most ``budget_seconds``; an unreadable folder makes the figures a lower bound too."""
    deadline = time.monotonic() + budget_seconds
    total = files = 0
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(path)]
    complete = True
    while stack:
        if time.monotonic() > deadline:
            complete = False
            break
        try:
            entries = os.scandir(stack.pop())
        except OSError:  # a folder this caller may not read: what it holds is not counted
            complete = False
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    total += st.st_blocks * 512
                    continue
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
                files += 1
    return Usage(total, files, complete, time.time())


def human(n: int) -> str:
    """``1.5 GiB``: sizes as the status bar and ``academy teams`` print them."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
