"""Lesson 05 support: spiral data as tensors, a parameter counter and the PyTorch exercises (autograd, nn.Module, train step)."""
from __future__ import annotations

import copy

import torch
from torch import nn

from academy.learn import exercise
from academy_lessons.n04_nn_from_scratch import spiral

NOTEBOOK = "05_pytorch_fundamentals"


def spiral_tensors(n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lesson 04's spirals as (float32 features, int64 labels), the dtypes nn.CrossEntropyLoss expects."""
    data = spiral(n_per_class, seed=seed)
    return torch.tensor(data.X, dtype=torch.float32), torch.tensor(data.y, dtype=torch.int64)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "autograd", title="Gradients with autograd",
    hint="Make a copy that tracks gradients with x = x.clone().requires_grad_(True), compute f = (torch.sin(x) * x).sum(), "
         "call f.backward(), and return x.grad.",
    solution="```python\ndef grad_of_f(x):\n    x = x.clone().requires_grad_(True)\n    f = (torch.sin(x) * x).sum()\n"
             "    f.backward()\n    return x.grad\n```",
)
def autograd_exercise(fn) -> str:
    x = torch.linspace(-2, 2, 7, dtype=torch.float64)
    got = fn(x.clone())
    assert got is not None, "grad_of_f returned None: return x.grad after calling backward() (and check that x requires grad)."
    assert isinstance(got, torch.Tensor), f"Return a tensor (x.grad), not {type(got).__name__}."
    assert got.shape == x.shape, f"The gradient has one entry per element of x, shape {tuple(x.shape)}; got {tuple(got.shape)}."
    got = got.detach().to(torch.float64)
    assert not torch.allclose(got, torch.sin(x) * x), "That is f itself, element by element; return the gradient (x.grad)."
    assert not torch.allclose(got, torch.cos(x)), "That is the derivative of sin(x) alone; f is sin(x) * x, so use the product rule (or let autograd do it)."
    want = torch.cos(x) * x + torch.sin(x)
    err = (got - want).abs().max().item()
    assert err < 1e-5, f"Your gradient is off by up to {err:.2e} from the true derivative x·cos(x) + sin(x)."
    return "Autograd found x·cos(x) + sin(x) without you deriving it."


@exercise(
    NOTEBOOK, "tiny_mlp", title="Your own nn.Module",
    hint="Subclass `nn.Module`, call `super().__init__()` first, assign the layers as attributes in `__init__` "
         "(e.g. `self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))`), and return `self.net(x)` in `forward`.",
    solution="```python\nclass TinyMLP(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
             "        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))\n\n"
             "    def forward(self, x):\n        return self.net(x)\n```",
)
def tiny_mlp_exercise(cls) -> str:
    model = cls()
    assert isinstance(model, nn.Module), "TinyMLP should subclass nn.Module so PyTorch can find its parameters."
    n_params = count_parameters(model)
    assert n_params > 0, ("TinyMLP has no registered parameters: assign layers as attributes (self.layer = nn.Linear(...)) "
                          "or in nn.Sequential / nn.ModuleList, not in a plain Python list.")
    want = 2 * 16 + 16 + 16 * 3 + 3
    assert n_params == want, f"Expected {want} parameters (2→16→3 with biases), got {n_params}: check the layer sizes."
    out = model(torch.zeros(5, 2))
    assert tuple(out.shape) == (5, 3), f"For a batch of 5 points the output should have shape (5, 3), got {tuple(out.shape)}."
    gen = torch.Generator().manual_seed(0)
    a, b = 3 * torch.randn(8, 2, generator=gen), 3 * torch.randn(8, 2, generator=gen)
    with torch.no_grad():
        affine = torch.allclose(model(a + b), model(a) + model(b) - model(torch.zeros(8, 2)), atol=1e-5)
    assert not affine, "Without a non-linearity between the layers, two Linear layers are just one linear map: add nn.ReLU()."
    return f"{n_params} parameters, all registered."


def _step_problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    # A private RNG stream: a check must not reseed the learner's own experiments.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    X, y = spiral_tensors(20, seed=3)
    return model, X, y


def _reference_steps(model: nn.Module, X: torch.Tensor, y: torch.Tensor, n: int, zero: bool) -> nn.Module:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(n):
        if zero:
            opt.zero_grad()
        nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return model


@exercise(
    NOTEBOOK, "train_step", title="One training step",
    hint="Four lines, in this order: optimizer.zero_grad(); loss = loss_fn(model(X), y); loss.backward(); optimizer.step(). "
         "Return loss.item().",
    solution="```python\ndef train_step(model, X, y, loss_fn, optimizer):\n    optimizer.zero_grad()\n"
             "    loss = loss_fn(model(X), y)\n    loss.backward()\n    optimizer.step()\n    return loss.item()\n```",
)
def train_step_exercise(fn) -> str:
    model, X, y = _step_problem()
    fresh = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    first = fn(model, X, y, loss_fn, opt)
    assert first is not None, "train_step returned None: return the loss as a number, loss.item()."
    assert not isinstance(first, torch.Tensor), "Return loss.item(), a plain float, so the computation graph is not kept alive."
    assert isinstance(first, float), f"Return the loss as a float (loss.item()), not {type(first).__name__}."
    fn(model, X, y, loss_fn, opt)
    moved = any(not torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters()))
    assert moved, "The parameters did not change: call loss.backward() and then optimizer.step()."
    right = _reference_steps(copy.deepcopy(fresh), X, y, 2, zero=True)
    if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), right.parameters())):
        losses = [fn(model, X, y, loss_fn, opt) for _ in range(20)]
        assert losses[-1] < first, "The loss did not go down over 20 steps; check the order of the four lines."
        return f"Loss {first:.3f} -> {losses[-1]:.3f} after 22 steps."
    stale = _reference_steps(copy.deepcopy(fresh), X, y, 2, zero=False)
    if all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), stale.parameters())):
        raise AssertionError("Gradients are piling up from step to step: call optimizer.zero_grad() at the start of each step.")
    raise AssertionError("The parameters moved differently from one SGD step on loss_fn(model(X), y); compute the loss on the batch you were given.")
