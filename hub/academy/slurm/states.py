"""What Slurm says about a job: parse ``squeue`` lines into ``JobInfo`` and classify them.

The classification is deliberately conservative: only Slurm's own word that a job ended
(a terminal state, or "Invalid job id") makes a job ``ENDED``. A controller that does not
answer, or an answer we do not recognise, is ``UNKNOWN``, and an unknown job is kept
(batchspawner issues #171, #315, #253 lost running servers by treating these as "gone").
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

# One squeue line per job; '|' cannot occur in any of these fields.
SQUEUE_FORMAT = "%i|%T|%r|%B|%S|%e"
SQUEUE_FIELDS = 6

PENDING_STATES = frozenset({
    "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT",
})
RUNNING_STATES = frozenset({"RUNNING", "RESIZING", "SIGNALING", "SUSPENDED", "STOPPED"})
# COMPLETING hides the final state (CANCELLED, TIMEOUT...) while Slurm kills what is left (up to
# KillWait); waiting for the final word costs seconds and tells the learner what really happened.
ENDING_STATES = frozenset({"COMPLETING", "STAGE_OUT"})
ENDED_STATES = frozenset({
    "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED",
})

# Controller trouble: never a reason to forget a job.
UNREACHABLE_RE = re.compile(
    r"Unable to contact slurm controller|Socket timed out|Connection refused|connect failure"
    r"|Zero Bytes were transmitted|Slurm backup controller in standby mode|Communication connection failure"
    r"|Transport endpoint|Resource temporarily unavailable|timed out",
    re.IGNORECASE,
)
INVALID_JOB_RE = re.compile(r"Invalid job id specified", re.IGNORECASE)

# Plain words for the pending reasons a learner is most likely to meet.
REASONS = {
    "Resources": "all matching resources are busy; it starts when some are released",
    "Priority": "jobs with a higher priority are ahead of it",
    "Reservation": "it waits for its reservation to become active",
    "ReqNodeNotAvail": "the nodes it needs are unavailable (maintenance or a reservation)",
    "BeginTime": "it is not allowed to start yet",
    "Dependency": "it waits for another job",
    "JobHeldUser": "it is held (by you)",
    "JobHeldAdmin": "it is held by an administrator",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "PartitionTimeLimit": "the hours you chose exceed the partition's limit",
    "QOSMaxJobsPerUserLimit": "you already run the most jobs your QoS allows",
    "QOSMaxGRESPerUser": "you already use the most GPUs your QoS allows",
    "AssocMaxJobsLimit": "your account runs the most jobs it may",
    "AssocGrpGRES": "your project's GPU budget is fully in use",
    "Licenses": "it waits for a licence",
    "NodeDown": "a node it needs is down",
    "BadConstraints": "no node can ever satisfy this request; ask a trainer",
    "None": "it was just submitted",
}


class Phase(enum.Enum):
    """What a job means for its notebook server."""

    PENDING = "pending"
    RUNNING = "running"
    ENDING = "ending"
    ENDED = "ended"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class JobInfo:
    """One job as Slurm last described it."""

    job_id: str
    state: str
    reason: str = ""
    node: str = ""
    start: datetime | None = None
    end: datetime | None = None

    @property
    def phase(self) -> Phase:
        return classify(self.state)

    def describe_reason(self) -> str:
        """The pending reason in plain words, keeping Slurm's code for people who search for it."""
        code = self.reason.split(",")[0].strip()
        words = REASONS.get(code)
        if words and code != "None":
            return f"{code}: {words}"
        return self.reason if self.reason not in ("", "None") else ""


def classify(state: str) -> Phase:
    base = state.split()[0].rstrip("+") if state else ""
    if base in PENDING_STATES:
        return Phase.PENDING
    if base in RUNNING_STATES:
        return Phase.RUNNING
    if base in ENDING_STATES:
        return Phase.ENDING
    if base in ENDED_STATES or base.startswith("CANCELLED"):
        return Phase.ENDED
    return Phase.UNKNOWN


def parse_time(text: str) -> datetime | None:
    """squeue prints ISO local times, or N/A / Unknown / None when it has no estimate."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_squeue(stdout: str) -> tuple[dict[str, JobInfo], list[str]]:
    """Jobs by id, plus the lines that did not match ``SQUEUE_FORMAT`` (an unrecognised answer)."""
    jobs: dict[str, JobInfo] = {}
    odd: list[str] = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != SQUEUE_FIELDS or not parts[0].strip().isdigit() or classify(parts[1].strip()) is Phase.UNKNOWN:
            odd.append(line)
            continue
        job_id, state, reason, node, start, end = (p.strip() for p in parts)
        jobs[job_id] = JobInfo(
            job_id=job_id,
            state=state,
            reason=reason,
            node="" if node in ("n/a", "(null)") else node,
            start=parse_time(start),
            end=parse_time(end),
        )
    return jobs, odd


def parse_sacct_state(stdout: str) -> str | None:
    """The allocation's state from ``sacct -n -X -P -o State``, e.g. ``CANCELLED by 1001`` -> CANCELLED."""
    for line in stdout.splitlines():
        word = line.strip().split(" ")[0] if line.strip() else ""
        if classify(word) is not Phase.UNKNOWN:
            return word
    return None
