"""Position information for attention: sinusoidal, learned and rotary (RoPE) encodings.

Attention by itself is blind to order: permute the tokens and each output is permuted the same way.
Sinusoidal and learned encodings fix that by adding a position vector to each token embedding;
RoPE instead rotates queries and keys inside every head, so scores depend on relative position.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from llmlab._validate_attention import as_base as _as_base
from llmlab._validate_attention import as_size as _as_size

__all__ = [
    "sinusoidal_encoding", "LearnedPositionalEmbedding", "rope_frequencies", "apply_rope",
]


def sinusoidal_encoding(T: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """Return the (T, d_model) table PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(same)."""
    T, d_model, base = _as_size(T, "T"), _as_size(d_model, "d_model"), _as_base(base)
    # One frequency per (sin, cos) pair, from 1 (fast, pair 0) down to about 1/base (slow): every
    # position gets a distinct pattern, and PE[p + k] is a fixed rotation of PE[p] for each k.
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (ceil(d/2),)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq  # (T, ceil(d/2))
    pe = torch.empty(T, d_model, dtype=torch.float64)  # (T, d_model)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # an odd d_model drops the last cosine
    return pe.float()  # float64 above keeps large positions accurate; the table itself is float32


class LearnedPositionalEmbedding(nn.Module):
    """One trained vector per position 0..max_len-1 (GPT-2's `wpe`)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        max_len, d_model = _as_size(max_len, "max_len"), _as_size(d_model, "d_model")
        self.max_len = max_len
        # GPT-2 initialises its position table with std 0.02.
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02)  # (max_len, d_model)

    def forward(self, T: int, offset: int = 0) -> torch.Tensor:
        """Return the (T, d_model) vectors of positions offset..offset+T-1, to add to the tokens."""
        T, offset = _as_size(T, "T"), _as_size(offset, "offset", minimum=0)
        if offset + T > self.max_len:
            raise ValueError(f"positions {offset}..{offset + T - 1} (T={T}, offset={offset}) do not fit "
                             f"max_len={self.max_len}: build LearnedPositionalEmbedding with max_len >= "
                             f"{offset + T}, or crop the input to its last {self.max_len} tokens")
        return self.weight[offset:offset + T]  # (T, d_model)


# --- Rotary position embeddings (RoPE, Su et al. 2021) -------------------------------------------
# Split a head vector x of width d into pairs (x[j], x[j + d/2]) (GPT-NeoX / Hugging Face Llama
# convention) and read each pair as a complex number z_j. At position m, RoPE multiplies z_j by
# e^{i m theta_j}: a rotation, so norms are unchanged. For a query at m and a key at n,
#     q_rot . k_rot = Re sum_j q_j e^{i m theta_j} conj(k_j e^{i n theta_j})
#                   = Re sum_j q_j conj(k_j) e^{i (m - n) theta_j},
# which depends on the positions only through m - n: attention scores see relative position.

def _check_even(head_dim: int) -> None:
    """Raise a clear error for an odd head width, which RoPE cannot split into pairs."""
    if head_dim % 2:
        raise ValueError(f"head_dim={head_dim} is odd: RoPE rotates dimensions in pairs, so head_dim "
                         "must be even; choose d_model and n_heads so that d_model // n_heads is even")


def _rope_angles(positions: torch.Tensor, head_dim: int, base: float):
    """Return cos and sin, each (*positions.shape, head_dim), of the angles positions * theta_j."""
    _check_even(head_dim)
    theta = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device)
                     / head_dim)  # (head_dim/2,)
    angles = positions.to(torch.float64)[..., None] * theta  # (..., T, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (..., T, head_dim): pair j and j + d/2 share theta_j
    return angles.cos().float(), angles.sin().float()


def rope_frequencies(T: int, head_dim: int, base: float = 10000.0, offset: int = 0,
                     device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (cos, sin), each (T, head_dim), for positions offset..offset+T-1, ready for apply_rope."""
    T, head_dim, base = _as_size(T, "T"), _as_size(head_dim, "head_dim"), _as_base(base)
    offset = _as_size(offset, "offset", minimum=0)
    return _rope_angles(torch.arange(offset, offset + T, device=device), head_dim, base)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Map each pair (a, b) = (x[j], x[j + d/2]) to (-b, a): multiplication by i."""
    a, b = x.chunk(2, dim=-1)  # 2 x (..., T, d/2)
    return torch.cat([-b, a], dim=-1)  # (..., T, d)


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None,
               cos: torch.Tensor | None = None, sin: torch.Tensor | None = None,
               base: float = 10000.0) -> torch.Tensor:
    """Rotate x (..., T, head_dim) by its positions (default 0..T-1) or by precomputed cos/sin."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not torch.is_floating_point(x):
        raise ValueError("x must be a floating-point tensor of shape (..., T, head_dim), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    T, head_dim = x.shape[-2:]
    _check_even(head_dim)
    if (cos is None) != (sin is None):
        raise ValueError("pass cos and sin together (from rope_frequencies), or neither")
    if cos is not None and positions is not None:
        raise ValueError("pass either positions or cos/sin, not both: cos/sin already encode positions")
    if cos is None:
        base = _as_base(base)
        if positions is None:
            positions = torch.arange(T, device=x.device)  # (T,)
        positions = torch.as_tensor(positions, device=x.device)
        if positions.shape[-1:] != (T,) or positions.is_floating_point() or positions.is_complex() \
                or positions.dtype == torch.bool:
            raise ValueError(f"positions has shape {tuple(positions.shape)} and dtype {positions.dtype} "
                             f"but x has shape {tuple(x.shape)}: pass integer positions shaped (T,) = "
                             f"({T},) or (..., T)")
        cos, sin = _rope_angles(positions, head_dim, base)  # (..., T, head_dim) each
    elif not all(isinstance(t, torch.Tensor) and t.is_floating_point() for t in (cos, sin)):
        raise ValueError(f"cos and sin must be float tensors, got {type(cos).__name__} and "
                         f"{type(sin).__name__}: use cos, sin = rope_frequencies(T={T}, head_dim={head_dim})")
    elif cos.shape != sin.shape or cos.shape[-2:] != (T, head_dim):
        raise ValueError(f"cos has shape {tuple(cos.shape)} and sin {tuple(sin.shape)} but x has shape "
                         f"{tuple(x.shape)}: use rope_frequencies(T={T}, head_dim={head_dim})")
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + _rotate_half(x) * sin  # (..., T, head_dim)
