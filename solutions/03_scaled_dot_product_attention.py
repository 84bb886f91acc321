"""Solutions to the exercises of lesson 03, "Scaled dot-product attention".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import math

import torch


def softmax(x: torch.Tensor) -> torch.Tensor:
    """Exercise 1: softmax over the last axis, safe for huge logits; -inf entries get weight 0."""
    # softmax(x) == softmax(x - c): subtracting each row's max makes the largest exponent exp(0).
    shifted = x - x.max(dim=-1, keepdim=True).values   # (..., n) a new tensor: x stays untouched
    e = torch.exp(shifted)                              # (..., n)
    return e / e.sum(dim=-1, keepdim=True)              # (..., n) keepdim: divide each row by its sum


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
    """Exercise 2: (softmax(q kᵀ / √d_k) v, weights); q (..., T_q, d_k), k (..., T_k, d_k), v (..., T_k, d_v)."""
    d_k = q.shape[-1]                                   # the width of q and k, read from the data
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)   # (..., T_q, T_k)
    weights = softmax(scores)                           # (..., T_q, T_k) each row sums to 1
    return weights @ v, weights                         # (..., T_q, d_v), (..., T_q, T_k)


def causal_mask(T: int) -> torch.Tensor:
    """Exercise 3: bool (T, T), True where query i may attend to key j, i.e. j <= i."""
    return torch.tril(torch.ones(T, T, dtype=torch.bool))  # (T, T) lower triangle, diagonal included


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor):
    """Exercise 4: attention in which keys with mask False get exactly zero weight (True = may attend)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    # -inf before the softmax: exp(-inf) = 0 exactly, and the other weights still sum to 1.
    scores = scores.masked_fill(~mask, float("-inf"))           # (..., T_q, T_k)
    weights = softmax(scores)                                   # (..., T_q, T_k)
    return weights @ v, weights                                 # (..., T_q, d_v), (..., T_q, T_k)
