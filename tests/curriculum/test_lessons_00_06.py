"""Lesson support modules 00-06: exercise checks, widget callbacks and the helpers the notebooks rely on."""
from __future__ import annotations

import re
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from academy_lessons import (
    n00_welcome as l00,
    n01_python_numpy as l01,
    n02_pandas_data as l02,
    n03_classical_ml as l03,
    n04_nn_from_scratch as l04,
    n05_pytorch_fundamentals as l05,
    n06_gpu_computing as l06,
)

EXERCISES = [
    l00.free_gib_exercise, l00.hours_left_exercise,
    l01.softmax_exercise, l01.standardize_exercise, l01.pairwise_sq_dists_exercise,
    l02.normalise_status_exercise, l02.gpu_hours_by_department_exercise,
    l03.majority_baseline_exercise, l03.scaled_pipeline_exercise, l03.best_depth_exercise,
    l04.cross_entropy_exercise, l04.relu_backward_exercise, l04.sgd_step_exercise,
    l05.autograd_exercise, l05.tiny_mlp_exercise, l05.train_step_exercise,
    l06.matmul_flops_exercise, l06.achieved_tflops_exercise, l06.autocast_matmul_exercise,
]


@pytest.fixture(autouse=True)
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv("ACADEMY_PROGRESS_FILE", str(path))
    return path


def solution_of(ex):
    """Run the exercise's published solution and return the function or class it defines."""
    code = re.search(r"```python\n(.*?)```", ex.solution_text, re.S).group(1)
    namespace = {"np": np, "pd": pd, "torch": torch, "nn": nn, "shutil": shutil, "make_pipeline": make_pipeline,
                 "StandardScaler": StandardScaler, "LogisticRegression": LogisticRegression}
    exec(code, namespace)
    name = re.search(r"^(?:def|class) (\w+)", code, re.M).group(1)
    return namespace[name]


def unattempted(*args, **kwargs):
    raise NotImplementedError


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: f"{ex.notebook}:{ex.name}")
def test_published_solution_passes_its_check(ex, progress_file):
    """Does every exercise's own solution pass its check, and is the attempt logged?"""
    assert ex.check(solution_of(ex)), ex.results[-1].message
    assert '"passed": true' in progress_file.read_text()


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda ex: f"{ex.notebook}:{ex.name}")
def test_unattempted_exercise_fails_gently(ex, capsys):
    """Does the untouched starter cell give a ❌ and 'not attempted' instead of an exception?"""
    assert not ex.check(unattempted)
    assert "Not attempted yet" in ex.results[-1].message
    assert "❌" in capsys.readouterr().out


class BadTinyMLPList(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class BadTinyMLPLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Linear(16, 3))

    def forward(self, x):
        return self.net(x)


def _sgd_up(params, grads, lr):
    return {k: params[k] + lr * grads[k] for k in params}


def _no_zero_grad(model, X, y, loss_fn, optimizer):
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _tensor_loss(model, X, y, loss_fn, optimizer):
    optimizer.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    optimizer.step()
    return loss


WRONG_ANSWERS = [
    (l00.free_gib_exercise, lambda p: shutil.disk_usage(p).free, "bytes"),
    (l00.free_gib_exercise, lambda p: shutil.disk_usage(p).free / 1e9, "GB (10**9 bytes)"),
    (l00.hours_left_exercise, lambda end, now: (end - now) / 60, "minutes"),
    (l00.hours_left_exercise, lambda end, now: (end - now) / 3600, "already passed"),
    (l00.hours_left_exercise, lambda end, now: (now - end) / 3600, "sign is flipped"),
    (l01.softmax_exercise, lambda x: np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True), "overflows"),
    (l01.softmax_exercise, lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum(), "each row"),
    (l01.softmax_exercise, lambda x: np.exp(x), "sum to 1"),
    (l01.standardize_exercise, lambda X: (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True), "axis=0"),
    (l01.pairwise_sq_dists_exercise, lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)), "squared"),
    (l01.pairwise_sq_dists_exercise, lambda a, b: a @ b.T, "Right shape, wrong values"),
    (l02.normalise_status_exercise, lambda s: s.str.strip().str.upper(), "first word"),
    (l02.normalise_status_exercise, lambda s: s.str.split().str[0], "upper case"),
    (l02.gpu_hours_by_department_exercise, lambda df: (df.gpus * df.runtime_min).groupby(df.department).sum(), "GPU-minutes"),
    (l02.gpu_hours_by_department_exercise, lambda df: (df.gpus * df.runtime_min / 60).groupby(df.department).sum().sort_values(), "largest"),
    (l03.majority_baseline_exercise, lambda y: np.bincount(y).max(), "divide by the number"),
    (l03.scaled_pipeline_exercise, lambda: LogisticRegression(max_iter=1000), "Pipeline"),
    (l03.scaled_pipeline_exercise, lambda: make_pipeline(LogisticRegression()), "scale the features"),
    (l03.best_depth_exercise, lambda d, tr, va: d[np.argmax(tr.mean(axis=1))], "training"),
    (l03.best_depth_exercise, lambda d, tr, va: np.argmax(va.mean(axis=1)), "position"),
    (l04.cross_entropy_exercise, lambda p, y: -np.log(p[np.arange(len(y)), y]).sum(), "mean"),
    (l04.cross_entropy_exercise, lambda p, y: np.log(p[np.arange(len(y)), y]).mean(), "sign is flipped"),
    (l04.cross_entropy_exercise, lambda p, y: -np.log(p[np.arange(len(y)), y]), "scalar"),
    (l04.relu_backward_exercise, lambda dout, z: (z > 0).astype(float), "upstream gradient"),
    (l04.relu_backward_exercise, lambda dout, z: dout * np.maximum(z, 0), "mask"),
    (l04.sgd_step_exercise, _sgd_up, "downhill"),
    (l05.autograd_exercise, lambda x: torch.sin(x) * x, "f itself"),
    (l05.autograd_exercise, lambda x: torch.cos(x), "product rule"),
    (l05.tiny_mlp_exercise, BadTinyMLPList, "plain Python list"),
    (l05.tiny_mlp_exercise, BadTinyMLPLinear, "non-linearity"),
    (l05.train_step_exercise, _no_zero_grad, "zero_grad"),
    (l05.train_step_exercise, _tensor_loss, "loss.item()"),
    (l06.matmul_flops_exercise, lambda n, k, m: n * k * m, "multiplications only"),
    (l06.achieved_tflops_exercise, lambda n, s: n**3 / s / 1e12, "2·n³"),
    (l06.achieved_tflops_exercise, lambda n, s: 2 * n**3 / s / 1e9, "GFLOP/s"),
    (l06.autocast_matmul_exercise, lambda a, b, dt: a @ b, "bfloat16"),
]


@pytest.mark.parametrize("ex, wrong, expected", WRONG_ANSWERS,
                         ids=[f"{ex.name}-{i}" for i, (ex, _, _) in enumerate(WRONG_ANSWERS)])
def test_typical_mistake_gets_specific_feedback(ex, wrong, expected):
    """Does a typical wrong answer fail with feedback that names the mistake?"""
    assert not ex.check(wrong)
    assert expected in ex.results[-1].message


# ---------------------------------------------------------------- 00 welcome

def test_laptop_without_slurm_is_described_plainly(monkeypatch, tmp_path):
    """Without Slurm, does about_my_server say so instead of failing, and still measure home?"""
    env = {"HOME": str(tmp_path), "USER": "ada"}
    info = l00.about_my_server(env)
    assert not info.under_slurm and info.walltime_left_s is None
    assert "not running under Slurm" in info.summary()
    assert info.user == "ada"
    assert info.storage[0].name == "home" and info.storage[0].free_gib > 0
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert len(info.gpus) == n_gpus


def test_slurm_job_environment_is_read(tmp_path):
    """Inside a Slurm job, are job id, node, visible GPUs, walltime and scratch all reported?"""
    env = {"SLURM_JOB_ID": "4242", "SLURMD_NODENAME": "gpu-node-07", "CUDA_VISIBLE_DEVICES": "0,1",
           "ACADEMY_WALLTIME_END": str(time.time() + 7200), "ACADEMY_SCRATCH": str(tmp_path), "USER": "ada"}
    info = l00.about_my_server(env)
    assert info.under_slurm and info.slurm_job_id == "4242" and info.hostname == "gpu-node-07"
    assert info.cuda_visible_devices == "0,1"
    assert info.walltime_source == "ACADEMY_WALLTIME_END" and 7190 <= info.walltime_left_s <= 7200
    scratch = [a for a in info.storage if a.name == "scratch"]
    assert scratch and scratch[0].path == tmp_path and scratch[0].exists
    assert "gpu-node-07" in info.summary() and "1 h 59 min" in info.summary()


def test_malformed_or_unknown_walltime_falls_back_to_unknown():
    """Does a garbled ACADEMY_WALLTIME_END, or a job squeue cannot report, give 'unknown' instead of an error?"""
    left, source = l00.walltime_left({"ACADEMY_WALLTIME_END": "tomorrow", "SLURM_JOB_ID": "999999999"})
    assert (left, source) == (None, "none")
    assert l00.walltime_left({"ACADEMY_WALLTIME_END": str(time.time() - 50)})[0] == 0


@pytest.mark.parametrize("text, seconds", [
    ("2-03:04:05", 183845), ("1:00:00", 3600), ("45:10", 2710), ("0:05", 5), ("UNLIMITED", None),
    ("NOT_SET", None), ("", None), ("1-00:00:00\n", 86400),
])
def test_slurm_time_left_formats_parse(text, seconds):
    """Are all of squeue's %L time formats, and its non-times, understood?"""
    assert l00.parse_slurm_time(text) == seconds


def test_durations_read_naturally():
    """Are walltimes shown as hours and minutes a learner can read at a glance?"""
    assert [l00.format_duration(s) for s in (3725, 125, 9, -3)] == ["1 h 02 min", "2 min 05 s", "9 s", "0 s"]


def test_install_advice_teaches_own_environments_and_never_user_installs(tmp_path, monkeypatch):
    """In the shared env does the advice say `academy env create`, in an own env `%pip install`, and never --user?"""
    shared = l00.install_advice()
    assert "academy env create" in shared and "%pip install" in shared and "--user" not in shared
    own = tmp_path / ".academy" / "envs" / "myenv"
    own.mkdir(parents=True)
    monkeypatch.setattr(l00.sys, "prefix", str(own))
    advice = l00.install_advice()
    assert advice.startswith("%pip install PACKAGE") and "'myenv'" in advice and "--user" not in advice


# ---------------------------------------------------------------- 01-02

def test_best_time_measures_and_loop_matches_numpy():
    """Does best_time report a positive per-call time, and does the reference loop agree with NumPy?"""
    xs = np.arange(1000.0)
    timing = l01.best_time(lambda: l01.sum_of_squares_loop(xs.tolist()), "loop", 1000, repeat=3)
    assert timing.seconds > 0 and timing.n == 1000
    assert l01.sum_of_squares_loop(xs.tolist()) == pytest.approx((xs**2).sum())


def test_messy_job_log_hides_the_truth_it_was_made_from():
    """Does the messy log contain duplicates, sentinels and label variants, with the clean truth alongside?"""
    log = l02.make_gpu_jobs(200, seed=1)
    assert len(log.messy) == len(log.clean) + log.n_duplicates and log.messy.duplicated().sum() == log.n_duplicates
    assert (log.messy["energy_kwh"] < 0).any() and log.messy["gpus"].isna().any()
    assert log.messy["gpu_type"].nunique() > len(l02.TRUE_POWER_KW)
    assert set(l02.reference_status(log.messy["status"])) <= set(l02.STATUSES)
    with pytest.raises(ValueError, match="at least 20"):
        l02.make_gpu_jobs(5)


# ---------------------------------------------------------------- 03-04 widgets

def test_depth_slider_redraws_the_decision_boundary():
    """Does moving the explorer's depth slider refit the tree and put a new figure in the Output?"""
    data = l03.moons(120, seed=2)
    box = l03.boundary_explorer(data)
    slider, out = box.children
    assert box.results[-1].depth == slider.value
    slider.value = 9
    assert box.results[-1].depth == 9 and len(box.results) == 2
    assert "image/png" in out.outputs[0]["data"]
    shallow, deep = l03.decision_boundary(1, data), l03.decision_boundary(12, data)
    assert deep.train_acc > shallow.train_acc and deep.proba.shape == (120, 120)
    with pytest.raises(ValueError, match="depth"):
        l03.decision_boundary(0, data)


def test_learning_rate_slider_shows_crawl_converge_and_diverge():
    """Does the loss curve crawl at lr=0.001, halve at lr=1 and blow up at lr=30, driven through the slider?"""
    data = l04.spiral(40, seed=0)
    box = l04.lr_explorer(steps=300, data=data)
    slider, out = box.children
    slider.value = 1.0
    lr, losses = box.curves[-1]
    assert lr == pytest.approx(1.0) and losses[-1] < 0.5 * losses[0]
    assert "image/png" in out.outputs[0]["data"]
    crawl = l04.lr_curve(0.001, 300, data)
    assert crawl[-1] > 0.8 * crawl[0] > losses[-1]
    diverged = l04.lr_curve(30.0, 300, data)
    assert not np.isfinite(diverged[-1]) or diverged[-1] > crawl[0]
    with pytest.raises(ValueError, match="positive"):
        l04.lr_curve(0.0)


def test_reference_backprop_passes_gradient_check():
    """Does the reference network's backward pass agree with central differences to 1e-6?"""
    data = l04.spiral(5, seed=3)
    params = l04.init_params(2, 4, 3, np.random.default_rng(0))
    probs, cache = l04.forward(params, data.X)
    grads = l04.backward(params, probs, cache, data.y)
    for name, p in params.items():
        numeric = l04.numerical_gradient(lambda: l04.cross_entropy(l04.forward(params, data.X)[0], data.y), p)
        rel = np.abs(grads[name] - numeric) / np.maximum(np.abs(grads[name]) + np.abs(numeric), 1e-12)
        assert rel.max() < 1e-6, name


# ---------------------------------------------------------------- 05-06

def test_spiral_tensors_have_training_dtypes():
    """Are features float32 and labels int64, as nn.CrossEntropyLoss needs?"""
    X, y = l05.spiral_tensors(10, seed=0)
    assert X.dtype == torch.float32 and y.dtype == torch.int64 and X.shape == (30, 2)
    assert l05.count_parameters(nn.Linear(2, 3)) == 9


@pytest.mark.parametrize("name, label", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA GH200 480GB", "GH200"), ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA L40S", "L40S"), ("NVIDIA L4", "L4"), ("Tesla V100-SXM2-32GB", None),
])
def test_gpu_names_map_to_the_right_peak(name, label):
    """Does each card name from torch.cuda.get_device_name find its own datasheet peak, not a look-alike's?"""
    peak = l06.gpu_peak(name)
    assert (peak.label if peak else None) == label


def test_matmul_measurement_is_a_real_positive_rate():
    """Does measure_matmul report the FLOP rate implied by its own timing?"""
    r = l06.measure_matmul(64, torch.float32, "cpu", repeats=3, min_time_s=0.0)
    assert r.seconds > 0 and r.tflops == pytest.approx(2 * 64**3 / r.seconds / 1e12)
    assert r.dtype == "float32" and r.device == "cpu"
    with pytest.raises(ValueError):
        l06.measure_matmul(0)
    with pytest.raises(ValueError, match="CUDA"):
        l06.copy_bandwidth(1, pinned=True, device="cpu")


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_pass_sees_every_item_and_cannot_beat_physics(workers):
    """Does one loader pass deliver every item, taking at least the total load time divided by the workers?"""
    ds = l06.SlowDataset(n_items=12, delay_s=0.01, shape=(2, 2))
    r = l06.loader_pass(ds, num_workers=workers, batch_size=4)
    assert r.num_workers == workers and not r.pin_memory
    assert r.seconds >= 12 * 0.01 / max(1, workers) * 0.9
    assert r.items_per_s == pytest.approx(12 / r.seconds)
    assert len(ds) == 12 and ds[3][0].shape == (2, 2)
    assert r.items == 12


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_pass_counts_overlapping_loads_not_machine_speed(workers):
    """Do two workers wait on I/O at the same time (max_parallel_loads 2), while no workers load one item at a time?

    This is what notebook 06 asserts: it holds on a busy machine, where the speed-up does not.
    """
    ds = l06.SlowDataset(n_items=16, delay_s=0.02, shape=(2, 2))
    r = l06.loader_pass(ds, num_workers=workers, batch_size=4)
    assert r.max_parallel_loads == max(1, workers)


def test_max_parallel_counts_open_intervals():
    """Does max_parallel count intervals open at one instant, treating touching intervals as sequential?"""
    assert l06.max_parallel([]) == 0
    assert l06.max_parallel([(0, 1), (1, 2), (2, 3)]) == 1
    assert l06.max_parallel([(0, 2), (1, 3), (1.5, 1.6), (4, 5)]) == 3
