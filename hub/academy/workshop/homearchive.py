"""Archive a participant's home into a root-only tarball without ever following a symlink.

A hostile participant can plant links to ``/etc/shadow`` or into another home, or swap a
file for a link while the archive is being made. The tree is walked with directory file
descriptors (``os.fwalk``) and each file opened with ``O_NOFOLLOW`` and checked with
``fstat``: a link is stored as a link, FIFOs, sockets and devices are left out, and the
tarball is written to a temp file (0600, root-owned when run as root) and renamed into place.
"""
from __future__ import annotations

import os
import stat
import tarfile
import tempfile
from pathlib import Path


def archive_home(home: Path, dest: Path) -> Path:
    """Pack ``home`` into ``dest`` (0600, owner root when run as root) without following any symlink."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in dest.parent.glob(f".{dest.name}.*"):
        stale.unlink(missing_ok=True)  # left by a run killed mid-archive: it holds the participant's files
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    os.fchmod(fd, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            if home.is_dir() and not home.is_symlink():
                _pack_tree(tar, home)
            raw.flush()
            os.fsync(raw.fileno())
        if os.geteuid() == 0:
            os.chown(tmp, 0, 0)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _pack_tree(tar: tarfile.TarFile, home: Path) -> None:
    root = home.name
    for dirpath, dirnames, filenames, dirfd in os.fwalk(home, follow_symlinks=False):
        rel = os.path.relpath(dirpath, home)
        base = root if rel == "." else f"{root}/{rel}"
        tar.addfile(_info(base, os.stat(dirfd), tarfile.DIRTYPE))
        for entry in dirnames + filenames:
            try:
                st = os.stat(entry, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            arc = f"{base}/{entry}"
            if stat.S_ISLNK(st.st_mode):
                info = _info(arc, st, tarfile.SYMTYPE)
                info.linkname = os.readlink(entry, dir_fd=dirfd)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                try:
                    ffd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dirfd)
                except OSError:  # swapped for a symlink or a FIFO since the stat: skip it
                    continue
                with os.fdopen(ffd, "rb") as fh:
                    fst = os.fstat(fh.fileno())
                    if not stat.S_ISREG(fst.st_mode):
                        continue
                    tar.addfile(_info(arc, fst, tarfile.REGTYPE), fh)
            # sockets, FIFOs and devices are left out: reading them could block or leak.


def _info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = int(st.st_mtime)
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    return info


def archive_path(state_dir: Path, workshop: str, name: str) -> Path:
    return Path(state_dir) / "workshops" / workshop / "archives" / f"{name}.tar.gz"
