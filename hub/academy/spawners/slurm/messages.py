"""The sentences a learner reads about their Slurm job: progress while it starts, why it failed or ended."""
from __future__ import annotations

import html
import pwd
import re
from datetime import datetime

from academy.spawners.slurm.poller import JobView
from academy.slurm.states import Phase

ENDINGS = {
    "CANCELLED": "was cancelled outside the hub (scancel, or an administrator)",
    "TIMEOUT": "reached the end of its walltime, so Slurm stopped it; save often and pick more hours next time",
    "NODE_FAIL": "was lost because its compute node failed",
    "PREEMPTED": "was preempted by a higher-priority job",
    "OUT_OF_MEMORY": "ran out of memory; pick a profile with more memory",
    "BOOT_FAIL": "could not start because its node failed to boot",
    "DEADLINE": "missed its deadline",
    "FAILED": "failed",
    "COMPLETED": "exited",
    "COMPLETING": "ended, and Slurm is still cleaning up its node",
    "GONE": "ended while the hub was not watching (Slurm no longer knows it)",
}


class JobFailed(RuntimeError):
    """A spawn failed for a reason the learner can read; JupyterHub shows ``jupyterhub_*_message``."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}" if log_tail else message)
        self.jupyterhub_message = str(self)
        self.jupyterhub_html_message = html.escape(message) + (f"<pre>{html.escape(log_tail)}</pre>" if log_tail else "")


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M") if moment else ""


def _minutes_until(moment: datetime) -> str:
    minutes = max(0, round((moment - datetime.now()).total_seconds() / 60))
    if minutes < 1:
        return "within a minute"
    if minutes < 120:
        return f"in about {minutes} min"
    return f"in about {minutes // 60} h"


def ended(view: JobView) -> str:
    """Why a running server's job is gone, for the hub pages the learner sees next."""
    state = (view.info.state if view.info else "GONE").split()[0].rstrip("+")
    what = ENDINGS.get(state, f"ended ({state})")
    who = re.search(r"CANCELLED by ([0-9]+)", view.note or "")
    if state == "CANCELLED" and who:  # sacct's word (Slurm accounting): who ran scancel
        what = "was cancelled by an administrator" if who.group(1) == "0" else f"was cancelled by {_user(int(who.group(1)))} (scancel)"
    when = f" at {_clock(view.info.end)}" if view.info and view.info.end and state != "GONE" else ""
    saved = " Notebooks open in JupyterLab were saved 5 minutes and 1 minute before the end." if state == "TIMEOUT" else ""
    return (f"Your previous server (Slurm job {view.job_id}) {what}{when}.{saved} "
            "Your files are kept; start a new server when you are ready.")


def start_failed(view: JobView, log_path: str, has_tail: bool) -> str:
    """Why a job ended before JupyterLab was reachable; the log's last lines follow it."""
    state = view.info.state if view.info else "ended"
    reason = view.info.describe_reason() if view.info else ""
    head = f"Your Slurm job {view.job_id} ended before JupyterLab started ({state}{': ' + reason if reason else ''})."
    if not has_tail:
        return f"{head} Its log {log_path} is empty or unreadable."
    return f"{head} Last lines of {log_path}:"


def progress(view: JobView | None, partition: str | None, port_known: bool) -> tuple[int, str]:
    """Percent and message for JupyterHub's spawn page while the job starts."""
    if view is None:
        return 10, "Submitting your server to Slurm…"
    where = f" in partition {partition}" if partition else ""
    info = view.info
    if view.note:
        last = f" (last known: {info.state})" if info else ""
        return 20, f"Slurm job {view.job_id}: {view.note}; still waiting{last}."
    if view.phase is Phase.PENDING and info:
        reason = info.describe_reason()
        text = f"Slurm job {view.job_id} is {info.state}{where}" + (f" ({reason})" if reason else "") + "."
        if info.start and info.start > datetime.now():
            text += f" Slurm expects it to start at {_clock(info.start)} ({_minutes_until(info.start)})."
        return 30, text
    if view.phase is Phase.RUNNING and info:
        if port_known:
            return 90, f"JupyterLab on {info.node} reported its port; connecting…"
        return 60, f"Slurm job {view.job_id} is running on {info.node or 'its node'}; JupyterLab is starting…"
    return 20, f"Slurm job {view.job_id} submitted{where}; waiting for the scheduler…"


def last_stop_message(user) -> str:
    """Template variable ``academy_last_stop``: why the user's last job ended, or ''.

    JupyterHub calls template-variable callables with the current user (None when logged out).
    """
    try:
        return getattr(user.spawner, "last_stop_message", "") if user is not None else ""
    except AttributeError:  # a service, not a user
        return ""
