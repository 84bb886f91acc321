"""Next-token prediction: bigram models (counted and neural), cross-entropy, perplexity.

The sampling functions live in llmlab.sampling (GPT generation reuses them) and are re-exported here.
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_input import as_id_tensor as _as_id_tensor
from llmlab._validate_input import as_int as _as_int
from llmlab._validate_input import is_number as _is_number
from llmlab.sampling import (
    _as_logits,
    _check_temperature,
    greedy_next,
    next_token_probs,
    sample_next,
    sampling_mask,
    top_k_mask,
    top_p_mask,
)

__all__ = [
    "CountBigram",
    "NeuralBigram",
    "train_bigram",
    "cross_entropy",
    "perplexity",
    "top_k_mask",
    "top_p_mask",
    "sampling_mask",
    "next_token_probs",
    "sample_next",
    "greedy_next",
]


# ---------------------------------------------------------------------------------------------
# Input checks shared by everything below (raised at the boundary, with the fix in the message)


def _check_token_id(token_id, vocab_size: int, name: str) -> int:
    """Return token_id as an int in [0, vocab_size), or raise."""
    token_id = _as_int(token_id, name, 0)
    if token_id >= vocab_size:
        raise ValueError(f"{name} must be a token id in [0, {vocab_size}), got {token_id}")
    return token_id


def _as_ids(ids, vocab_size: int, name: str = "ids", min_len: int = 2) -> torch.Tensor:
    """Return a 1-D LongTensor of token ids in [0, vocab_size), or raise naming the problem."""
    ids = _as_id_tensor(ids, name)
    if ids.dim() != 1:
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {tuple(ids.shape)}; "
                         "flatten it first (e.g. ids.view(-1))")
    if len(ids) < min_len:
        raise ValueError(f"{name} has {len(ids)} tokens; a bigram needs at least {min_len} "
                         "(a previous token and a next token)")
    if ids.min() < 0 or ids.max() >= vocab_size:
        raise ValueError(f"{name} must lie in [0, {vocab_size}) for vocab_size={vocab_size}, got "
                         f"values from {int(ids.min())} to {int(ids.max())}; pass the tokenizer's "
                         "vocab_size")
    return ids.long()


# ---------------------------------------------------------------------------------------------
# Loss


def cross_entropy(logits, targets) -> torch.Tensor:
    """Mean negative log-probability of the targets under softmax(logits): (..., V) and (...)."""
    logits = _as_logits(logits)
    targets = _as_id_tensor(targets, "targets")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"logits have shape {tuple(logits.shape)} but targets have shape "
                         f"{tuple(targets.shape)}: targets must match every dimension of logits "
                         "except the last (e.g. (B, T, V) and (B, T))")
    V = logits.shape[-1]
    if targets.numel() == 0:
        raise ValueError("targets are empty: there is nothing to average the loss over")
    if targets.min() < 0 or targets.max() >= V:
        raise ValueError(f"targets must lie in [0, {V}) (the last dimension of logits), got values "
                         f"from {int(targets.min())} to {int(targets.max())}")
    # log_softmax subtracts the row max before exponentiating, so large logits cannot overflow.
    logp = F.log_softmax(logits, dim=-1)                                   # (..., V)
    picked = logp.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)     # (...)
    return -picked.mean()


def perplexity(loss):
    """exp(loss): the number of equally likely tokens that would be as surprising (V for uniform)."""
    if isinstance(loss, torch.Tensor):
        if not loss.is_floating_point():
            raise ValueError(f"loss has dtype {loss.dtype}: pass the float loss, e.g. from cross_entropy")
        if torch.isnan(loss).any():
            raise ValueError("loss is NaN, so its perplexity is undefined: training diverged or "
                             "divided by zero; lower the learning rate or check the data")
        return torch.exp(loss)
    if not isinstance(loss, numbers.Real) or isinstance(loss, bool):
        raise TypeError(f"loss must be a number or a tensor (a mean cross-entropy in nats), got "
                        f"{type(loss).__name__} {loss!r}")
    if math.isnan(loss):
        raise ValueError("loss is NaN, so its perplexity is undefined: training diverged or "
                         "divided by zero; lower the learning rate or check the data")
    return math.exp(float(loss)) if loss < 709.78 else math.inf  # exp overflows a float above ~709.78


def _generate(next_logits, start_id: int, n: int, vocab_size: int, temperature, top_k, top_p,
              generator) -> list[int]:
    """Sample n tokens one at a time, each from next_logits(previous id); return all n + 1 ids."""
    start_id = _check_token_id(start_id, vocab_size, "start_id")
    n = _as_int(n, "n (the number of tokens to generate)", 0)
    _check_temperature(temperature)
    out = [start_id]
    for _ in range(n):
        # A bigram only ever looks at the last token: everything before it is forgotten.
        out.append(int(sample_next(next_logits(out[-1]), temperature, top_k, top_p, generator)))
    return out


# ---------------------------------------------------------------------------------------------
# Bigram models


class CountBigram:
    """A bigram model made by counting: P(next | prev) = (count(prev, next) + k) / row total."""

    def __init__(self, counts: torch.Tensor, smoothing: float = 1.0):
        counts = torch.as_tensor(counts)
        if counts.dtype == torch.bool or counts.is_complex():
            raise ValueError(f"counts has dtype {counts.dtype}: pass a table of numbers of pairs, "
                             "e.g. from CountBigram.fit(ids, vocab_size)")
        if counts.is_floating_point() and not torch.isfinite(counts).all():
            raise ValueError("counts contain NaN or inf: a count is a finite number of pairs; "
                             "rebuild the table, e.g. with CountBigram.fit(ids, vocab_size)")
        if counts.dim() != 2 or counts.shape[0] != counts.shape[1]:
            raise ValueError(f"counts must be a square (V, V) table, got shape {tuple(counts.shape)}")
        if (counts < 0).any():
            raise ValueError("counts must be >= 0: they count how often each pair occurred")
        if not _is_number(smoothing) or smoothing < 0:
            raise ValueError(f"smoothing must be a number >= 0 (1.0 is add-one smoothing), "
                             f"got {smoothing!r}")
        self.counts = counts                                   # (V, V) row = previous token
        self.smoothing = float(smoothing)
        table = counts.double() + self.smoothing               # (V, V)
        totals = table.sum(dim=1, keepdim=True)                # (V, 1)
        # With smoothing=0 a token never seen as "previous" has an empty row: there is no
        # evidence at all, so it predicts uniformly instead of dividing by zero.
        uniform = torch.full_like(table, 1.0 / table.shape[1])
        probs = torch.where(totals > 0, table / totals.clamp_min(1e-300), uniform)
        self.probs = probs.float()                             # (V, V) rows sum to 1

    @classmethod
    def fit(cls, ids, vocab_size: int, smoothing: float = 1.0) -> "CountBigram":
        """Count every (previous, next) pair in a 1-D sequence of token ids."""
        vocab_size = _as_int(vocab_size, "vocab_size", 1)
        ids = _as_ids(ids, vocab_size)
        V = vocab_size
        # Each pair (a, b) gets the single index a * V + b, so one bincount counts all pairs.
        pairs = ids[:-1] * V + ids[1:]                                          # (N - 1,)
        counts = torch.bincount(pairs, minlength=V * V).view(V, V)              # (V, V)
        return cls(counts, smoothing)

    @property
    def vocab_size(self) -> int:
        """The number of tokens V."""
        return self.counts.shape[0]

    def next_token_probs(self, prev_id: int) -> torch.Tensor:
        """The distribution (V,) over the next token after prev_id."""
        return self.probs[_check_token_id(prev_id, self.vocab_size, "prev_id")]

    def loss(self, ids) -> float:
        """Mean negative log-likelihood (nats) of each next token in ids given the one before."""
        ids = _as_ids(ids, self.vocab_size)
        p = self.probs[ids[:-1], ids[1:]].double()                              # (N - 1,)
        # A pair never seen with smoothing=0 has probability 0: the loss is honestly infinite.
        return float(-torch.log(p).mean())

    def generate(self, start_id: int, n: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator: torch.Generator | None = None) -> list[int]:
        """Sample n new tokens after start_id; returns [start_id, *n new ids]."""
        logp = torch.log(self.probs)  # (V, V); log 0 = -inf is fine: those tokens are never drawn
        return _generate(lambda prev: logp[prev], start_id, n, self.vocab_size,
                         temperature, top_k, top_p, generator)

    def __repr__(self) -> str:
        return f"CountBigram(vocab_size={self.vocab_size}, smoothing={self.smoothing})"


class NeuralBigram(nn.Module):
    """A bigram model as a neural net: one (V, V) table whose row prev holds the next-token logits.

    Looking up row prev is the same as multiplying a one-hot vector by the table. Trained with
    cross-entropy to convergence, softmax of each row recovers the counted probabilities without
    smoothing (CountBigram.fit(ids, V, smoothing=0)): the table learns the counted bigram
    log-probabilities, up to a constant per row. Rows of tokens never seen as "previous" get no
    gradient and stay uniform.
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = _as_int(vocab_size, "vocab_size", 1)
        self.logits_table = nn.Embedding(self.vocab_size, self.vocab_size)
        # Zeros = uniform predictions: the model starts knowing nothing, so its first loss is
        # exactly ln(V), a number the notebook can check.
        nn.init.zeros_(self.logits_table.weight)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Return (logits (..., V), loss or None) for token ids idx of any shape, e.g. (B, T)."""
        idx = _as_id_tensor(idx, "idx")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"idx must hold integer token ids in [0, {self.vocab_size}); "
                             "encode the text with the tokenizer this model was built for")
        logits = self.logits_table(idx)                                         # (..., V)
        loss = None if targets is None else cross_entropy(logits, targets)
        return logits, loss

    @property
    def probs(self) -> torch.Tensor:
        """The model's bigram table as probabilities (V, V), comparable to CountBigram.probs."""
        with torch.no_grad():
            return F.softmax(self.logits_table.weight, dim=-1)                  # (V, V)

    @torch.no_grad()
    def generate(self, start_id: int, n: int, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, generator: torch.Generator | None = None) -> list[int]:
        """Sample n new tokens after start_id; returns [start_id, *n new ids]."""
        table = self.logits_table.weight                                        # (V, V)
        return _generate(lambda prev: table[prev], start_id, n, self.vocab_size,
                         temperature, top_k, top_p, generator)


def train_bigram(model: NeuralBigram, ids, steps: int = 200, lr: float = 10.0,
                 batch_size: int | None = None,
                 generator: torch.Generator | None = None) -> list[float]:
    """Fit a NeuralBigram with plain gradient descent (SGD); return the loss of every step.

    batch_size=None uses every (previous, next) pair each step; an int samples that many pairs
    at random (with generator) per step. The large default lr suits this model: its gradients
    are divided by the number of pairs, so small steps barely move a rarely seen row.
    """
    ids = _as_ids(ids, model.vocab_size)
    steps = _as_int(steps, "steps", 1)
    if not _is_number(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if batch_size is not None:
        batch_size = _as_int(batch_size, "batch_size (None means full batch)", 1)
    x, y = ids[:-1], ids[1:]                                                    # (N,), (N,)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        if batch_size is None:
            xb, yb = x, y
        else:
            pick = torch.randint(0, len(x), (batch_size,), generator=generator)  # (batch_size,)
            xb, yb = x[pick], y[pick]
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
