"""What the live dashboard shows: one row per participant, the filters, and the per-exercise view.

Rows are built from the event store's summaries (academy.workshop.events) plus the servers' states,
which come from ONE hub API call per refresh for the whole workshop (:func:`fetch_servers`): the
users list filtered by the participants' common name prefix, stopped servers included. With
``admin:server_state`` the service also sees each spawner's saved state (Slurm job id, walltime,
why the last server ended); a failed warm start adds its reason. Nothing here calls a learner's server.

Filters: ``stuck`` (3 or more failed checks of one exercise in the last 10 minutes, and its last
check still failed), ``not-started`` (no exercise checked yet), ``hand`` (hand raised).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from sqlalchemy import func, select
from tornado.httpclient import AsyncHTTPClient

from academy.workshop.events import ExerciseCount, LearnerEvent, LearnerState, ensure_tables, refusals_for, window_start

STUCK_FAILS, STUCK_MINUTES = 3, 10
FILTERS = ("all", "stuck", "not-started", "hand")


@dataclass
class Server:
    """A participant's server as the hub sees it, in the dashboard's words."""

    state: str = "not started"  # not started, pending, running, stopping, stopped, failed
    detail: str = ""
    last_activity: str | None = None
    job_id: str = ""


@dataclass
class Row:
    user: str
    server: Server = field(default_factory=Server)
    last_activity: str | None = None
    notebooks: list = field(default_factory=list)
    lessons: list = field(default_factory=list)  # [{"notebook", "passed", "attempted"}]
    checks: int = 0
    stuck_on: list = field(default_factory=list)
    hand: dict | None = None
    share: str | None = None
    refused: dict = field(default_factory=dict)
    assignments: list = field(default_factory=list)  # dashboard_assignments.AssignmentCell as JSON, per assignment

    @property
    def started(self) -> bool:
        return self.checks > 0

    def matches(self, name: str) -> bool:
        return {"all": True, "stuck": bool(self.stuck_on), "not-started": not self.started,
                "hand": self.hand is not None}.get(name, True)

    def as_json(self) -> dict:
        out = asdict(self)
        out["started"] = self.started
        out["filters"] = [f for f in FILTERS if self.matches(f)]
        return out


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(tzinfo=timezone.utc).isoformat()


def _later(a: str | None, b: str | None) -> str | None:
    return max((x for x in (a, b) if x), default=None, key=lambda x: datetime.fromisoformat(x.replace("Z", "+00:00")))


def stuck(db, slug: str, users: list[str] | None = None, now: datetime | None = None) -> dict[str, list[str]]:
    """``user -> ["notebook: exercise", ...]`` for exercises failed 3+ times in the window and not passed since."""
    q = (select(LearnerEvent.user, LearnerEvent.notebook, LearnerEvent.exercise)
         .where(LearnerEvent.workshop == slug, LearnerEvent.kind == "check", LearnerEvent.passed.is_(False),
                LearnerEvent.received_at >= window_start(now, STUCK_MINUTES))
         .group_by(LearnerEvent.user, LearnerEvent.notebook, LearnerEvent.exercise)
         .having(func.count() >= STUCK_FAILS))
    if users is not None:
        q = q.where(LearnerEvent.user.in_(users))
    hits = list(db.execute(q))
    if not hits:
        return {}
    still = {(c.user, c.notebook, c.exercise) for c in db.scalars(select(ExerciseCount).where(
        ExerciseCount.workshop == slug, ExerciseCount.last_passed.is_(False)))}
    out: dict[str, list[str]] = {}
    for user, notebook, exercise in hits:
        if (user, notebook, exercise) in still:
            out.setdefault(user, []).append(f"{notebook}: {exercise}" if notebook else exercise)
    return out


def build_rows(db, slug: str, users: list[str], servers: dict[str, Server], now: datetime | None = None,
               assignments: dict[str, list[dict]] | None = None) -> list[Row]:
    """The rows of ``users`` (participants of ``slug``), in that order; ``assignments`` from dashboard_assignments."""
    ensure_tables(db)
    states = {s.user: s for s in db.scalars(select(LearnerState).where(
        LearnerState.workshop == slug, LearnerState.user.in_(users)))}
    lessons: dict[str, dict[str, dict]] = {}
    for c in db.scalars(select(ExerciseCount).where(ExerciseCount.workshop == slug, ExerciseCount.user.in_(users))
                        .order_by(ExerciseCount.notebook)):
        lesson = lessons.setdefault(c.user, {}).setdefault(c.notebook, {"notebook": c.notebook, "passed": 0, "attempted": 0, "checks": 0})
        lesson["attempted"] += int(c.attempts > 0)
        lesson["passed"] += int(c.passes > 0)
        lesson["checks"] += c.attempts
    stuck_now = stuck(db, slug, users, now)
    refused = refusals_for(db, users)
    rows = []
    for user in users:
        st, server = states.get(user), servers.get(user) or Server()
        mine = list(lessons.get(user, {}).values())
        rows.append(Row(
            user=user, server=server, last_activity=_later(_iso(st and st.last_at), server.last_activity),
            notebooks=list(st.notebooks or []) if st else [], lessons=mine, checks=sum(x["checks"] for x in mine),
            stuck_on=stuck_now.get(user, []),
            hand=st and st.hand_at and {"at": _iso(st.hand_at), "message": st.hand_message} or None,
            share=(st and st.share_path) or None, refused=refused.get(user, {}),
            assignments=list((assignments or {}).get(user, []))))
    return rows


def exercise_view(db, slug: str, top: int = 3) -> list[dict]:
    """Per exercise: how many passed and tried it, and the most common wrong-answer feedback."""
    ensure_tables(db)
    out: dict[tuple[str, str], dict] = {}
    for c in db.scalars(select(ExerciseCount).where(ExerciseCount.workshop == slug)):
        e = out.setdefault((c.notebook, c.exercise), {"notebook": c.notebook, "exercise": c.exercise, "passed": 0,
                                                      "attempted": 0, "checks": 0, "wrong": []})
        e["passed"] += int(c.passes > 0)
        e["attempted"] += int(c.attempts > 0)
        e["checks"] += c.attempts
    q = (select(LearnerEvent.notebook, LearnerEvent.exercise, LearnerEvent.message, func.count().label("n"),
                func.count(func.distinct(LearnerEvent.user)).label("users"))
         .where(LearnerEvent.workshop == slug, LearnerEvent.kind == "check", LearnerEvent.passed.is_(False))
         .group_by(LearnerEvent.notebook, LearnerEvent.exercise, LearnerEvent.message)
         .order_by(func.count().desc()))
    for notebook, exercise, message, n, users in db.execute(q):
        e = out.get((notebook, exercise))
        if e is not None and len(e["wrong"]) < top:
            e["wrong"].append({"message": message, "count": n, "users": users})
    return sorted(out.values(), key=lambda e: (e["notebook"], e["exercise"]))


def apply_squeue(servers: dict[str, Server], stdout: str) -> None:
    """Slurm's word on pending and running jobs (reason and estimated start; node and end) into the rows."""
    from academy.slurm.states import parse_squeue

    jobs, _ = parse_squeue(stdout)
    for server in servers.values():
        info = jobs.get(server.job_id)
        if info is None:
            continue
        if server.state == "pending":
            start = f"estimated start {info.start:%H:%M}" if info.start else ""
            server.detail = " · ".join(x for x in (f"Slurm job {info.job_id}", info.describe_reason(), start) if x)
        elif server.state == "running" and info.node:
            end = f"ends {info.end:%H:%M}" if info.end else ""
            server.detail = " · ".join(x for x in (f"on {info.node}", server.detail, end) if x)


async def add_slurm_details(servers: dict[str, Server]) -> None:
    """One ``squeue`` for every pending or running job of the workshop (the service has ``SLURM_CONF``)."""
    from academy.slurm import commands
    from academy.slurm.states import SQUEUE_FORMAT

    ids = sorted({s.job_id for s in servers.values() if s.job_id.isdigit()})
    if not ids:
        return
    result = await commands.run_command(commands.hub_command(
        "squeue", "--noheader", "--all", "--states=all", f"--jobs={','.join(ids)}", f"--format={SQUEUE_FORMAT}"),
        env=dict(os.environ), timeout=10)
    if result.ok:
        apply_squeue(servers, result.stdout)


def _common_prefix(names: list[str]) -> str:
    return os.path.commonprefix(names) if names else ""


def server_of(model: dict, warm_reason: str = "", now: datetime | None = None) -> Server:
    """The dashboard's view of one hub user model (its default server)."""
    spawner = (model.get("servers") or {}).get("")
    if spawner is None:
        return Server("failed", warm_reason) if warm_reason else Server()
    state = spawner.get("state") or {}
    job = f"Slurm job {state['job_id']}" if state.get("job_id") else ""
    last = spawner.get("last_activity")
    job_id = str(state.get("job_id") or "")
    if spawner.get("pending") == "spawn":
        return Server("pending", job, last, job_id)
    if spawner.get("pending") == "stop":
        return Server("stopping", job, last)
    if spawner.get("ready"):
        detail = [job, state.get("job_status", "")]
        hours, started = state.get("walltime_hours"), spawner.get("started")
        if hours and started:
            left = datetime.fromisoformat(started.replace("Z", "+00:00")) + timedelta(hours=hours) - (now or datetime.now(timezone.utc))
            detail.append(f"{max(int(left.total_seconds() // 60), 0)} min left")
        return Server("running", " · ".join(x for x in detail if x), last, job_id)
    reason = state.get("last_stop_message") or ""
    if warm_reason:
        return Server("failed", warm_reason, last)
    return Server("stopped", reason, last)


async def fetch_servers(api_url: str, token: str, users: list[str], warm_failures: dict[str, str]) -> dict[str, Server]:
    """Servers of ``users`` from one ``GET /users`` (name prefix filter, stopped servers included)."""
    if not users:
        return {}
    query = {"include_stopped_servers": "1", "limit": "200", "offset": "0"}
    if _common_prefix(users):
        query["name_filter"] = _common_prefix(users)
    wanted, found, offset = set(users), {}, 0
    client = AsyncHTTPClient()
    while True:  # one page when the prefix is shared; more only on a hub with many users
        query["offset"] = str(offset)
        r = await client.fetch(f"{api_url.rstrip('/')}/users?{urlencode(query)}",
                               headers={"Authorization": f"token {token}"}, request_timeout=20)
        page = json.loads(r.body)
        for model in page:
            if model.get("name") in wanted:
                found[model["name"]] = server_of(model, warm_failures.get(model["name"], ""))
        if len(page) < 200 or wanted <= set(found):
            break
        offset += 200
    return found
