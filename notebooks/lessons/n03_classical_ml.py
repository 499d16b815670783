"""Lesson 03 support: the decision-boundary explorer (callback + widget) and the scikit-learn exercises."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_moons
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from academy.learn import exercise
from academy.learn.widgets import show_figure

NOTEBOOK = "03_classical_ml"
MAX_DEPTH = 15


@dataclass
class Moons:
    """A noisy two-moons problem split into training and validation points."""

    X_train: np.ndarray
    X_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray


def moons(n_samples: int = 300, noise: float = 0.3, seed: int = 0) -> Moons:
    X, y = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return Moons(*train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y))


@dataclass
class Boundary:
    """One decision tree's predictions on a grid, with its training and validation accuracy."""

    depth: int
    xx: np.ndarray
    yy: np.ndarray
    proba: np.ndarray
    train_acc: float
    val_acc: float


def decision_boundary(depth: int, data: Moons | None = None, resolution: int = 120) -> Boundary:
    """Fit a tree of ``depth`` levels and evaluate it on a grid covering the data (the widget's callback)."""
    if not 1 <= int(depth) <= 50:
        raise ValueError(f"depth must be between 1 and 50, got {depth}")
    data = data or moons()
    tree = DecisionTreeClassifier(max_depth=int(depth), random_state=0).fit(data.X_train, data.y_train)
    X_all = np.vstack([data.X_train, data.X_val])
    lo, hi = X_all.min(axis=0) - 0.5, X_all.max(axis=0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    proba = tree.predict_proba(np.c_[xx.ravel(), yy.ravel()])[:, 1].reshape(xx.shape)
    return Boundary(int(depth), xx, yy, proba, tree.score(data.X_train, data.y_train), tree.score(data.X_val, data.y_val))


def plot_boundary(result: Boundary, data: Moons, ax) -> None:
    ax.contourf(result.xx, result.yy, result.proba, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
    ax.scatter(*data.X_train.T, c=data.y_train, cmap="RdBu", edgecolor="k", s=15, label="train")
    ax.scatter(*data.X_val.T, c=data.y_val, cmap="RdBu", edgecolor="k", marker="^", s=25, label="validation")
    ax.set_title(f"depth {result.depth}: train {result.train_acc:.2f}, validation {result.val_acc:.2f}")
    ax.set_xticks([])
    ax.set_yticks([])


def boundary_explorer(data: Moons | None = None):
    """A depth slider wired to a live decision-boundary plot; ``.results`` keeps each callback's Boundary."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    data = data or moons()
    slider = widgets.IntSlider(value=3, min=1, max=MAX_DEPTH, description="max_depth", continuous_update=False)
    out = widgets.Output()
    box = widgets.VBox([slider, out])
    box.results = []

    def redraw(change=None) -> None:
        result = decision_boundary(slider.value, data)
        box.results.append(result)
        fig, ax = plt.subplots(figsize=(5, 4))
        plot_boundary(result, data, ax)
        show_figure(out, fig, "decision boundary figure")

    slider.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "majority_baseline", title="Majority-class baseline",
    hint="np.unique(y, return_counts=True) counts each class; the baseline is the largest count divided by len(y).",
    solution="```python\ndef majority_baseline(y):\n    _, counts = np.unique(y, return_counts=True)\n    return counts.max() / len(y)\n```",
)
def majority_baseline_exercise(fn) -> str:
    y = np.array([0, 1, 1, 1, 0, 1, 1, 1, 1, 0])
    got = fn(y)
    assert got is not None, "majority_baseline returned None: did you forget to `return`?"
    got = float(got)
    assert abs(got - 7) > 1e-9, "That is the count of the largest class; divide by the number of labels to get a fraction."
    assert abs(got - 0.3) > 1e-9, "That is the minority class's share; the baseline always predicts the most common class."
    assert abs(got - 0.7) < 1e-9, f"For 7 ones and 3 zeros the baseline accuracy is 0.7, got {got}."
    y3 = np.array([2, 2, 0, 1, 2])
    got3 = float(fn(y3))
    assert abs(got3 - 0.6) < 1e-9, f"With three classes [2, 2, 0, 1, 2] the baseline is 0.6, got {got3}: does it handle more than two classes?"
    cancer = load_breast_cancer().target
    return f"On the breast-cancer data the baseline is {float(fn(cancer)):.3f}: any model must beat that."


@exercise(
    NOTEBOOK, "scaled_pipeline", title="A scaling pipeline",
    hint="make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)) returns an unfitted Pipeline; cross_val_score does the fitting.",
    solution="```python\ndef make_model():\n    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))\n```",
)
def scaled_pipeline_exercise(fn) -> str:
    model = fn()
    assert model is not None, "make_model returned None: did you forget to `return` the pipeline?"
    assert isinstance(model, Pipeline), f"make_model should return a Pipeline (see make_pipeline), not {type(model).__name__}."
    first = model.steps[0][1]
    assert isinstance(first, (StandardScaler, MinMaxScaler, RobustScaler)), \
        f"The first step should scale the features, but it is {type(first).__name__}."
    assert hasattr(model.steps[-1][1], "predict"), "The last step should be a classifier that can predict."
    X, y = load_breast_cancer(return_X_y=True)
    assert not hasattr(model.steps[-1][1], "classes_"), \
        "Return the pipeline unfitted: cross-validation fits a fresh copy on each training fold."
    score = cross_val_score(clone(model), X, y, cv=5).mean()
    assert score >= 0.95, f"5-fold accuracy is {score:.3f}; a scaled logistic regression reaches at least 0.95."
    return f"5-fold cross-validated accuracy: {score:.3f}."


@exercise(
    NOTEBOOK, "best_depth", title="Pick the depth",
    hint="Average the validation scores over the folds (axis=1), then take the depth at the position of the largest mean (np.argmax).",
    solution="```python\ndef best_depth(depths, train_scores, val_scores):\n    return depths[np.argmax(val_scores.mean(axis=1))]\n```",
)
def best_depth_exercise(fn) -> None:
    depths = np.array([1, 2, 4, 8, 16])
    train = np.array([[0.80, 0.82], [0.86, 0.88], [0.93, 0.94], [0.98, 0.99], [1.0, 1.0]])
    val = np.array([[0.78, 0.80], [0.85, 0.86], [0.90, 0.92], [0.87, 0.88], [0.84, 0.85]])
    got = fn(depths, train, val)
    assert got is not None, "best_depth returned None: did you forget to `return`?"
    assert int(got) != 16, "Depth 16 has the best *training* score: that is the overfitted one. Choose by validation score."
    assert int(got) != 2, "That is the position (index) of the best depth; return the depth itself: depths[index]."
    assert int(got) == 4, f"Depth 4 has the best mean validation score (0.91), got {got}."
