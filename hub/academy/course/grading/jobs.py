"""The records that pass between the autograde parent and its workers: a job's spec, its result, its paths.

Kept apart from :mod:`academy.course.grading.worker` so that the parent (and the Slurm backend) can build and read
jobs without importing nbgrader's converters, which only the workers need.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field


@dataclass
class JobSpec:
    """Everything one worker needs; JSON-serialisable so a Slurm task can read it from disk."""

    student: str
    assignment: str
    submitted_dir: str
    job_dir: str
    snapshot_db: str
    config_file: str
    sandbox_user: str = ""
    settings: dict = field(default_factory=dict)  # "Class.trait" -> JSON value, applied last

    @classmethod
    def load(cls, path: str) -> "JobSpec":
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))

    def dump(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=1)


@dataclass
class JobResult:
    """What a worker reports back; ``status`` is "graded" or "failed"."""

    student: str
    assignment: str
    status: str
    message: str = ""
    seconds: float = 0.0
    log: str = ""
    flags: list = field(default_factory=list)  # what a tampering submission changed, for the trainer
    notes: list = field(default_factory=list)  # limits hit, cells ignored: said to trainer and student
    traceback: str = ""  # the grader-side traceback of a failure, kept after the job folder is gone

    @classmethod
    def load(cls, path: str) -> "JobResult":
        with open(path, encoding="utf-8") as fh:
            return cls(**json.load(fh))


def job_paths(job_dir: str) -> dict[str, str]:
    root = os.path.join(job_dir, "course")
    return {
        "root": root,
        "db": os.path.join(root, "gradebook.db"),
        "events": os.path.join(job_dir, "events.jsonl"),
        "result": os.path.join(job_dir, "result.json"),
        "kernel_log": os.path.join(job_dir, "kernel.log"),
    }
