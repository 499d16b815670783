"""Lesson 01 support: timing helper and the NumPy exercises (softmax, standardise, pairwise distances)."""
from __future__ import annotations

import timeit
from dataclasses import dataclass
from typing import Callable

import numpy as np

from academy.learn import exercise

NOTEBOOK = "01_python_numpy"


@dataclass
class Timing:
    """Best-of-several wall time of one function, in seconds per call."""

    label: str
    n: int
    seconds: float


def best_time(fn: Callable[[], object], label: str = "", n: int = 0, repeat: int = 5, budget_s: float = 0.02) -> Timing:
    """Fastest of ``repeat`` timings: the minimum is least disturbed by other work on a shared node."""
    timer = timeit.Timer(fn)
    first = timer.timeit(number=1)
    # Fast functions are called many times per timing so the clock's resolution does not dominate.
    number = int(min(1000, max(1, budget_s / max(first, 1e-9))))
    best = min(timer.repeat(repeat=repeat, number=number)) / number
    return Timing(label, n, min(best, first))


def sum_of_squares_loop(values: list[float]) -> float:
    total = 0.0
    for v in values:
        total += v * v
    return total


def pairwise_sq_dists_loop(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            out[i, j] = float(((a[i] - b[j]) ** 2).sum())
    return out


def _reference_softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _as_array(got, name: str) -> np.ndarray:
    assert got is not None, f"{name} returned None: did you forget to `return` the result?"
    return np.asarray(got, dtype=float)


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "softmax", title="Stable softmax",
    hint="softmax(x) = exp(x) / sum(exp(x)). Subtracting x.max() first gives the same answer without overflow. "
         "For a 2-D input, work along the last axis and keep its dimension (keepdims=True).",
    solution="```python\ndef softmax(x):\n    z = np.exp(x - x.max(axis=-1, keepdims=True))\n    return z / z.sum(axis=-1, keepdims=True)\n```",
)
def softmax_exercise(fn) -> str:
    small = np.array([1.0, 2.0, 3.0])
    got = _as_array(fn(small), "softmax")
    assert got.shape == small.shape, f"For an input of shape {small.shape} the output should have the same shape, got {got.shape}."
    assert np.isclose(got.sum(), 1.0), f"The outputs should sum to 1, yours sum to {got.sum():.4f}: did you divide by the total?"
    assert np.allclose(got, _reference_softmax(small)), "The outputs sum to 1 but are not exp(x) / sum(exp(x))."
    with np.errstate(all="ignore"):
        big = _as_array(fn(np.array([1000.0, 1001.0, 1002.0])), "softmax")
    assert np.all(np.isfinite(big)), "softmax([1000, 1001, 1002]) gives nan or inf: exp(1000) overflows. Shift the inputs first."
    batch = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 10.0]])
    got2 = _as_array(fn(batch), "softmax")
    assert got2.shape == batch.shape, f"A batch of shape {batch.shape} should keep its shape, got {got2.shape}."
    assert np.allclose(got2.sum(axis=1), 1.0), "For a 2-D input each row should sum to 1: normalise along the last axis."
    assert np.allclose(got2, _reference_softmax(batch)), "Each row sums to 1 but the values are off: subtract each row's own max."
    return "It is numerically stable and works on batches."


@exercise(
    NOTEBOOK, "standardize", title="Standardise columns",
    hint="X.mean(axis=0) has one value per column (shape (d,)); broadcasting subtracts it from every row. Do the same with X.std(axis=0).",
    solution="```python\ndef standardize(X):\n    return (X - X.mean(axis=0)) / X.std(axis=0)\n```",
)
def standardize_exercise(fn) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(loc=[5.0, -3.0, 100.0], scale=[2.0, 0.5, 30.0], size=(200, 3))
    original = X.copy()
    got = _as_array(fn(X), "standardize")
    assert np.array_equal(X, original), "Your function changed its input X in place; return a new array instead."
    assert got.shape == X.shape, f"The result should have the shape of X, {X.shape}, got {got.shape}."
    means, stds = got.mean(axis=0), got.std(axis=0)
    if np.allclose(got.mean(axis=1), 0) and not np.allclose(means, 0):
        raise AssertionError("Each row has mean 0, but each column should: use axis=0.")
    assert np.allclose(means, 0, atol=1e-9), f"Each column should have mean 0, got {np.round(means, 3)}."
    assert np.allclose(stds, 1, atol=1e-9), f"Each column should have standard deviation 1, got {np.round(stds, 3)}."


@exercise(
    NOTEBOOK, "pairwise_sq_dists", title="Pairwise squared distances",
    hint="Give a the shape (n, 1, d) with a[:, None, :] and b the shape (1, m, d) with b[None, :, :]. "
         "Their difference broadcasts to (n, m, d); square it and sum over the last axis.",
    solution="```python\ndef pairwise_sq_dists(a, b):\n    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)\n```",
)
def pairwise_sq_dists_exercise(fn) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    got = _as_array(fn(a, b), "pairwise_sq_dists")
    assert got.shape == (6, 5), f"For a of shape (6, 4) and b of shape (5, 4) the result should be (6, 5), got {got.shape}."
    truth = pairwise_sq_dists_loop(a, b)
    if np.allclose(got, np.sqrt(truth)):
        raise AssertionError("Those are the distances; the task asks for the squared distances (leave out the square root).")
    assert np.allclose(got, truth), "Right shape, wrong values: subtract, square, then sum over the feature axis (the last one)."
