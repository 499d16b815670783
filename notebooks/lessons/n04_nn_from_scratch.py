"""Lesson 04 support: a reference 2-layer NumPy network, the learning-rate explorer and the backprop exercises."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from academy.learn import exercise
from academy.learn.widgets import show_figure

NOTEBOOK = "04_nn_from_scratch"


@dataclass
class Spiral:
    """Points on interleaved spiral arms, one arm per class: not separable by a straight line."""

    X: np.ndarray
    y: np.ndarray
    n_classes: int


def spiral(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0) -> Spiral:
    if n_per_class < 2 or n_classes < 2:
        raise ValueError("spiral needs at least 2 classes of at least 2 points each")
    rng = np.random.default_rng(seed)
    X, y = [], []
    for k in range(n_classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class) + rng.normal(0, noise, n_per_class)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, k))
    return Spiral(np.vstack(X), np.concatenate(y), n_classes)


def init_params(n_in: int, n_hidden: int, n_out: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    # Scaling by 1/sqrt(fan-in) keeps tanh units out of saturation at the start.
    return {
        "W1": rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_hidden)), "b1": np.zeros(n_hidden),
        "W2": rng.normal(0, 1 / np.sqrt(n_hidden), (n_hidden, n_out)), "b2": np.zeros(n_out),
    }


def forward(params: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    h = np.tanh(X @ params["W1"] + params["b1"])
    scores = h @ params["W2"] + params["b2"]
    scores = scores - scores.max(axis=1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs, {"X": X, "h": h}


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    # A diverged network puts probability 0 on the true class; inf is the honest loss then.
    with np.errstate(divide="ignore"):
        return float(-np.log(probs[np.arange(len(y)), y]).mean())


def backward(params: dict[str, np.ndarray], probs: np.ndarray, cache: dict[str, np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
    n = len(y)
    dscores = probs.copy()
    dscores[np.arange(n), y] -= 1
    dscores /= n
    dh = dscores @ params["W2"].T * (1 - cache["h"] ** 2)
    return {
        "W2": cache["h"].T @ dscores, "b2": dscores.sum(axis=0),
        "W1": cache["X"].T @ dh, "b1": dh.sum(axis=0),
    }


def train(data: Spiral, lr: float, steps: int, hidden: int = 64, seed: int = 0) -> tuple[dict[str, np.ndarray], list[float]]:
    """Full-batch gradient descent; returns the trained parameters and the loss before each step."""
    params = init_params(data.X.shape[1], hidden, data.n_classes, np.random.default_rng(seed))
    losses = []
    for _ in range(steps):
        probs, cache = forward(params, data.X)
        losses.append(cross_entropy(probs, data.y))
        if not np.isfinite(losses[-1]):
            break  # a diverged run cannot recover; stop rather than spend time on NaNs
        grads = backward(params, probs, cache, data.y)
        for k in params:
            params[k] -= lr * grads[k]
    return params, losses


def accuracy(params: dict[str, np.ndarray], data: Spiral) -> float:
    probs, _ = forward(params, data.X)
    return float((probs.argmax(axis=1) == data.y).mean())


def lr_curve(lr: float, steps: int = 300, data: Spiral | None = None) -> list[float]:
    """The explorer's callback: training loss per step for one learning rate."""
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")
    if not 1 <= steps <= 100_000:
        raise ValueError(f"steps must be between 1 and 100000, got {steps}")
    return train(data or spiral(), lr, steps)[1]


def lr_explorer(steps: int = 300, data: Spiral | None = None):
    """A log-scale learning-rate slider wired to a live loss curve; ``.curves`` keeps each (lr, losses)."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    data = data or spiral()
    slider = widgets.FloatLogSlider(value=0.5, base=10, min=-3, max=1.5, step=0.25,
                                    description="learning rate", continuous_update=False, readout_format=".3g")
    out = widgets.Output()
    box = widgets.VBox([slider, out])
    box.curves = []

    def redraw(change=None) -> None:
        losses = lr_curve(slider.value, steps, data)
        box.curves.append((slider.value, losses))
        fig, ax = plt.subplots(figsize=(6, 3.5))
        finite = [v if np.isfinite(v) else np.nan for v in losses]
        ax.plot(finite)
        ax.set(xlabel="step", ylabel="training loss", ylim=(0, 2.5),
               title=f"lr = {slider.value:.3g}: loss {losses[0]:.2f} -> {losses[-1]:.2f}"
               + ("" if np.isfinite(losses[-1]) and losses[-1] < 10 * losses[0] else " (diverged)"))
        show_figure(out, fig)

    slider.observe(redraw, names="value")
    redraw()
    return box


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar function ``f()`` with respect to the array ``x``, changed in place."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + eps
        up = f()
        x[idx] = old - eps
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "cross_entropy", title="Cross-entropy loss",
    hint="probs[np.arange(len(y)), y] picks each row's probability of its true class. Take -log of those and average.",
    solution="```python\ndef my_cross_entropy(probs, y):\n    return -np.log(probs[np.arange(len(y)), y]).mean()\n```",
)
def cross_entropy_exercise(fn) -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.25, 0.5, 0.25]])
    y = np.array([0, 1, 2, 0])
    got = fn(probs, y)
    assert got is not None, "Your function returned None: did you forget to `return`?"
    got = float(np.asarray(got).squeeze()) if np.size(got) == 1 else got
    assert np.ndim(got) == 0, f"The loss should be one number (a scalar), got an array of shape {np.shape(got)}: average over the examples."
    want = cross_entropy(probs, y)
    assert abs(got + want) > 1e-9, "The sign is flipped: the loss is the *negative* log-probability, so it is never below 0."
    assert abs(got - want * len(y)) > 1e-9, "That is the sum over examples; use the mean so the loss does not grow with the batch size."
    assert abs(got - float(-np.log(probs).mean())) > 1e-9, "You averaged the log of every probability; use only each example's true class."
    assert abs(got - want) < 1e-9, f"Expected {want:.4f}, got {got:.4f}."


@exercise(
    NOTEBOOK, "relu_backward", title="Backward pass of ReLU",
    hint="ReLU passes its input through where z > 0 and outputs 0 elsewhere, so the gradient flows through unchanged "
         "where z > 0 and is 0 elsewhere: multiply dout by the mask (z > 0).",
    solution="```python\ndef relu_backward(dout, z):\n    return dout * (z > 0)\n```",
)
def relu_backward_exercise(fn) -> str:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5, 4))
    z[np.abs(z) < 0.05] = 0.5  # keep clear of the kink, where the numerical gradient is ill-defined
    dout = rng.normal(size=z.shape)
    got = fn(dout, z.copy())
    assert got is not None, "Your function returned None: did you forget to `return`?"
    got = np.asarray(got, dtype=float)
    assert got.shape == z.shape, f"The gradient must have the shape of z, {z.shape}, got {got.shape}."
    assert not np.allclose(got, (z > 0)), "That is the local derivative only; multiply it by the upstream gradient dout (chain rule)."
    assert not np.allclose(got, dout * np.maximum(z, 0)), "Multiply dout by the *mask* (z > 0), not by relu(z) itself."
    numeric = numerical_gradient(lambda: float((np.maximum(z, 0) * dout).sum()), z)
    err = np.abs(got - numeric).max()
    assert err < 1e-6, f"Your gradient differs from the numerical gradient by up to {err:.2e}."
    return f"It matches the numerical gradient to {err:.1e}."


@exercise(
    NOTEBOOK, "sgd_step", title="A gradient-descent step",
    hint="Gradient descent moves *against* the gradient: new = param - lr * grad, for every key of the dictionary.",
    solution="```python\ndef sgd_step(params, grads, lr):\n    return {k: params[k] - lr * grads[k] for k in params}\n```",
)
def sgd_step_exercise(fn) -> None:
    params = {"W": np.array([[1.0, 2.0]]), "b": np.array([0.5])}
    grads = {"W": np.array([[0.1, -0.2]]), "b": np.array([1.0])}
    saved = {k: v.copy() for k, v in grads.items()}
    got = fn({k: v.copy() for k, v in params.items()}, grads, 0.5)
    assert isinstance(got, dict), f"Return a dictionary of updated parameters, not {type(got).__name__}."
    assert set(got) == set(params), f"The result should have the keys {sorted(params)}, got {sorted(got)}."
    assert all(np.array_equal(grads[k], saved[k]) for k in grads), "Your step changed the gradients; only the parameters should change."
    plus = {k: params[k] + 0.5 * grads[k] for k in params}
    assert not all(np.allclose(got[k], plus[k]) for k in params), "You stepped *up* the gradient: subtract lr * grad to go downhill."
    for k in params:
        want = params[k] - 0.5 * grads[k]
        assert np.allclose(got[k], want), f"{k}: expected {want.tolist()}, got {np.asarray(got[k]).tolist()}. Use lr to scale the gradient."
