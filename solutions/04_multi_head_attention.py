"""Solutions to the exercises of lesson 04, "Multi-head attention".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import math

import torch


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Exercise 1: (B, T, C) -> (B, n_heads, T, d_k) with d_k = C // n_heads."""
    B, T, C = x.shape
    # Each token's C numbers are n_heads blocks of d_k, so view them that way first; only then
    # move the heads next to the batch (a view straight to (B, H, T, d_k) would mix tokens).
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)  # (B, H, T, d_k)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """Exercise 2: (B, n_heads, T, d_k) -> (B, T, n_heads * d_k), the inverse of split_heads."""
    B, H, T, d_k = y.shape
    # After the transpose the numbers are not stored in (B, T, H, d_k) order: reshape copies
    # them when it must (a plain .view would raise).
    return y.transpose(1, 2).reshape(B, T, H * d_k)  # (B, T, C)


def multi_head_attention(x: torch.Tensor, W_q: torch.Tensor, W_k: torch.Tensor,
                         W_v: torch.Tensor, W_o: torch.Tensor, n_heads: int):
    """Exercise 3: (output (B, T, C), weights (B, H, T, T)) of multi-head self-attention."""
    q, k, v = (split_heads(x @ W, n_heads) for W in (W_q, W_k, W_v))  # (B, H, T, d_k) each
    d_k = q.shape[-1]                                       # the width of one head, not C
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)       # (B, H, T, T)
    weights = torch.softmax(scores, dim=-1)                 # (B, H, T, T) rows sum to 1
    return merge_heads(weights @ v) @ W_o, weights          # (B, T, C), (B, H, T, T)


def sinusoidal_encoding(T: int, d_model: int) -> torch.Tensor:
    """Exercise 4: (T, d_model) table, PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same)."""
    positions = torch.arange(T, dtype=torch.float32)[:, None]            # (T, 1), from 0
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)             # (d/2,) = 0, 2, 4, ...
    angles = positions / 10000.0 ** (two_i / d_model)                    # (T, d/2) one per pair
    pe = torch.zeros(T, d_model)                                         # (T, d_model)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe
