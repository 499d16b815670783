"""Nothing left behind: each grading run's sandbox folders and cgroups, removed on every exit path, and found if not.

Every sandbox folder of a local run lives under one run folder ``/tmp/academy-grading-<tag>/`` (in /tmp
because the sandbox account must traverse to it; ``0711`` so it cannot list it), one sub-folder per job,
and every kernel cgroup is named after its job (``academy/grade-<tag><job>-<id>``).  So whatever a dead
kernel, a killed worker or a timed-out job left is removed when that job's result is taken
(:func:`cleanup_job`), and the whole run is removed in the parent's ``finally``, which a ``SIGTERM``
also reaches (:func:`sigterm_as_exit`).  Only ``SIGKILL`` of the parent can leave anything, and
``academy doctor`` lists such leftovers (:func:`leftovers`) with the command that removes them.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import threading
import uuid
from pathlib import Path

from academy.course.grading import limits
from academy.course.grading.jobs import JobSpec

RUN_PREFIX = "academy-grading-"
OLD_BOX_PREFIX = "academy-sbx-"  # sandbox folders made directly in /tmp by earlier versions


def make_run_scratch(base: str | None = None) -> str:
    tag = uuid.uuid4().hex[:8]
    path = os.path.join(base or tempfile.gettempdir(), f"{RUN_PREFIX}{tag}")
    os.mkdir(path, 0o711)
    os.chmod(path, 0o711)
    with open(os.path.join(path, "owner.pid"), "w") as fh:
        fh.write(str(os.getpid()))
    return path


def _tag(scratch: str) -> str:
    return os.path.basename(scratch)[len(RUN_PREFIX):]


def job_scratch(scratch: str, number: int) -> dict:
    """Worker settings that put one job's sandbox folders and cgroups where the parent will find them."""
    folder = os.path.join(scratch, f"job{number:04d}")
    os.mkdir(folder, 0o711)
    os.chmod(folder, 0o711)
    return {"SandboxKernelManager.scratch_root": folder,
            "SandboxKernelManager.run_tag": f"{_tag(scratch)}{number:04d}"}


def cleanup_job(spec: JobSpec) -> None:
    folder = spec.settings.get("SandboxKernelManager.scratch_root")
    tag = spec.settings.get("SandboxKernelManager.run_tag")
    if tag:
        limits.remove_groups(tag)
    if folder and os.path.isdir(folder):
        for name in os.listdir(folder):
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)


def remove_run_scratch(scratch: str) -> None:
    limits.remove_groups(_tag(scratch))
    shutil.rmtree(scratch, ignore_errors=True)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def sigterm_as_exit():
    """Turn SIGTERM into SystemExit (main thread only) so ``finally`` blocks clean up; returns the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_exit)


def restore_sigterm(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (OSError, ValueError):
        return False


def leftovers(tmp: str | None = None, include_old: bool = True) -> list[str]:
    """Sandbox folders and grading cgroups that no running grader owns."""
    tmp = tmp or tempfile.gettempdir()
    found = []
    live_tags = []
    for path in sorted(glob.glob(os.path.join(tmp, RUN_PREFIX + "*"))):
        if _alive(Path(path) / "owner.pid"):
            live_tags.append(_tag(path))
        else:
            found.append(path)
    if include_old:
        found += sorted(glob.glob(os.path.join(tmp, OLD_BOX_PREFIX + "*")))
    for group in limits.leftover_groups():
        if not any(group.name.startswith(f"{limits.PREFIX}{t}") for t in live_tags):
            found.append(str(group))
    return found


def remove_leftovers(tmp: str | None = None) -> list[str]:
    removed = leftovers(tmp, include_old=False)
    for path in removed:
        if path.startswith(str(limits.cgroups.ROOT)):
            limits.remove_groups(Path(path).name[len(limits.PREFIX):])
        else:
            shutil.rmtree(path, ignore_errors=True)
    return removed


def doctor_check():
    """``academy doctor``: fail when a grading run left sandbox folders or cgroups behind (a SIGKILLed grader).

    Folders of earlier versions (``/tmp/academy-sbx-*``) cannot be told apart from a running old grader's,
    so they are listed without failing the check."""
    from academy.doctor_checks import DoctorCheck

    left = leftovers(include_old=False)
    old = sorted(glob.glob(os.path.join(tempfile.gettempdir(), OLD_BOX_PREFIX + "*")))
    if left:
        return DoctorCheck("grading leftovers", False,
                           f"{len(left)} left by a killed grading run (student files): {', '.join(left[:3])}; "
                           "remove with `academy course cleanup`")
    detail = "no sandbox folders or grading cgroups left behind"
    if old:
        detail += f"; {len(old)} folders of an older grader version in /tmp ({OLD_BOX_PREFIX}*) to check by hand"
    return DoctorCheck("grading leftovers", True, detail)
