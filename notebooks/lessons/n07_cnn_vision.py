"""Lesson 07 support: the CNN-on-digits exercises and the filter / feature-map viewer."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from academy.learn import exercise
from academy.learn.widgets import show_figure

NOTEBOOK = "07_cnn_vision"


# ---------------------------------------------------------------- reference maths

def conv2d_reference(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'Valid' 2-D cross-correlation (what deep-learning libraries call convolution), stride 1."""
    image = np.asarray(image, dtype=float)
    kernel = np.asarray(kernel, dtype=float)
    kh, kw = kernel.shape
    out_h, out_w = image.shape[0] - kh + 1, image.shape[1] - kw + 1
    out = np.empty((out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out


def conv_output_size_reference(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    return (n + 2 * padding - k) // stride + 1


def conv_params_reference(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_out * (c_in * k * k + (1 if bias else 0))


# ---------------------------------------------------------------- feature-map viewer

@dataclass
class FeatureMaps:
    """What one convolution layer does to one image: its filters and the maps they produce."""

    layer: int
    kernels: np.ndarray  # (out_channels, in_channels, k, k)
    maps: np.ndarray  # (out_channels, H, W), after the layer's ReLU when it has one

    @property
    def channels(self) -> int:
        return self.maps.shape[0]


def conv_layers(model: Any) -> list[Any]:
    """The model's Conv2d modules in forward order, so the viewer works for any small CNN."""
    import torch.nn as nn

    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def feature_maps(model: Any, image: Any, layer: int) -> FeatureMaps:
    """Run ``image`` (8x8 array or 1x8x8 tensor) through ``model`` and capture conv layer ``layer`` (0-based)."""
    import torch

    layers = conv_layers(model)
    if not layers:
        raise ValueError("the model has no Conv2d layer to look at")
    if not 0 <= layer < len(layers):
        raise ValueError(f"layer must be between 0 and {len(layers) - 1}, got {layer}")
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))
    while x.dim() < 4:
        x = x.unsqueeze(0)
    param = next(model.parameters())
    x = x.to(param.device, param.dtype)
    captured: dict[str, Any] = {}
    hook = layers[layer].register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
        model.train(was_training)
    # Show what the next layer actually receives: negative responses are cut by the ReLU.
    maps = torch.relu(captured["out"][0]).float().cpu().numpy()
    kernels = layers[layer].weight.detach().float().cpu().numpy()
    return FeatureMaps(layer=layer, kernels=kernels, maps=maps)


def feature_map_viewer(model: Any, images: Sequence[Any], labels: Sequence[int] | None = None):
    """Sliders for image, layer and channel; draws the input, the chosen filter and its feature map."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    n_layers = len(conv_layers(model))
    image_slider = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
    layer_slider = widgets.IntSlider(value=0, min=0, max=n_layers - 1, description="layer")
    channel_slider = widgets.IntSlider(value=0, min=0, max=0, description="channel")
    out = widgets.Output()
    box = widgets.VBox([widgets.HBox([image_slider, layer_slider, channel_slider]), out])
    box.result = None

    def redraw(_change: Any = None) -> None:
        fm = feature_maps(model, images[image_slider.value], layer_slider.value)
        channel_slider.max = fm.channels - 1
        ch = min(channel_slider.value, fm.channels - 1)
        box.result = fm
        fig, axes = plt.subplots(1, 3, figsize=(9, 3))
        title = "input" if labels is None else f"input (label {labels[image_slider.value]})"
        axes[0].imshow(np.asarray(images[image_slider.value]).reshape(8, 8), cmap="gray_r")
        axes[0].set_title(title)
        axes[1].imshow(fm.kernels[ch].mean(axis=0), cmap="RdBu_r")
        axes[1].set_title(f"filter {ch} (mean over inputs)")
        axes[2].imshow(fm.maps[ch], cmap="viridis")
        axes[2].set_title(f"feature map {ch}, {fm.maps.shape[1]}x{fm.maps.shape[2]}")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        show_figure(out, fig, "feature maps")

    for slider in (image_slider, layer_slider, channel_slider):
        slider.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- exercises

@exercise(
    NOTEBOOK, "conv2d", title="A convolution by hand",
    hint="Slide a window the size of the kernel over the image. At each position multiply element-wise and sum. "
         "An HxW image with a kxk kernel gives an (H-k+1)x(W-k+1) output.",
    solution="```python\ndef conv2d(image, kernel):\n    kh, kw = kernel.shape\n    h, w = image.shape[0] - kh + 1, image.shape[1] - kw + 1\n"
             "    out = np.zeros((h, w))\n    for i in range(h):\n        for j in range(w):\n"
             "            out[i, j] = np.sum(image[i:i+kh, j:j+kw] * kernel)\n    return out\n```",
)
def conv2d_exercise(fn) -> str:
    rng = np.random.default_rng(7)
    image = rng.normal(size=(6, 7))
    kernel = rng.normal(size=(3, 3))
    got = np.asarray(fn(image, kernel), dtype=float)
    want = conv2d_reference(image, kernel)
    if got.shape == image.shape:
        raise AssertionError(f"Your output is {got.shape}, as big as the input: a 'valid' convolution does not pad, "
                             f"so a 6x7 image and a 3x3 kernel give {want.shape}.")
    assert got.shape == want.shape, f"Expected an output of shape {want.shape} for a 6x7 image and a 3x3 kernel, got {got.shape}."
    flipped = conv2d_reference(image, kernel[::-1, ::-1])
    if np.allclose(got, flipped) and not np.allclose(got, want):
        raise AssertionError("You flipped the kernel (textbook convolution). Deep-learning 'convolution' is "
                             "cross-correlation: use the kernel as it is.")
    if np.allclose(got.T, want.T[::-1, ::-1]) and not np.allclose(got, want):
        raise AssertionError("The values are right but in the wrong places: check which index runs over rows and which over columns.")
    assert np.allclose(got, want), "Right shape, wrong values: at each position multiply the window by the kernel element-wise and sum."
    return "That double loop is exactly what nn.Conv2d does, only vectorised and on many channels at once."


@exercise(
    NOTEBOOK, "output_size", title="Output size of a convolution",
    hint="Padding adds p pixels on both sides; the kernel then fits (n + 2p - k) // stride + 1 times.",
    solution="```python\ndef conv_output_size(n, k, stride=1, padding=0):\n    return (n + 2 * padding - k) // stride + 1\n```",
)
def output_size_exercise(fn) -> str:
    cases = [(8, 3, 1, 0), (8, 3, 1, 1), (28, 5, 2, 2), (7, 3, 2, 0), (32, 1, 1, 0)]
    for n, k, s, p in cases:
        got = fn(n, k, stride=s, padding=p)
        want = conv_output_size_reference(n, k, s, p)
        if got == want:
            continue
        if isinstance(got, float) and got != int(got):
            raise AssertionError(f"For n={n}, k={k}, stride={s}, padding={p} you returned {got}: sizes are whole numbers (use //).")
        if p and got == conv_output_size_reference(n, k, s, 0):
            raise AssertionError(f"For n={n}, k={k}, padding={p} you ignored the padding: it is added on BOTH sides.")
        if p and got == (n + p - k) // s + 1:
            raise AssertionError(f"For n={n}, k={k}, padding={p}: padding goes on both sides, so add 2*padding.")
        assert got == want, f"For n={n}, k={k}, stride={s}, padding={p} the output has {want} pixels per side, you gave {got}."
    return "With padding = k // 2 and stride 1 a conv layer keeps the image size: that is why our CNN pads."


@exercise(
    NOTEBOOK, "conv_params", title="Counting a conv layer's parameters",
    hint="Each output channel has one k x k filter per input channel, plus one bias.",
    solution="```python\ndef conv_params(c_in, c_out, k):\n    return c_out * (c_in * k * k + 1)\n```",
)
def conv_params_exercise(fn) -> str:
    cases = [(1, 8, 3), (8, 16, 3), (3, 64, 7), (64, 64, 1)]
    for c_in, c_out, k in cases:
        got = fn(c_in, c_out, k)
        want = conv_params_reference(c_in, c_out, k)
        if got == want:
            continue
        if got == conv_params_reference(c_in, c_out, k, bias=False):
            raise AssertionError(f"For ({c_in} -> {c_out}, {k}x{k}) you forgot the biases: one per output channel.")
        if got == c_out * (k * k + 1):
            raise AssertionError(f"For ({c_in} -> {c_out}, {k}x{k}): every filter spans ALL {c_in} input channels.")
        assert got == want, f"A {c_in} -> {c_out} layer with {k}x{k} kernels has {want} parameters, you gave {got}."
    return ("Notice that the image size never appears: a filter is shared by every position, which is why CNNs "
            "need far fewer weights than dense layers on images.")
