"""Lesson 08 support: a character-level tiny GPT, its baselines, the attention viewer and the exercises."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from academy.learn import exercise
from academy.learn.widgets import show_figure, show_text

NOTEBOOK = "08_tiny_gpt"


# ---------------------------------------------------------------- text

@dataclass
class CharTokenizer:
    """Maps each distinct character of a corpus to an integer id and back."""

    chars: list[str]

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        if not text:
            raise ValueError("cannot build a vocabulary from an empty text")
        return cls(sorted(set(text)))

    def __post_init__(self) -> None:
        self.stoi = {ch: i for i, ch in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - self.stoi.keys())
        if unknown:
            raise ValueError(f"characters not in the vocabulary: {''.join(unknown)!r}")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Any) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def unigram_cross_entropy(train: str, val: str, vocab: list[str]) -> float:
    """Nats per character on ``val`` of a model that predicts every character by its training frequency."""
    counts = Counter(train)
    # Add-one smoothing: a character never seen in training must not cost infinity.
    total = len(train) + len(vocab)
    return -sum(math.log((counts[ch] + 1) / total) for ch in val) / len(val)


def bigram_cross_entropy(train: str, val: str, vocab: list[str], k: float = 0.1) -> float:
    """Nats per character on ``val`` of a model that only looks at the previous character (add-k smoothed)."""
    pairs = Counter(zip(train, train[1:]))
    firsts = Counter(train[:-1])
    v = len(vocab)
    costs = [math.log((pairs[(a, b)] + k) / (firsts[a] + k * v)) for a, b in zip(val, val[1:])]
    return -sum(costs) / len(costs)


# ---------------------------------------------------------------- the model

@dataclass
class GPTConfig:
    """The sizes of a tiny GPT; checked on creation so a bad combination fails before training."""

    vocab_size: int
    block_size: int = 32
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t may only look at positions <= t."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.record = False  # when True, keep the attention weights for inspection
        self.last_attention: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_dim): every head attends in its own subspace.
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.record:
            scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
            self.last_attention = weights.detach()
            y = weights @ v
        else:
            # The fused kernel computes the same thing without materialising the T x T matrix (fast on GPUs).
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class Block(nn.Module):
    """A transformer block: attention then an MLP, each with a residual connection and pre-LayerNorm."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd), nn.Dropout(cfg.dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A decoder-only transformer that predicts the next character."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = idx.size(1)
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size {self.cfg.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``max_new_tokens`` sampled characters; lower temperature means safer, duller text."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        was_training = self.training
        self.eval()
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.cfg.block_size:])
            probs = (logits[:, -1, :] / temperature).softmax(dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        self.train(was_training)
        return idx

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer for one sequence: a list of (heads, T, T) tensors."""
        was_training = self.training
        self.eval()
        for block in self.blocks:
            block.attn.record = True
        try:
            self(idx[:, -self.cfg.block_size:])
            return [block.attn.last_attention[0].cpu() for block in self.blocks]
        finally:
            for block in self.blocks:
                block.attn.record = False
            self.train(was_training)


def get_batch(data: torch.Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None):
    """Random windows of ``block_size`` tokens and, shifted by one, the characters to predict."""
    if len(data) <= block_size:
        raise ValueError(f"need more than block_size={block_size} tokens, got {len(data)}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s:s + block_size] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + block_size + 1] for s in starts.tolist()])
    return x, y


@torch.no_grad()
def evaluate(model: TinyGPT, data: torch.Tensor, block_size: int) -> float:
    """Mean cross-entropy (nats per character) over consecutive windows covering all of ``data``: no sampling noise."""
    if len(data) < 2:
        raise ValueError("need at least two tokens to evaluate")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    n_full = (len(data) - 1) // block_size
    # Full windows go through as batches; only the ragged tail needs a pass of its own.
    pieces = [(data[:n_full * block_size].view(n_full, block_size), data[1:n_full * block_size + 1].view(n_full, block_size))]
    tail = n_full * block_size
    if tail < len(data) - 1:
        pieces.append((data[tail:-1].unsqueeze(0), data[tail + 1:].unsqueeze(0)))
    total, count = 0.0, 0
    for x_all, y_all in pieces:
        for i in range(0, len(x_all), 256):
            x, y = x_all[i:i + 256].to(device), y_all[i:i + 256].to(device)
            _, loss = model(x, y)
            total += loss.item() * y.numel()
            count += y.numel()
    model.train(was_training)
    return total / count


# ---------------------------------------------------------------- attention viewer

def attention_map(model: TinyGPT, tokenizer: CharTokenizer, prompt: str, layer: int, head: int) -> np.ndarray:
    """The (T, T) attention matrix of one head for ``prompt``: row t shows where character t looked."""
    if not prompt:
        raise ValueError("type at least one character")
    if not 0 <= layer < model.cfg.n_layer:
        raise ValueError(f"layer must be between 0 and {model.cfg.n_layer - 1}, got {layer}")
    if not 0 <= head < model.cfg.n_head:
        raise ValueError(f"head must be between 0 and {model.cfg.n_head - 1}, got {head}")
    device = next(model.parameters()).device
    idx = torch.tensor([tokenizer.encode(prompt)], device=device)
    return model.attention_maps(idx)[layer][head].numpy()


def attention_explorer(model: TinyGPT, tokenizer: CharTokenizer, prompt: str = "The river is slow"):
    """A prompt box and layer/head sliders that draw ``attention_map`` as a heat map."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    text = widgets.Text(value=prompt[-model.cfg.block_size:], description="prompt")
    layer = widgets.IntSlider(value=0, min=0, max=model.cfg.n_layer - 1, description="layer")
    head = widgets.IntSlider(value=0, min=0, max=model.cfg.n_head - 1, description="head")
    out = widgets.Output()
    box = widgets.VBox([text, widgets.HBox([layer, head]), out])
    box.result = None

    def redraw(_change: Any = None) -> None:
        prompt_now = text.value[-model.cfg.block_size:]
        try:
            att = attention_map(model, tokenizer, prompt_now, layer.value, head.value)
        except ValueError as exc:
            box.result = None
            show_text(out, f"⚠️ {exc}")
            return
        box.result = att
        labels = [repr(ch)[1:-1] or "·" for ch in prompt_now]
        size = 2 + 0.28 * len(labels)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(att, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("attends to (key)")
        ax.set_ylabel("position (query)")
        ax.set_title(f"layer {layer.value}, head {head.value}")
        show_figure(out, fig, "attention map")

    for w in (text, layer, head):
        w.observe(redraw, names="value")
    redraw()
    return box


# ---------------------------------------------------------------- exercises

def _reference_attention(q, k, v, causal=True):
    scores = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
    if causal:
        T = q.size(-2)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return scores.softmax(dim=-1) @ v


@exercise(
    NOTEBOOK, "causal_mask", title="The causal mask",
    hint="Position t may look at positions 0..t: that is the lower triangle of a T x T matrix, diagonal included. "
         "torch.tril or np.tril helps.",
    solution="```python\ndef causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).tril()\n```",
)
def causal_mask_exercise(fn) -> str:
    T = 5
    got = torch.as_tensor(np.asarray(fn(T))).bool()
    want = torch.ones(T, T, dtype=torch.bool).tril()
    assert got.shape == (T, T), f"For T={T} the mask should be {T}x{T}, got {tuple(got.shape)}."
    if torch.equal(got, want.T):
        raise AssertionError("That is the upper triangle: it lets each position see the FUTURE. Row t should allow columns 0..t.")
    if torch.equal(got, want & ~torch.eye(T, dtype=torch.bool)):
        raise AssertionError("You left out the diagonal: a character may attend to itself.")
    if torch.equal(got, ~want):
        raise AssertionError("The mask is inverted: True should mean 'may attend'.")
    assert torch.equal(got, want), "Row t should be True exactly in columns 0..t."
    return "Row 0 can only see itself; the last row sees everything."


@exercise(
    NOTEBOOK, "attention", title="Scaled dot-product attention",
    hint="scores = q @ k^T / sqrt(d); put -inf where the causal mask is False; softmax over the last axis; multiply by v.",
    solution="```python\ndef attention(q, k, v):\n    d = q.shape[-1]\n    scores = q @ k.transpose(-2, -1) / d ** 0.5\n"
             "    T = q.shape[-2]\n    mask = torch.ones(T, T, dtype=torch.bool).tril()\n"
             "    scores = scores.masked_fill(~mask, float('-inf'))\n    return scores.softmax(dim=-1) @ v\n```",
)
def attention_exercise(fn) -> str:
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(4, 6, 8, generator=gen) for _ in range(3))
    got = torch.as_tensor(fn(q, k, v)).float()
    want = _reference_attention(q, k, v)
    assert got.shape == want.shape, f"The output should have the shape of v, {tuple(want.shape)}, got {tuple(got.shape)}."
    if torch.allclose(got, _reference_attention(q, k, v, causal=False), atol=1e-5):
        raise AssertionError("No causal mask: every position can see the future. Set scores above the diagonal to -inf before the softmax.")
    unscaled = (q @ k.transpose(-2, -1)).masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), float("-inf")).softmax(-1) @ v
    if torch.allclose(got, unscaled, atol=1e-5):
        raise AssertionError("Almost: divide the scores by sqrt(d) (d = size of the last axis) before the softmax.")
    assert torch.allclose(got, want, atol=1e-5), "Right shape, wrong values: check that the softmax runs over the LAST axis (the keys)."
    return "That is the heart of every transformer; the rest is bookkeeping."


@exercise(
    NOTEBOOK, "uniform_loss", title="The loss of a clueless model",
    hint="A model that gives all V characters the same probability 1/V pays -log(1/V) nats for every character.",
    solution="```python\ndef uniform_loss(vocab_size):\n    return math.log(vocab_size)\n```",
)
def uniform_loss_exercise(fn) -> str:
    for v in (2, 50, 65, 50257):
        got = float(fn(v))
        want = math.log(v)
        if abs(got - math.log2(v)) < 1e-6 and v != 1:
            raise AssertionError("That is in bits (log base 2). PyTorch's cross-entropy uses the natural log: nats.")
        if abs(got - 1 / v) < 1e-9:
            raise AssertionError("That is the probability; the loss is minus its logarithm.")
        assert abs(got - want) < 1e-6, f"For a vocabulary of {v} the uniform loss is about {want:.3f} nats, you gave {got:.3f}."
    return "So the first loss printed during training should be close to log(V): a handy bug check."
