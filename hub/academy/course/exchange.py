"""The exchange: release, submit, collect and return feedback through a shared filesystem, with real
Unix permissions instead of nbgrader's world-writable folders.

Layout under ``<exchange_dir>/<course_id>/`` (all created by root):

* ``outbound/<assignment>/``  0755/0644 root: what students fetch.
* ``inbound/``                0711 root: traversable, not listable, so nobody learns who submitted.
* ``inbound/<student>/``      0700 owned by the student's account (``acad-<student>`` for a hub user on
  the local backend; made by ``academy course setup``): only that student (and root) can enter it.
  ``submit`` replaces ``<assignment>/`` inside it atomically.
* ``feedback/``               0711 root; ``feedback/<student>/`` 0700 owned by the student.

Submission time is never read from a file the student wrote.  ``collect`` (root) takes the latest
``ctime`` of the submission folder and everything in it: the kernel sets ctime on every change and no
unprivileged call can set it back, so editing after the deadline can only make a submission later.
Collect then writes nbgrader's ``timestamp.txt`` itself (dropping any the student supplied) and a
receipt with each file's SHA-256.  Everything is copied through directory file descriptors with
``O_NOFOLLOW`` and size/count limits, so a student's symlinks, FIFOs or swaps cannot make root read
or write anything outside the submission.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pwd
import shutil
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from academy.course.layout import CourseLayout, check_id
from academy.course.grading import limits

MAX_FILES = limits.SUBMISSION_MAX_FILES  # one limit from submit to grading
MAX_BYTES = limits.SUBMISSION_MAX_BYTES
MAX_DEPTH = 6
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # what nbgrader's parse_utc reads


class ExchangeError(RuntimeError):
    """A clear, one-line exchange problem (missing folder, wrong user, limits exceeded)."""


@dataclass
class Receipt:
    """What collect recorded for one submission."""

    student: str
    assignment: str
    submitted_at: str  # trusted time (root-observed ctime), UTC
    collected_at: str
    files: dict  # relative path -> sha256


def course_root(layout: CourseLayout) -> Path:
    return layout.exchange_dir / layout.course_id


def _mkdir(path: Path, mode: int, uid: int = 0, gid: int = 0) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def setup(layout: CourseLayout, students: list[str], account_prefix: str = "") -> list[str]:
    """Create the exchange tree and one private inbound/feedback folder per student (root only).

    A student's folders belong to the Unix account ``account_prefix + student`` (``acad-ann`` for hub
    user ``ann`` on the local backend), or to ``student`` itself when no such account exists.  Returns
    the students skipped because neither account exists."""
    if os.geteuid() != 0:
        raise ExchangeError("setting up the exchange needs root (it creates folders owned by each student)")
    base = course_root(layout)
    _mkdir(layout.exchange_dir, 0o755)
    _mkdir(base, 0o755)
    _mkdir(base / "outbound", 0o755)
    _mkdir(base / "inbound", 0o711)
    _mkdir(base / "feedback", 0o711)
    skipped = []
    for student in students:
        check_id(student, "student id")
        entry = None
        for name in dict.fromkeys([account_prefix + student, student]):
            try:
                entry = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if entry is None:
            skipped.append(student)
            continue
        for area in ("inbound", "feedback"):
            _mkdir(base / area / student, 0o700, entry.pw_uid, entry.pw_gid)
    return skipped


def _account_of(layout: CourseLayout, student: str) -> tuple[int, int]:
    """(uid, gid) of a student's account: whoever setup made the owner of their inbound folder."""
    try:
        st = (course_root(layout) / "inbound" / student).stat()
        return st.st_uid, st.st_gid
    except FileNotFoundError:
        entry = pwd.getpwnam(student)
        return entry.pw_uid, entry.pw_gid


def publish(layout: CourseLayout, assignment: str, release_dir: Path) -> Path:
    """Copy a generated release into outbound, readable by everyone, writable by root only."""
    check_id(assignment, "assignment")
    dest = course_root(layout) / "outbound" / assignment
    if not (course_root(layout) / "outbound").is_dir():
        raise ExchangeError(f"exchange not set up at {course_root(layout)}; run `academy course setup` as root")
    tmp = dest.with_name(f".{assignment}.new")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(release_dir, tmp, symlinks=False)
    for dirpath, _, files in os.walk(tmp):
        os.chmod(dirpath, 0o755)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o644)
    if dest.exists():
        shutil.rmtree(dest)
    os.rename(tmp, dest)
    return dest


def _me() -> str:
    """Who is submitting: the hub user inside a hub server ($JUPYTERHUB_USER), else the Unix account.

    On the local backend hub user ``ann`` runs as ``acad-ann`` and the course knows her as ``ann``.  The
    name is only a claim: :func:`submit` also checks that the folder belongs to the caller's account."""
    return check_id(os.environ.get("JUPYTERHUB_USER") or pwd.getpwuid(os.getuid()).pw_name, "user name")


def fetch(layout: CourseLayout, assignment: str, dest_parent: Path) -> Path:
    """Student side: copy a released assignment into ``dest_parent/<assignment>`` (never overwrites)."""
    check_id(assignment, "assignment")
    src = course_root(layout) / "outbound" / assignment
    if not src.is_dir():
        raise ExchangeError(f"assignment {assignment!r} has not been released")
    dest = dest_parent / assignment
    if dest.exists():
        raise ExchangeError(f"{dest} already exists; move it away to fetch a fresh copy")
    shutil.copytree(src, dest, symlinks=False)
    return dest


def submit(layout: CourseLayout, assignment: str, src: Path) -> Path:
    """Student side: replace my submission of ``assignment`` with the files in ``src`` (0600/0700)."""
    check_id(assignment, "assignment")
    me = _me()
    box = course_root(layout) / "inbound" / me
    if not box.is_dir():
        raise ExchangeError(f"no submission folder for {me!r}; ask your trainer to add you to the course")
    if box.stat().st_uid != os.getuid():
        raise ExchangeError(f"the submission folder of {me!r} belongs to another account; submit as yourself")
    if not src.is_dir():
        raise ExchangeError(f"{src} is not a folder; submit the folder you fetched (e.g. ~/{assignment})")
    old_umask = os.umask(0o077)
    try:
        tmp = box / f".{assignment}.incoming"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        count = total = 0
        for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
            rel = os.path.relpath(dirpath, src)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and
                                 not os.path.islink(os.path.join(dirpath, d)))
            (tmp / rel).mkdir(mode=0o700, exist_ok=True)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if name.startswith(".") or os.path.islink(path) or not os.path.isfile(path):
                    continue
                count += 1
                total += os.path.getsize(path)
                if count > MAX_FILES or total > MAX_BYTES:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise ExchangeError(limits.too_large(count, total))
                shutil.copyfile(path, tmp / rel / name)
        final = box / assignment
        if final.exists():
            old = box / f".{assignment}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.rename(final, old)
            os.rename(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    finally:
        os.umask(old_umask)
    return final


def _read_tree(dir_fd: int, depth: int, budget: list[int]) -> tuple[dict[str, bytes], float]:
    """Read plain files below ``dir_fd`` without following links; returns (files, newest ctime)."""
    if depth > MAX_DEPTH:
        raise ExchangeError("submission folder nested too deeply")
    files: dict[str, bytes] = {}
    newest = os.fstat(dir_fd).st_ctime
    for name in sorted(os.listdir(dir_fd)):
        if name.startswith("."):
            continue
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        newest = max(newest, st.st_ctime)
        if stat.S_ISDIR(st.st_mode):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            try:
                inner, when = _read_tree(sub, depth + 1, budget)
            finally:
                os.close(sub)
            newest = max(newest, when)
            files.update({f"{name}/{k}": v for k, v in inner.items()})
        elif stat.S_ISREG(st.st_mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            try:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode):
                    continue
                budget[0] -= 1
                budget[1] -= fst.st_size
                if budget[0] < 0 or budget[1] < 0:
                    raise ExchangeError(limits.too_large(MAX_FILES - budget[0], MAX_BYTES - budget[1]))
                with os.fdopen(os.dup(fd), "rb") as fh:
                    files[name] = fh.read(fst.st_size + 1)
                newest = max(newest, fst.st_ctime)
            finally:
                os.close(fd)
    return files, newest


def _snapshot(path: Path) -> tuple[dict[str, bytes], float]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        return _read_tree(fd, 0, [MAX_FILES, MAX_BYTES])
    finally:
        os.close(fd)


def collect_one(layout: CourseLayout, assignment: str, student: str) -> Receipt | None:
    """Root side: copy one student's submission into ``submitted/`` with a trusted timestamp."""
    src = course_root(layout) / "inbound" / student / assignment
    try:
        st = os.lstat(src)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise ExchangeError(f"{student}: submission of {assignment!r} is not a folder")
    for _ in range(3):  # a student still writing changes ctimes; take a stable copy
        files, newest = _snapshot(src)
        again, newest_again = _snapshot(src)
        if again == files and newest_again == newest:
            break
    else:
        raise ExchangeError(f"{student}: submission kept changing while being collected; collect again")
    submitted_at = dt.datetime.fromtimestamp(newest, tz=dt.timezone.utc)
    dest = layout.step_dir("submitted", student, assignment)
    tmp = dest.with_name(f".{assignment}.collecting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True, mode=0o700)
    digests = {}
    for rel, data in files.items():
        if rel == "timestamp.txt":
            continue  # the student's own clock is never trusted
        target = tmp / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digests[rel] = hashlib.sha256(data).hexdigest()
    (tmp / "timestamp.txt").write_text(submitted_at.strftime(TIMESTAMP_FORMAT))
    if dest.exists():
        shutil.rmtree(dest)
    os.rename(tmp, dest)
    receipt = Receipt(student=student, assignment=assignment, submitted_at=submitted_at.isoformat(),
                      collected_at=dt.datetime.now(dt.timezone.utc).isoformat(), files=digests)
    receipts = layout.root / "receipts" / assignment
    receipts.mkdir(parents=True, exist_ok=True)
    (receipts / f"{student}.json").write_text(json.dumps(asdict(receipt), indent=1))
    return receipt


def inbound_students(layout: CourseLayout) -> list[str]:
    inbound = course_root(layout) / "inbound"
    if not inbound.is_dir():
        raise ExchangeError(f"exchange not set up at {course_root(layout)}; run `academy course setup` as root")
    return sorted(p.name for p in inbound.iterdir() if p.is_dir() and not p.is_symlink()
                  and not p.name.startswith("."))


def return_feedback(layout: CourseLayout, assignment: str, student: str, html_files: list[Path]) -> Path:
    """Root side: place a student's feedback where only that student can read it."""
    uid, gid = _account_of(layout, student)
    box = course_root(layout) / "feedback" / student
    if not box.is_dir():
        _mkdir(box, 0o700, uid, gid)
    dest = box / assignment
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    shutil.rmtree(dest, ignore_errors=True)
    _mkdir(dest, 0o700, uid, gid)
    for html in html_files:
        target = dest / html.name
        shutil.copyfile(html, target)
        os.chown(target, uid, gid)
        os.chmod(target, 0o600)
    return dest
