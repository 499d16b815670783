"""Lesson 10 support: calibration and bootstrap helpers, the decision-threshold explorer, and the exercises."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from academy.learn import exercise
from academy.learn.widgets import show_figure

NOTEBOOK = "10_evaluation"


# ---------------------------------------------------------------- calibration

@dataclass
class Reliability:
    """A reliability diagram's numbers: per probability bin, the mean prediction and the observed frequency."""

    edges: np.ndarray
    mean_predicted: np.ndarray  # NaN for empty bins
    observed: np.ndarray  # NaN for empty bins
    counts: np.ndarray

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between prediction and observation."""
        full = self.counts > 0
        gaps = np.abs(self.mean_predicted[full] - self.observed[full])
        return float(np.sum(gaps * self.counts[full]) / np.sum(self.counts))


def _check_binary(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=float).ravel()
    y = np.asarray(labels).ravel()
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"need equally long, non-empty probabilities and labels, got {p.size} and {y.size}")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return p, y.astype(float)


def reliability(probs: Any, labels: Any, n_bins: int = 10) -> Reliability:
    """Bin P(y=1) into ``n_bins`` equal-width bins and compare each bin's mean with how often y was 1."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    p, y = _check_binary(probs, labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # digitize on the inner edges puts p == 1.0 in the last bin rather than past it.
    which = np.digitize(p, edges[1:-1])
    counts = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.bincount(which, weights=p, minlength=n_bins) / counts
        observed = np.bincount(which, weights=y, minlength=n_bins) / counts
    return Reliability(edges, mean_pred, observed, counts)


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 10) -> float:
    return reliability(probs, labels, n_bins).ece


def plot_reliability(ax: Any, rel: Reliability, label: str) -> None:
    """Draw one model's reliability curve on ``ax`` (the diagonal is perfect calibration)."""
    full = rel.counts > 0
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    ax.plot(rel.mean_predicted[full], rel.observed[full], marker="o", label=f"{label} (ECE {rel.ece:.3f})")
    ax.set_xlabel("predicted probability of class 1")
    ax.set_ylabel("observed frequency of class 1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


# ---------------------------------------------------------------- bootstrap

@dataclass
class Interval:
    """A point estimate and its percentile-bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    level: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def __str__(self) -> str:
        return f"{self.estimate:.3f} ({self.level:.0%} CI {self.low:.3f} to {self.high:.3f})"


def bootstrap_ci(values: Any, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 1000,
                 level: float = 0.95, seed: int = 0) -> Interval:
    """Resample the per-example ``values`` with replacement ``n_boot`` times; the middle ``level`` of the statistic is the CI."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise ValueError("need at least two values to bootstrap")
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    stats = np.array([statistic(v[row]) for row in idx])
    tail = (1 - level) / 2
    return Interval(float(statistic(v)), float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail)), level)


# ---------------------------------------------------------------- threshold explorer

@dataclass
class ThresholdResult:
    """Counts and rates when every probability at or above ``threshold`` is called positive."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / (self.tp + self.fp + self.tn + self.fn)


def confusion_at_threshold(labels: Any, probs: Any, threshold: float) -> ThresholdResult:
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    p, y = _check_binary(probs, labels)
    pred = p >= threshold
    truth = y == 1
    return ThresholdResult(threshold, int(np.sum(pred & truth)), int(np.sum(pred & ~truth)),
                           int(np.sum(~pred & ~truth)), int(np.sum(~pred & truth)))


def threshold_explorer(labels: Any, probs: Any):
    """A threshold slider showing the confusion matrix, precision and recall at that threshold."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="threshold")
    out = widgets.Output()
    box = widgets.VBox([slider, out])
    box.result = None

    def redraw(_change: Any = None) -> None:
        r = confusion_at_threshold(labels, probs, slider.value)
        box.result = r
        fig, ax = plt.subplots(figsize=(3.4, 3))
        ax.imshow([[r.tn, r.fp], [r.fn, r.tp]], cmap="Blues")
        for (i, j), v in np.ndenumerate(np.array([[r.tn, r.fp], [r.fn, r.tp]])):
            ax.text(j, i, str(v), ha="center", va="center")
        ax.set_xticks([0, 1], ["pred 0", "pred 1"])
        ax.set_yticks([0, 1], ["true 0", "true 1"])
        ax.set_title(f"precision {r.precision:.2f}, recall {r.recall:.2f}")
        show_figure(out, fig, "confusion matrix")

    slider.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "per_class_recall", title="Recall per class from a confusion matrix",
    hint="In scikit-learn's confusion matrix row i holds the examples whose TRUE class is i. "
         "Recall of class i: the diagonal entry divided by its row's total.",
    solution="```python\ndef per_class_recall(cm):\n    cm = np.asarray(cm)\n    return np.diag(cm) / cm.sum(axis=1)\n```",
)
def per_class_recall_exercise(fn) -> str:
    cm = np.array([[50, 3, 2], [10, 30, 0], [5, 5, 40]])
    got = np.asarray(fn(cm), dtype=float)
    want = np.diag(cm) / cm.sum(axis=1)
    assert got.shape == (3,), f"Return one recall per class: 3 numbers for a 3x3 matrix, got shape {got.shape}."
    if np.allclose(got, np.diag(cm) / cm.sum(axis=0)):
        raise AssertionError("You divided by the column totals: that is precision. Recall divides by the row (true class) totals.")
    if np.allclose(got, np.diag(cm) / cm.sum()):
        raise AssertionError("Divide each diagonal entry by its own row total, not by the total of the whole matrix.")
    assert np.allclose(got, want), f"For this matrix the recalls are {np.round(want, 3).tolist()}, you gave {np.round(got, 3).tolist()}."
    return "Class 1 has the worst recall here: a third of its examples were called class 0."


@exercise(
    NOTEBOOK, "ece", title="Expected calibration error",
    hint="Use np.linspace(0, 1, n_bins + 1) as edges. For each non-empty bin take |mean(probs) - mean(labels)| "
         "and weight it by the bin's share of all examples.",
    solution="```python\ndef ece(probs, labels, n_bins=10):\n    probs, labels = np.asarray(probs), np.asarray(labels)\n"
             "    edges = np.linspace(0, 1, n_bins + 1)\n    which = np.digitize(probs, edges[1:-1])\n    total = 0.0\n"
             "    for b in range(n_bins):\n        in_bin = which == b\n        if in_bin.any():\n"
             "            total += in_bin.mean() * abs(probs[in_bin].mean() - labels[in_bin].mean())\n    return total\n```",
)
def ece_exercise(fn) -> str:
    rng = np.random.default_rng(11)
    p = rng.uniform(size=400)
    y = (rng.uniform(size=400) < p ** 2).astype(int)  # over-confident: true rate is p squared
    got = float(fn(p, y, n_bins=10))
    want = expected_calibration_error(p, y, 10)
    unweighted = np.nanmean(np.abs(reliability(p, y, 10).mean_predicted - reliability(p, y, 10).observed))
    if abs(got - unweighted) < 1e-9 and abs(got - want) > 1e-9:
        raise AssertionError("You averaged the bins equally: weight each bin's gap by how many examples it holds.")
    if abs(got - np.abs(p - y).mean()) < 1e-9:
        raise AssertionError("That compares each probability with its own 0/1 label; calibration compares bin averages.")
    assert abs(got - want) < 1e-9, f"Expected an ECE of {want:.4f} here, got {got:.4f}."
    perfect = float(fn(np.full(100, 0.3), np.r_[np.ones(30), np.zeros(70)], n_bins=10))
    assert abs(perfect) < 1e-9, f"A model that says 0.3 and is right 30% of the time is perfectly calibrated: ECE 0, you gave {perfect:.4f}."
    return "ECE depends on the bins you pick; always say how many you used."


@exercise(
    NOTEBOOK, "bootstrap", title="A percentile bootstrap interval",
    hint="Draw len(values) indices with replacement (rng.integers), take the mean; repeat n_boot times; "
         "the 2.5% and 97.5% quantiles (np.quantile) of those means are the 95% interval.",
    solution="```python\ndef bootstrap_mean_ci(values, n_boot=2000, seed=0):\n    values = np.asarray(values, dtype=float)\n"
             "    rng = np.random.default_rng(seed)\n    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]\n"
             "    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))\n```",
)
def bootstrap_exercise(fn) -> str:
    rng = np.random.default_rng(5)
    values = (rng.uniform(size=300) < 0.8).astype(float)
    got = fn(values, n_boot=2000, seed=0)
    assert len(got) == 2, "Return two numbers: (low, high)."
    low, high = float(got[0]), float(got[1])
    ref = bootstrap_ci(values, n_boot=4000, seed=1)
    assert low < high, f"low ({low:.3f}) should be below high ({high:.3f})."
    if high - low < 0.01:
        raise AssertionError("Your interval is nearly zero wide: resample WITH replacement, the same number of values as the data.")
    if low <= 0.02 and high >= 0.98:
        raise AssertionError("Your interval covers almost everything: take quantiles of the resampled MEANS, not of the values.")
    assert low < values.mean() < high, f"The interval ({low:.3f}, {high:.3f}) should contain the observed mean {values.mean():.3f}."
    assert abs(low - ref.low) < 0.02 and abs(high - ref.high) < 0.02, (
        f"Expected roughly ({ref.low:.3f}, {ref.high:.3f}) for a 95% interval, got ({low:.3f}, {high:.3f}): "
        "use the 2.5% and 97.5% quantiles.")
    return f"With 300 examples the accuracy is only known to about ±{ref.width / 2:.2f}."
