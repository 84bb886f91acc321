"""Lesson 04's lookup task, on which attention heads divide the work, and a tiny attention-only model for it.

Every position of a random letter sequence must report several *lookups* at once: the previous
letter, the letter two back, the first letter of the sequence. Each lookup reads one position,
and one attention head can read one position at a time, so a model with a head per lookup can
solve the task cleanly and its heads specialise; a single head cannot. Lesson 04 trains it and
opens its heads in the attention explorer.
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._validate_input import as_id_tensor, as_int, is_number
from .attention import AttentionConfig, MultiHeadAttention
from .positional import LearnedPositionalEmbedding, sinusoidal_encoding

__all__ = ["LOOKUPS", "LookupTask", "AttentionOnlyConfig", "AttentionOnlyModel",
           "train_lookup_model", "lookup_accuracy", "lookup_scores"]

IGNORE = -100  # target of a lookup with nothing to read (e.g. "previous" at position 0)

# Where a query at position t reads, for each lookup: ("back", k) is position t - k,
# ("at", p) is the fixed position p.
LOOKUPS = MappingProxyType({
    "current": ("back", 0), "previous": ("back", 1), "two back": ("back", 2),
    "three back": ("back", 3), "first": ("at", 0),
})


def _source_positions(lookup: str, T: int) -> torch.Tensor:
    """The position each query 0..T-1 reads for a lookup: (T,) ints, -1 where there is none."""
    kind, n = LOOKUPS[lookup]
    t = torch.arange(T)  # (T,)
    src = t - n if kind == "back" else torch.full((T,), n)  # (T,)
    return torch.where((src >= 0) & (src <= t), src, -1)  # causal: never a later position


@dataclass
class LookupTask:
    """Random sequences of vocab_size letters; each position's targets are the lookups' letters."""

    vocab_size: int = 10
    seq_len: int = 12
    lookups: tuple[str, ...] = ("previous", "two back", "first")

    def __post_init__(self):
        self.vocab_size = as_int(self.vocab_size, "vocab_size (one letter each)", 2, 26)
        self.seq_len = as_int(self.seq_len, "seq_len", 2)
        if not isinstance(self.lookups, (tuple, list)) or not self.lookups or any(not isinstance(name, str) or name not in LOOKUPS for name in self.lookups):
            raise ValueError(f"lookups must be a non-empty tuple of names from {list(LOOKUPS)}, "
                             f"got {self.lookups!r}")
        self.lookups = tuple(self.lookups)

    @property
    def letters(self) -> tuple[str, ...]:
        """The token names, 'a', 'b', ...: token id i is letters[i]."""
        return tuple(string.ascii_lowercase[: self.vocab_size])

    def sources(self) -> torch.Tensor:
        """Where each query reads for each lookup: (T, n_lookups) positions, -1 for none."""
        return torch.stack([_source_positions(name, self.seq_len) for name in self.lookups], -1)

    def batch(self, batch_size: int, generator: torch.Generator | None = None):
        """Return tokens (B, T) and targets (B, T, n_lookups), IGNORE where a lookup has no source."""
        batch_size = as_int(batch_size, "batch_size", 1)
        tokens = torch.randint(0, self.vocab_size, (batch_size, self.seq_len),
                               generator=generator)  # (B, T)
        src = self.sources()  # (T, K)
        targets = tokens[:, src.clamp_min(0)]  # (B, T, K): tokens[b, src[t, k]]
        return tokens, targets.masked_fill(src < 0, IGNORE)

    def decode(self, tokens) -> list[str]:
        """Token ids -> letters, for labelling plots."""
        ids = as_id_tensor(tokens, "tokens").reshape(-1).tolist()
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is not one of this task's {self.vocab_size} letters "
                             f"(ids 0..{self.vocab_size - 1})")
        return [self.letters[i] for i in ids]


@dataclass
class AttentionOnlyConfig:
    """One causal attention layer between an embedding and a linear readout per lookup."""

    vocab_size: int = 10
    seq_len: int = 12
    n_outputs: int = 3  # one readout (vocab_size logits) per lookup
    d_model: int = 48
    n_heads: int = 3
    positions: str = "learned"  # or "sinusoidal"
    attention: AttentionConfig = field(init=False)

    def __post_init__(self):
        for name in ("vocab_size", "seq_len", "n_outputs", "d_model", "n_heads"):
            as_int(getattr(self, name), f"AttentionOnlyConfig.{name}", 1)
        if self.positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {self.positions!r}")
        self.attention = AttentionConfig(self.d_model, self.n_heads, causal=True)


class AttentionOnlyModel(nn.Module):
    """Token + position embeddings -> one causal multi-head attention -> one readout per lookup.

    There is no residual path and no MLP: whatever a readout knows came through an attention head,
    so the heads' weights tell the whole story.
    """

    def __init__(self, config: AttentionOnlyConfig):
        super().__init__()
        self.config = config
        C = config.d_model
        self.tok = nn.Embedding(config.vocab_size, C)
        if config.positions == "learned":
            self.pos = LearnedPositionalEmbedding(config.seq_len, C)
        else:
            self.register_buffer("pe", sinusoidal_encoding(config.seq_len, C), persistent=False)
        self.attn = MultiHeadAttention(config.attention)
        self.readout = nn.Linear(C, config.n_outputs * config.vocab_size)

    def forward(self, tokens: torch.Tensor, return_weights: bool = False):
        """Return logits (B, T, n_outputs, vocab_size) and the weights (B, H, T, T) or None."""
        cfg = self.config
        tokens = as_id_tensor(tokens, "tokens")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= cfg.vocab_size):
            raise ValueError(f"tokens must be ids in [0, {cfg.vocab_size}), got values from "
                             f"{int(tokens.min())} to {int(tokens.max())}: use the task's batch()")
        if tokens.dim() != 2 or not 1 <= tokens.shape[1] <= cfg.seq_len:
            raise ValueError(f"tokens has shape {tuple(tokens.shape)} but the model expects "
                             f"(B, T) with T <= seq_len={cfg.seq_len}")
        B, T = tokens.shape
        pos = self.pos(T) if cfg.positions == "learned" else self.pe[:T]  # (T, C)
        x = self.tok(tokens) + pos  # (B, T, C)
        out = self.attn(x, return_weights=return_weights)  # output (B, T, C)
        logits = self.readout(out.output).view(B, T, cfg.n_outputs, cfg.vocab_size)
        return logits, out.weights


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position and lookup that has a target."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE)


def train_lookup_model(model: AttentionOnlyModel, task: LookupTask, steps: int,
                       batch_size: int = 64, lr: float = 1e-2, seed: int = 0) -> list[float]:
    """Train with AdamW on fresh random batches; return the loss of every step."""
    if model.config.n_outputs != len(task.lookups) or model.config.vocab_size != task.vocab_size:
        raise ValueError(f"the model has {model.config.n_outputs} readouts over "
                         f"{model.config.vocab_size} tokens but the task has "
                         f"{len(task.lookups)} lookups over {task.vocab_size}: build the model "
                         "with n_outputs=len(task.lookups), vocab_size=task.vocab_size")
    steps = as_int(steps, "steps", 0)
    batch_size = as_int(batch_size, "batch_size", 1)
    seed = as_int(seed, "seed", 0)
    if not is_number(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    gen = torch.Generator().manual_seed(seed)  # the data stream; the caller seeds the weights
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        tokens, targets = task.batch(batch_size, gen)
        loss = _loss(model(tokens)[0], targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def lookup_accuracy(model: AttentionOnlyModel, task: LookupTask, n: int = 1000,
                    seed: int = 1234) -> dict[str, float]:
    """Fraction of correct answers per lookup on n fresh sequences (positions with a target)."""
    # n = 0 would average over nothing and report NaN as if it were an accuracy.
    n = as_int(n, "n (how many sequences to test on)", 1)
    seed = as_int(seed, "seed", 0)
    tokens, targets = task.batch(n, torch.Generator().manual_seed(seed))
    hit = model(tokens)[0].argmax(-1) == targets  # (n, T, K)
    has = targets != IGNORE  # (n, T, K)
    return {name: float(hit[..., k][has[..., k]].float().mean())
            for k, name in enumerate(task.lookups)}


def lookup_scores(weights: torch.Tensor, task: LookupTask) -> torch.Tensor:
    """Mean weight each head puts where each lookup reads: (H, n_lookups), from (..., H, T, T).

    Only queries whose lookups all read different positions count, so one head cannot score
    on two lookups at once (at position 1, "previous" and "first" are both position 0).
    """
    if not isinstance(weights, torch.Tensor) or weights.dim() < 3 \
            or weights.shape[-2:] != (task.seq_len, task.seq_len):
        got = tuple(weights.shape) if isinstance(weights, torch.Tensor) else type(weights).__name__
        raise ValueError(f"weights is {got} but must be attention weights (..., H, T, T) with "
                         f"T = seq_len = {task.seq_len}: pass model(tokens, return_weights=True)[1]")
    w = weights.detach().float().reshape(-1, *weights.shape[-3:]).mean(0)  # (H, T, T)
    src = task.sources()  # (T, K)
    distinct = torch.tensor([len(set(row)) == len(row) and min(row) >= 0
                             for row in src.tolist()])  # (T,)
    if not distinct.any():
        raise ValueError(f"no position of a {task.seq_len}-token sequence has all of "
                         f"{task.lookups} reading different positions: use a longer seq_len")
    rows = distinct.nonzero().squeeze(1)  # (T',)
    picked = w[:, rows[:, None], src[rows]]  # (H, T', K): weight on each lookup's source
    return picked.mean(1)  # (H, K)
