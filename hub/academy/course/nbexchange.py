"""nbgrader's pluggable exchange on our private exchange, so nbgrader's Assignments panel works unchanged.

nbgrader's stock exchange wants world-writable folders (``inbound/`` 0733, one
``<student>+<assignment>+<timestamp>`` folder per submission that anyone can guess) and takes the
submission time from the student's own process.  These classes keep nbgrader's behaviour (its list,
fetch, submit and fetch-feedback results, its local submission cache that the panel's history shows)
but move the files through :mod:`academy.course.exchange`: ``inbound/<student>/<assignment>/`` and
``feedback/<student>/<assignment>/``, both 0700 and owned by that student, so no learner can list or
read another's work whatever course or assignment id they send.

* The submission time shown in the history is the system's: the newest ``ctime`` of the submitted
  folder, which only the kernel sets and which ``collect`` reads again as root (a student's
  ``timestamp.txt`` is dropped on submit and again on collect).
* A learner is in a course when ``<exchange>/<course>/inbound/<learner>/`` exists and belongs to
  their account (``academy course setup`` makes it).  Courses come from ``ACADEMY_COURSE_IDS`` or,
  when unset, every course folder with an ``outbound/``; only the learner's courses are listed.
* nbgrader's panel has no confirmation or due-date column; Submit instead refuses once, with the
  reason (an earlier submission it would replace, or a passed due date), and a second Submit within
  :attr:`AcademySubmit.confirm_seconds` goes through.
* Trainer side (release, collect, release feedback): :mod:`academy.course.nbexchange_trainer`.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
import shutil
import stat
import textwrap
import time
from pathlib import Path

from nbgrader.exchange import default
from traitlets import Float, Unicode, default as trait_default

from academy.course import exchange
from academy.course.layout import ID_PATTERN, CourseLayout, LayoutError, check_id

DEFAULT_ROOT = "/srv/academy/exchange"
PENDING = ".academy-confirm-{assignment}"  # in the learner's own cache: the first Submit press


def exchange_layout(root: str, course_id: str, state_dir: str = "/nonexistent") -> CourseLayout:
    """The parts of a course layout the exchange functions use (its root and id; no course directory)."""
    return CourseLayout(course_dir=Path("/nonexistent"), state_dir=Path(state_dir), exchange_dir=Path(root),
                        db_url="", course_id=course_id)


def configured_courses(root: str) -> list[str]:
    """``ACADEMY_COURSE_IDS`` (comma-separated), else every course under the root with an ``outbound/``."""
    listed = [c.strip() for c in os.environ.get("ACADEMY_COURSE_IDS", "").split(",") if c.strip()]
    if listed:
        return [c for c in listed if ID_PATTERN.match(c)]
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [n for n in names if ID_PATTERN.match(n) and os.path.isdir(os.path.join(root, n, "outbound"))]


def learner_name() -> str:
    return exchange._me()


def is_member(root: str, course_id: str, uid: int | None = None) -> bool:
    """Has ``academy course setup`` given this account its own submission folder in the course?"""
    try:
        st = os.lstat(os.path.join(root, course_id, "inbound", learner_name()))
    except (OSError, LayoutError):
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == (os.getuid() if uid is None else uid)


def trusted_time(path: str) -> str:
    """The newest ctime in a submitted folder, formatted as collect writes it (the kernel's clock)."""
    newest = os.lstat(path).st_ctime
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in dirnames + [f for f in filenames if not f.startswith(".")]:
            newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_ctime)
    return dt.datetime.fromtimestamp(newest, tz=dt.timezone.utc).strftime(exchange.TIMESTAMP_FORMAT)


def due_date(root: str, course_id: str, assignment: str) -> dt.datetime | None:
    """The due date the release published beside the assignment (``outbound/.<assignment>.json``), if any."""
    try:
        with open(os.path.join(root, course_id, "outbound", f".{assignment}.json")) as fh:
            value = json.load(fh).get("duedate")
        when = dt.datetime.fromisoformat(value)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


class AcademyExchange(default.Exchange):
    """Common parts: the root from ``ACADEMY_EXCHANGE_DIR``, ids checked, a root that need not be writable."""

    @trait_default("root")
    def _root_default(self):
        return os.environ.get("ACADEMY_EXCHANGE_DIR") or DEFAULT_ROOT

    def ensure_root(self):
        if not os.path.isdir(self.root) or not os.access(self.root, os.R_OK | os.X_OK):
            self.fail(f"The course exchange {self.root} is not reachable; please tell your trainer.")

    def check(self, value: str, what: str) -> str:
        try:
            return check_id(value, what)
        except LayoutError as exc:
            self.fail(str(exc))

    def course(self) -> str:
        course_id = self.check(self.coursedir.course_id, "course id")
        box = os.path.join(self.root, course_id, "inbound", learner_name())
        if os.path.isdir(box) and not is_member(self.root, course_id):
            self.fail(f"the submission folder of {learner_name()!r} belongs to another account; use your own name.")
        # Membership (a folder of one's own, made by the trainer) is the gate; the hub's course list only
        # chooses what an unqualified listing shows, so a course named outright need not be on it.
        if not is_member(self.root, course_id):
            self.fail(f"You are not a student of course {course_id!r} (no submission folder of yours there); "
                      "ask your trainer to add you.")
        return course_id

    def layout(self) -> CourseLayout:
        return exchange_layout(self.root, self.coursedir.course_id)

    def cache_dir(self, course_id: str) -> str:
        path = os.path.join(self.cache, course_id)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path


class AcademyList(AcademyExchange, default.ExchangeList):
    """Released assignments of the learner's courses, and their own submission history with feedback."""

    def init_dest(self):
        if self.inbound:
            self.fail("Listing submissions is for trainers (`academy course status`); learners see their own "
                      "under Submitted assignments.")
        if self.coursedir.course_id:
            # Not the learner's course: nothing to list (nbgrader's handler would replace an error here
            # with "the exchange directory does not exist", and an empty list tells no one which courses exist).
            course_id = self.check(self.coursedir.course_id, "course id")
            courses = [course_id] if is_member(self.root, course_id) else []
        else:
            courses = [c for c in configured_courses(self.root) if is_member(self.root, c)]
        aid = self.check(self.coursedir.assignment_id, "assignment") if self.coursedir.assignment_id else "*"
        found = []
        for course_id in courses:
            if self.cached:
                pattern = os.path.join(self.cache, course_id, f"{learner_name()}+{aid}+*")
            else:
                pattern = os.path.join(self.root, course_id, "outbound", aid)
            found += [p for p in glob.glob(pattern) if os.path.isdir(p)
                      and (self.cached or ID_PATTERN.match(os.path.basename(p)))]
        self.assignments = sorted(found)

    def parse_assignments(self):
        assignments = super().parse_assignments()
        if not self.cached:
            for info in assignments:
                due = due_date(self.root, info["course_id"], info["assignment_id"])
                info["duedate"] = due.isoformat() if due else None
            return assignments
        for info in assignments:
            self._our_feedback(info)
        return assignments

    def _our_feedback(self, info: dict) -> None:
        """Mark which submission the returned feedback belongs to (ours is per assignment, not per hash)."""
        subs = info["submissions"]
        for sub in subs:
            sub["has_exchange_feedback"] = False
            sub["feedback_updated"] = False
        box = os.path.join(self.root, info["course_id"], "feedback", learner_name(), info["assignment_id"])
        returned = feedback_files(box)
        target = feedback_submission(subs, box)
        if not returned or target is None:
            return
        target["has_exchange_feedback"] = True
        local = target.get("local_feedback_path")
        if target["has_local_feedback"] and local:
            target["feedback_updated"] = any(
                not os.path.isfile(os.path.join(local, name)) or
                Path(os.path.join(local, name)).read_bytes() != Path(src).read_bytes()
                for name, src in returned.items())


def feedback_files(box: str) -> dict[str, str]:
    """name -> path of the plain HTML files in a feedback folder (links skipped)."""
    try:
        names = sorted(os.listdir(box))
    except OSError:
        return {}
    return {n: os.path.join(box, n) for n in names if n.endswith(".html")
            and stat.S_ISREG(os.lstat(os.path.join(box, n)).st_mode)}


def feedback_submission(subs: list[dict], box: str) -> dict | None:
    """The history entry the feedback was graded from: the newest submitted at or before the collected time."""
    if not subs:
        return None
    try:
        graded = Path(box, "timestamp.txt").read_text().strip()
    except OSError:
        return subs[-1]
    earlier = [s for s in subs if s["timestamp"] <= graded]
    return earlier[-1] if earlier else subs[-1]


class AcademyFetchAssignment(AcademyExchange, default.ExchangeFetchAssignment):
    """Fetch a released assignment of one of the learner's courses into the home (never overwrites)."""

    def init_src(self):
        course_id = self.course()
        aid = self.check(self.coursedir.assignment_id, "assignment")
        self.src_path = os.path.join(self.root, course_id, "outbound", aid)
        if not os.path.isdir(self.src_path):
            self.fail(f"Assignment {aid!r} has not been released in course {course_id!r}.")


class AcademySubmit(AcademyExchange, default.ExchangeSubmit):
    """Submit through :func:`academy.course.exchange.submit`, then record the system's time in the history."""

    confirm_seconds = Float(
        120.0, config=True,
        help="A re-submission or a late submission needs a second Submit within this many seconds "
             "(nbgrader's panel has no confirmation dialog); 0 submits at once.")

    source_path = Unicode("", config=True, help="Submit this folder instead of <assignment_dir>/<assignment> "
                          "(`academy course submit --path`).")

    def fail(self, msg):
        # nbgrader's panel shows a failed Submit as the whole traceback in a box that does not wrap: put
        # the reason on its own short lines after a blank one, where the learner's eye lands.
        super().fail("\n\n" + textwrap.fill(msg, 90) + "\n")

    def init_src(self):
        self.check(self.coursedir.assignment_id, "assignment")  # before nbgrader turns '../x' into 'x'
        if self.source_path:
            self.src_path = os.path.abspath(self.source_path)
            if not os.path.isdir(self.src_path):
                self.fail(f"{self.src_path} is not a folder; submit the folder you fetched.")
        else:
            super().init_src()

    def init_dest(self):
        course_id = self.course()
        aid = self.check(self.coursedir.assignment_id, "assignment")
        if not os.path.isdir(os.path.join(self.root, course_id, "outbound", aid)):
            self.fail(f"Assignment {aid!r} has not been released in course {course_id!r}; nothing to submit to.")
        self.cache_path = os.path.join(self.cache, course_id)

    def init_release(self):
        self.release_path = os.path.join(self.root, self.coursedir.course_id, "outbound", self.coursedir.assignment_id)

    def _needs_confirmation(self) -> str:
        aid, reasons = self.coursedir.assignment_id, []
        previous = sorted(glob.glob(os.path.join(self.cache_path, f"{learner_name()}+{aid}+*")))
        if previous:
            reasons.append(f"You already submitted {aid} at {previous[-1].rsplit('+', 1)[-1]}; "
                           "submitting again replaces that submission.")
        due = due_date(self.root, self.coursedir.course_id, aid)
        if due and dt.datetime.now(dt.timezone.utc) > due:
            reasons.append(f"The due date of {aid} was {due:%Y-%m-%d %H:%M %Z}; this submission will be late.")
        return " ".join(reasons)

    def _confirmed(self, reason: str) -> bool:
        if not reason or self.confirm_seconds <= 0:
            return True
        marker = os.path.join(self.cache_path, PENDING.format(assignment=self.coursedir.assignment_id))
        try:
            pressed = time.time() - os.stat(marker).st_mtime
        except FileNotFoundError:
            pressed = None
        if pressed is not None and 0 <= pressed <= self.confirm_seconds:
            os.unlink(marker)
            return True
        self.cache_dir(self.coursedir.course_id)
        Path(marker).touch()
        self.fail(f"{reason} Press Submit again within {self.confirm_seconds:g} seconds to submit.")

    def copy_files(self):
        self.init_release()
        self.check_filename_diff()
        self._confirmed(self._needs_confirmation())
        try:
            final = exchange.submit(self.layout(), self.coursedir.assignment_id, Path(self.src_path))
        except exchange.ExchangeError as exc:
            self.fail(str(exc))
        self.timestamp = trusted_time(str(final))
        entry = os.path.join(self.cache_path, f"{learner_name()}+{self.coursedir.assignment_id}+{self.timestamp}")
        try:  # the history in the home; the submission itself is already in place
            self.cache_dir(self.coursedir.course_id)
            shutil.rmtree(entry, ignore_errors=True)
            shutil.copytree(final, entry, symlinks=True)
            Path(entry, "timestamp.txt").write_text(self.timestamp)
        except OSError as exc:
            self.log.warning("Submitted, but the submission history in %s could not be written: %s", self.cache, exc)
        self.log.info("Submitted as: %s %s %s", self.coursedir.course_id, self.coursedir.assignment_id, self.timestamp)


class AcademyFetchFeedback(AcademyExchange, default.ExchangeFetchFeedback):
    """Copy the learner's returned feedback into ``<assignment>/feedback/<submission time>/`` in the home."""

    def init_src(self):
        course_id = self.course()
        aids = [self.check(self.coursedir.assignment_id, "assignment")] if self.coursedir.assignment_id else None
        mine = self.src_path = os.path.join(self.root, course_id, "feedback", learner_name())
        if aids is None:
            aids = sorted(a for a in os.listdir(mine) if ID_PATTERN.match(a)) if os.path.isdir(mine) else []
        self.feedback_files = []
        for aid in aids:
            box = os.path.join(mine, aid)
            subs = [{"timestamp": p.rsplit("+", 1)[-1]} for p in
                    sorted(glob.glob(os.path.join(self.cache, course_id, f"{learner_name()}+{aid}+*")))]
            target = feedback_submission(subs, box)
            try:
                stamp = target["timestamp"] if target else Path(box, "timestamp.txt").read_text().strip()
            except OSError:
                stamp = "returned"
            for name, path in feedback_files(box).items():
                self.feedback_files.append((aid, name[:-len(".html")], stamp, path))
        if not self.feedback_files:
            self.fail(f"No feedback has been returned to you yet for {self.coursedir.assignment_id or 'this course'}.")

    def init_dest(self):
        self.dest_path = os.path.abspath(self.assignment_dir)

    def do_copy(self, src, dest):
        for aid, notebook_id, stamp, path in self.feedback_files:
            root = os.path.join(dest, self.coursedir.course_id, aid) if self.path_includes_course else \
                os.path.join(dest, aid)
            folder = os.path.join(root, "feedback", stamp)
            os.makedirs(folder, exist_ok=True)
            shutil.copyfile(path, os.path.join(folder, f"{notebook_id}.html"))
            self.log.info("Fetched feedback: %s", os.path.join(folder, f"{notebook_id}.html"))


def learner_config(c) -> None:
    """nbgrader settings for a learner's server (hub/singleuser/nbgrader_config.py calls this)."""
    c.Exchange.root = os.environ.get("ACADEMY_EXCHANGE_DIR") or DEFAULT_ROOT
    for name, cls in (("exchange", AcademyExchange), ("list", AcademyList), ("submit", AcademySubmit),
                      ("fetch_assignment", AcademyFetchAssignment), ("fetch_feedback", AcademyFetchFeedback)):
        setattr(c.ExchangeFactory, name, f"{cls.__module__}.{cls.__name__}")
