"""Lesson 02 support: a messy synthetic GPU-job log with known ground truth, and the pandas exercises."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from academy.learn import exercise

NOTEBOOK = "02_pandas_data"
DEPARTMENTS = ["Physics", "Linguistics", "Medicine", "Astronomy", "Industry"]
# Average draw per GPU while a job runs (board power under typical training load, not the TDP).
TRUE_POWER_KW = {"H100": 0.55, "A100": 0.30, "L40S": 0.25}
GPU_SPELLINGS = {
    "H100": ["H100", "h100", " H100", "H-100", "NVIDIA H100", "h100 "],
    "A100": ["A100", "a100", "A-100", "A100 ", "nvidia a100"],
    "L40S": ["L40S", "l40s", "L40-S", "NVIDIA L40S "],
}
STATUSES = ["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"]


@dataclass
class JobLog:
    """The messy table a learner cleans, and the truth it was made from."""

    messy: pd.DataFrame
    clean: pd.DataFrame
    power_kw: dict[str, float]
    n_duplicates: int


def _messy_runtime(minutes: float, rng: np.random.Generator) -> str:
    style = rng.integers(4)
    if style == 0:
        return f"{minutes:.0f} min"
    if style == 1:
        return f"{minutes / 60:.2f}h"
    if style == 2:
        return f"{minutes * 60:.0f}s"
    return f"{minutes:.0f}"  # a bare number: the scheduler export's default unit, minutes


def make_gpu_jobs(n_jobs: int = 400, seed: int = 0) -> JobLog:
    """A GPU accounting log with inconsistent labels, mixed units, sentinels, gaps and duplicate rows."""
    if n_jobs < 20:
        raise ValueError(f"n_jobs must be at least 20, got {n_jobs}")
    rng = np.random.default_rng(seed)
    gpu_type = rng.choice(list(TRUE_POWER_KW), size=n_jobs, p=[0.5, 0.3, 0.2])
    gpus = rng.choice([1, 2, 4, 8], size=n_jobs, p=[0.5, 0.25, 0.15, 0.10])
    runtime_min = np.round(np.exp(rng.normal(np.log(90), 1.0, size=n_jobs)).clip(1, 48 * 60))
    status = rng.choice(STATUSES, size=n_jobs, p=[0.75, 0.1, 0.1, 0.05])
    power = np.array([TRUE_POWER_KW[g] for g in gpu_type])
    energy = gpus * runtime_min / 60 * power * rng.normal(1.0, 0.05, size=n_jobs)
    # Working hours get more submissions than nights: a visible pattern for the exploration section.
    hour = rng.choice(24, size=n_jobs, p=_hour_weights())
    day = rng.integers(0, 28, size=n_jobs)
    submitted = pd.Timestamp("2025-03-03") + pd.to_timedelta(day, "D") + pd.to_timedelta(hour, "h") \
        + pd.to_timedelta(rng.integers(0, 3600, size=n_jobs), "s")
    clean = pd.DataFrame({
        "job_id": np.arange(100_000, 100_000 + n_jobs),
        "submitted": submitted,
        "department": rng.choice(DEPARTMENTS, size=n_jobs, p=[0.3, 0.1, 0.25, 0.2, 0.15]),
        "gpu_type": gpu_type,
        "gpus": gpus,
        "runtime_min": runtime_min,
        "status": status,
        "energy_kwh": energy.round(3),
    })

    messy = clean.copy()
    messy["submitted"] = messy["submitted"].dt.strftime("%Y-%m-%d %H:%M:%S")
    messy["department"] = [_shout_or_pad(d, rng) for d in messy["department"]]
    messy["gpu_type"] = [rng.choice(GPU_SPELLINGS[g]) for g in messy["gpu_type"]]
    messy["gpus"] = messy["gpus"].astype("float")
    messy.loc[rng.random(n_jobs) < 0.03, "gpus"] = np.nan
    messy["runtime"] = [_messy_runtime(m, rng) for m in clean["runtime_min"]]
    messy = messy.drop(columns="runtime_min")
    messy["status"] = [_slurm_status(s, rng) for s in messy["status"]]
    messy.loc[rng.random(n_jobs) < 0.04, "energy_kwh"] = -1.0  # the meter's "not measured" sentinel
    dup_rows = messy.sample(n=max(1, n_jobs // 25), random_state=seed)
    messy = pd.concat([messy, dup_rows]).sample(frac=1.0, random_state=seed + 1).reset_index(drop=True)
    columns = ["job_id", "submitted", "department", "gpu_type", "gpus", "runtime", "status", "energy_kwh"]
    return JobLog(messy[columns], clean, dict(TRUE_POWER_KW), len(dup_rows))


def _hour_weights() -> np.ndarray:
    w = np.array([1.0 if h < 8 or h > 19 else 4.0 for h in range(24)])
    return w / w.sum()


def _shout_or_pad(name: str, rng: np.random.Generator) -> str:
    style = rng.integers(4)
    return [name, name.upper(), f" {name.lower()}", f"{name}  "][style]


def _slurm_status(status: str, rng: np.random.Generator) -> str:
    if status == "CANCELLED":
        return f"CANCELLED by {rng.integers(1000, 5000)}"  # how sacct reports who cancelled
    return status.lower() if rng.random() < 0.2 else status


def reference_status(s: pd.Series) -> pd.Series:
    return s.str.strip().str.split().str[0].str.upper()


# ---------------------------------------------------------------- exercises

def _status_samples() -> pd.Series:
    return pd.Series(["COMPLETED", "completed", "CANCELLED by 1234", " FAILED", "timeout", "CANCELLED by 42"])


@exercise(
    NOTEBOOK, "normalise_status", title="Normalise the job status",
    hint="Chain string methods on the Series: .str.strip(), then .str.split().str[0] keeps the first word, then .str.upper().",
    solution="```python\ndef normalise_status(s):\n    return s.str.strip().str.split().str[0].str.upper()\n```",
)
def normalise_status_exercise(fn) -> None:
    raw = _status_samples()
    before = raw.copy()
    got = fn(raw)
    assert isinstance(got, pd.Series), f"normalise_status should return a pandas Series, not {type(got).__name__}."
    assert raw.equals(before), "Your function changed the Series you passed in; return a new one instead."
    assert len(got) == len(raw), f"The result should have one value per job ({len(raw)}), got {len(got)}."
    got_list = [str(v) for v in got]
    want = list(reference_status(raw))
    assert "completed" not in got_list, "Lower-case 'completed' is still there: convert to upper case."
    assert not any(v != v.strip() for v in got_list), "Some values still have spaces around them: strip them."
    assert not any(" " in v for v in got_list), "'CANCELLED by 1234' should become just 'CANCELLED': keep only the first word."
    assert got_list == want, f"Expected {want}, got {got_list}."


def _jobs_sample() -> pd.DataFrame:
    return pd.DataFrame({
        "department": ["Physics", "Medicine", "Physics", "Industry", "Medicine"],
        "gpus": [4, 1, 2, 8, 2],
        "runtime_min": [60.0, 120.0, 30.0, 15.0, 90.0],
    })


@exercise(
    NOTEBOOK, "gpu_hours_by_department", title="GPU-hours per department",
    hint="First make a new column gpu_hours = gpus * runtime_min / 60 (on a copy), then "
         "groupby('department')['gpu_hours'].sum(), then sort_values(ascending=False).",
    solution="```python\ndef gpu_hours_by_department(df):\n    hours = df['gpus'] * df['runtime_min'] / 60\n"
             "    return hours.groupby(df['department']).sum().sort_values(ascending=False)\n```",
)
def gpu_hours_by_department_exercise(fn) -> None:
    jobs = _jobs_sample()
    before = jobs.copy()
    got = fn(jobs)
    assert isinstance(got, pd.Series), f"Return a Series indexed by department, not {type(got).__name__}."
    assert jobs.equals(before), "Your function changed the DataFrame you passed in: work on a copy, or compute a Series."
    want = (jobs["gpus"] * jobs["runtime_min"] / 60).groupby(jobs["department"]).sum().sort_values(ascending=False)
    assert set(got.index) == set(want.index), f"The index should be the departments {sorted(want.index)}, got {list(got.index)}."
    wrong_units = (jobs["gpus"] * jobs["runtime_min"]).groupby(jobs["department"]).sum()
    if np.allclose(got.reindex(wrong_units.index), wrong_units):
        raise AssertionError("Those are GPU-minutes: divide the runtime by 60 to get hours.")
    no_gpus = (jobs["runtime_min"] / 60).groupby(jobs["department"]).sum()
    if np.allclose(got.reindex(no_gpus.index), no_gpus):
        raise AssertionError("Those are job-hours: multiply by the number of GPUs each job used.")
    assert np.allclose(got.reindex(want.index), want), f"Expected {want.round(2).to_dict()}, got {got.round(2).to_dict()}."
    assert list(got.index) == list(want.index), "The totals are right; now sort them from largest to smallest."
