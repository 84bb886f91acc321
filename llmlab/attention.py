"""Scaled dot-product attention, causal and padding masks, multi-head attention (self and cross).

A mask is a bool tensor, True = "this query may attend to this key", that broadcasts to the scores
(..., T_q, T_k); for MultiHeadAttention that is (B, H, T_q, T_k). A query row whose mask is all
False has nothing to attend to: its weights are all zero and its attended vector is zero (never
NaN), on both the explicit and the fused path (after MultiHeadAttention's c_proj: just its bias).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_attention import as_dropout as _as_dropout
from llmlab._validate_attention import as_flag as _as_flag
from llmlab._validate_attention import as_size as _as_size
from llmlab._validate_attention import check_mask as _check_mask
from llmlab._validate_attention import check_mha_inputs as _check_mha_inputs
from llmlab._validate_attention import check_qkv as _check_qkv
from llmlab._validate_attention import check_softmax_rows as _check_softmax_rows
from llmlab.kv_cache import KVCache
from llmlab.positional import apply_rope, rope_frequencies

__all__ = [
    "softmax", "AttentionOutput", "scaled_dot_product_attention", "AttentionSteps", "attention_steps",
    "causal_mask", "padding_mask", "AttentionConfig", "KVCache", "MultiHeadAttention",
]

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax along dim, stable for huge logits; a slice that is entirely -inf gives all zeros."""
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
        fix = "x.float()" if isinstance(x, torch.Tensor) else "torch.as_tensor(x, dtype=torch.float32)"
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"softmax needs a floating-point tensor, got {got}: convert with {fix}")
    if x.dim() == 0 or x.shape[dim] == 0:
        raise ValueError(f"x has shape {tuple(x.shape)}: softmax needs at least one value along dim={dim}")
    # exp(1000) overflows, but softmax(x) == softmax(x - c) for any c, so subtract the max:
    # the largest exponent becomes exp(0) = 1. The shift carries no gradient (it cancels out).
    shift = x.detach().amax(dim=dim, keepdim=True)
    _check_softmax_rows(x, shift)  # a NaN or +inf in a slice makes its max NaN or +inf
    # An all -inf slice has max -inf, and -inf - (-inf) is NaN; shift by 0 there instead.
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    e = torch.exp(x - shift)
    total = e.sum(dim=dim, keepdim=True)
    # An all -inf slice sums to 0: divide by 1 so its weights stay 0 rather than 0/0 = NaN.
    return e / torch.where(total == 0, torch.ones_like(total), total)


class AttentionOutput(NamedTuple):
    """Attention result: output (..., T_q, d_v) and weights (..., T_q, T_k) or None if not asked for."""

    output: torch.Tensor
    weights: torch.Tensor | None


class AttentionSteps(NamedTuple):
    """Each step of softmax(Q K^T / sqrt(d_k)) V, for teaching; all but output are (..., T_q, T_k)."""

    scores: torch.Tensor  # Q K^T
    scaled_scores: torch.Tensor  # scores / sqrt(d_k), or scores itself with scale=False
    masked_scores: torch.Tensor  # -inf where the mask is False
    weights: torch.Tensor  # softmax over the keys
    output: torch.Tensor  # weights @ V, (..., T_q, d_v)


def _masked_scores(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Put -inf where the mask is False, so those keys get exactly zero weight after softmax."""
    return scores if mask is None else scores.masked_fill(~mask, float("-inf"))


def _attention_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Compute softmax(q k^T / sqrt(d_k)) over the keys, masked keys at zero weight: (..., T_q, T_k)."""
    # Scale by the width of q and k (the head width), not the model width: it keeps the scores'
    # variance near 1 so softmax does not saturate into a one-hot with vanishing gradients.
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    return softmax(_masked_scores(scores, mask), dim=-1)  # (..., T_q, T_k)


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None) -> AttentionOutput:
    """Compute softmax(q k^T / sqrt(d_k)) v with d_k = q.shape[-1]; return (output, weights)."""
    _check_qkv(q, k, v)
    _check_mask(mask, (*q.shape[:-1], k.shape[-2]))
    weights = _attention_weights(q, k, mask)  # (..., T_q, T_k)
    return AttentionOutput(weights @ v, weights)  # output (..., T_q, d_v)


def attention_steps(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    mask: torch.Tensor | None = None, scale: bool = True) -> AttentionSteps:
    """Compute attention step by step, returning every intermediate; scale=False skips 1/sqrt(d_k)."""
    _check_qkv(q, k, v)
    _check_mask(mask, (*q.shape[:-1], k.shape[-2]))
    scores = q @ k.transpose(-2, -1)  # (..., T_q, T_k)
    scaled = scores / math.sqrt(q.shape[-1]) if scale else scores  # (..., T_q, T_k)
    masked = _masked_scores(scaled, mask)  # (..., T_q, T_k)
    weights = softmax(masked, dim=-1)  # (..., T_q, T_k)
    return AttentionSteps(scores, scaled, masked, weights, weights @ v)  # output (..., T_q, d_v)


def causal_mask(T: int, T_k: int | None = None, device: torch.device | str | None = None,
                ) -> torch.Tensor:
    """Return a bool (T, T_k) mask where query i may attend to keys up to its own position."""
    T = _as_size(T, "T")
    T_k = T if T_k is None else _as_size(T_k, "T_k")
    if T_k < T:
        raise ValueError(f"T_k={T_k} is shorter than T={T}: a causal mask treats the T queries as the "
                         "last T of the T_k positions (as with a KV cache), so pass T_k >= T")
    # The queries are the last T positions, so query i sits at absolute position i + (T_k - T) and
    # may see keys 0..i + (T_k - T). With T_k == T this is the plain lower triangle.
    return torch.ones(T, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T)  # (T, T_k)


def padding_mask(lengths: torch.Tensor | Sequence[int], T: int | None = None) -> torch.Tensor:
    """Return a bool (B, 1, 1, T) mask that is True for the first lengths[b] (real) key positions."""
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or not len(lengths) or lengths.dtype not in _INT_DTYPES:
        raise ValueError(f"lengths must be a non-empty 1-D sequence of ints (one per batch row), "
                         f"got shape {tuple(lengths.shape)} and dtype {lengths.dtype}")
    if int(lengths.max()) <= 0:
        raise ValueError(f"lengths {lengths.tolist()} are all <= 0, so no batch row has a key to attend "
                         "to (and T, the longest length, would be 0): every batch needs a sequence of "
                         "length >= 1; pass the real lengths (tokens before the padding)")
    T = int(lengths.max()) if T is None else _as_size(T, "T")
    if lengths.min() < 0 or lengths.max() > T:
        raise ValueError(f"lengths {lengths.tolist()} must lie in 0..T={T}: "
                         "pass T >= the longest sequence")
    # Shape (B, 1, 1, T) broadcasts over heads and queries, so `padding_mask(...) & causal_mask(T)`
    # gives (B, 1, T, T). A (B, T) mask would instead line B up with the query axis: a silent bug.
    keep = torch.arange(T, device=lengths.device) < lengths[:, None]  # (B, T)
    return keep[:, None, None, :]  # (B, 1, 1, T)


@dataclass
class AttentionConfig:
    """Settings of one MultiHeadAttention layer; d_kv is the context width for cross-attention."""

    d_model: int
    n_heads: int
    dropout: float = 0.0  # on the attention weights, in training mode only
    bias: bool = True
    causal: bool = False  # self-attention only: each position sees itself and the past
    d_kv: int | None = None  # None: keys/values have width d_model (fused GPT-2 layout)
    rope: bool = False  # rotate q and k by their positions (RoPE, Su et al. 2021); self-attention
    qk_norm: bool = False  # RMS-normalise each head's q and k before the dot product

    def __post_init__(self):
        # Plain Python values (NumPy's converted), so a checkpoint holding them loads weights-only.
        self.d_model, self.n_heads = _as_size(self.d_model, "d_model"), _as_size(self.n_heads, "n_heads")
        self.d_kv = None if self.d_kv is None else _as_size(self.d_kv, "d_kv")
        self.dropout = _as_dropout(self.dropout)
        self.bias, self.causal = _as_flag(self.bias, "bias"), _as_flag(self.causal, "causal")
        self.rope, self.qk_norm = _as_flag(self.rope, "rope"), _as_flag(self.qk_norm, "qk_norm")
        if self.d_model % self.n_heads:
            divisors = [h for h in range(1, self.d_model + 1) if self.d_model % h == 0]
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: each "
                             f"head gets d_model // n_heads dimensions, so pick n_heads from {divisors}")
        if self.causal and self.d_kv is not None:
            raise ValueError("causal=True needs self-attention, but d_kv makes a cross-attention layer: "
                             "cross-attention is never causal (the decoder's self-attention is)")
        if self.rope and self.d_kv is not None:
            raise ValueError("rope=True needs self-attention: queries and keys of a cross-attention "
                             "layer come from two sequences whose positions do not compare")
        if self.rope and self.head_dim % 2:
            raise ValueError(f"rope=True needs an even head width, but d_model // n_heads = "
                             f"{self.head_dim}: RoPE rotates dimensions in pairs")

    @property
    def head_dim(self) -> int:
        """Width of one head: d_model // n_heads (this, not d_model, sets the 1/sqrt(d_k) scale)."""
        return self.d_model // self.n_heads


class MultiHeadAttention(nn.Module):
    """Multi-head self- or cross-attention with GPT-2's parameter names and layout.

    With d_kv=None, q, k, v live in one fused `c_attn` Linear(d_model, 3*d_model), rows ordered
    [q; k; v] as in GPT-2 and torch.nn.MultiheadAttention's in_proj_weight; such a layer can also
    attend to a context of width d_model (keys/values from the k/v rows). GPT-2 stores Conv1D
    weights as (in, out), the transpose of nn.Linear's (out, in): load them with
    `c_attn.weight.copy_(sd["attn.c_attn.weight"].t())` (same for c_proj; biases as they are).
    With d_kv set (cross-attention), `q_attn` Linear(d_model, d_model) and `kv_attn`
    Linear(d_kv, 2*d_model) replace c_attn, and a context is required.
    Causal self-attention takes `cache=KVCache()` for generation: the T_q new positions are the last
    T_q of T_past + T_q, and attend to every cached key plus the causal part of the new ones.
    """

    def __init__(self, config: AttentionConfig):
        super().__init__()
        if not isinstance(config, AttentionConfig):
            raise TypeError(f"MultiHeadAttention takes an AttentionConfig, not {type(config).__name__}: "
                            "e.g. MultiHeadAttention(AttentionConfig(d_model=64, n_heads=4)); "
                            "for a dict d, AttentionConfig(**d)")
        self.config = config
        C = config.d_model
        if config.d_kv is None:
            self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)
        else:
            self.q_attn = nn.Linear(C, C, bias=config.bias)
            self.kv_attn = nn.Linear(config.d_kv, 2 * C, bias=config.bias)
        self.c_proj = nn.Linear(C, C, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        if config.qk_norm:  # a gain per head dimension, shared by all heads (as in OLMo 2, Gemma 3)
            self.q_gain = nn.Parameter(torch.ones(config.head_dim))
            self.k_gain = nn.Parameter(torch.ones(config.head_dim))

    def _position(self, q: torch.Tensor, k: torch.Tensor, T_past: int):
        """QK-norm and RoPE on q, k (B, H, T, hd), the new positions starting at T_past."""
        cfg = self.config
        if cfg.qk_norm:
            # Bounded q and k keep the logits q.k / sqrt(hd) from growing without limit in training
            # (Dehghani et al., 2023; Wortsman et al., 2023): one cause of loss spikes.
            q = F.rms_norm(q, (cfg.head_dim,), self.q_gain, eps=1e-6)
            k = F.rms_norm(k, (cfg.head_dim,), self.k_gain, eps=1e-6)
        if cfg.rope:
            # Rotate before caching: a cached key keeps the rotation of its own position.
            cos, sin = rope_frequencies(q.shape[-2], cfg.head_dim, offset=T_past, device=q.device)
            q, k = apply_rope(q, cos=cos, sin=sin), apply_rope(k, cos=cos, sin=sin)
        return q, k

    def _project(self, x: torch.Tensor, context: torch.Tensor | None):
        """Return q (B, T_q, C) from x and k, v (B, T_k, C) from context (or from x itself)."""
        C = self.config.d_model
        if self.config.d_kv is not None:
            k, v = self.kv_attn(context).split(C, dim=-1)  # 2 x (B, T_k, C)
            return self.q_attn(x), k, v
        if context is None:
            return self.c_attn(x).split(C, dim=-1)  # 3 x (B, T, C)
        w, b = self.c_attn.weight, self.c_attn.bias  # (3C, C), (3C,)
        q = F.linear(x, w[:C], None if b is None else b[:C])  # (B, T_q, C)
        kv = F.linear(context, w[C:], None if b is None else b[C:])  # (B, T_k, 2C)
        return (q, *kv.split(C, dim=-1))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, return_weights: bool = False,
                cache: KVCache | None = None) -> AttentionOutput:
        """Attend from x (B, T_q, C) to context (B, T_k, .) or to x itself; weights (B, H, T_q, T_k)."""
        _check_mha_inputs(self.config, x, context, cache, self.c_proj.weight.dtype)
        return_weights = _as_flag(return_weights, "return_weights")
        cfg, H = self.config, self.config.n_heads
        B, T_q, C = x.shape
        T_past = 0 if cache is None else cache.length
        T_new = T_q if context is None else context.shape[1]  # positions whose k, v we compute now
        _check_mask(mask, (B, H, T_q, T_past + T_new))
        q, k, v = self._project(x, context)  # (B, T_q, C), (B, T_new, C), (B, T_new, C)
        # Split C into H heads of width C // H, and move heads next to the batch.
        q = q.view(B, T_q, H, cfg.head_dim).transpose(1, 2)  # (B, H, T_q, hd)
        k = k.view(B, T_new, H, cfg.head_dim).transpose(1, 2)  # (B, H, T_new, hd)
        v = v.view(B, T_new, H, cfg.head_dim).transpose(1, 2)  # (B, H, T_new, hd)
        if cfg.rope and context is not None:
            raise ValueError("this layer has rope=True, which needs self-attention: call it "
                             "without context")
        if cfg.rope or cfg.qk_norm:
            q, k = self._position(q, k, T_past)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, T_k, hd) with T_k = T_past + T_q: past keys, then new
        if return_weights:
            # The explicit path is the reference. It returns the weights before dropout (rows sum to 1).
            mask = self._add_causal(mask, T_q, k.shape[-2], x.device)
            weights = _attention_weights(q, k, mask)  # (B, H, T_q, T_k)
            y = self.attn_dropout(weights) @ v  # (B, H, T_q, hd)
        else:
            weights, y = None, self._fused(q, k, v, mask)  # (B, H, T_q, hd)
        y = y.transpose(1, 2).contiguous().view(B, T_q, C)  # (B, T_q, C): heads side by side again
        return AttentionOutput(self.c_proj(y), weights)

    def _add_causal(self, mask: torch.Tensor | None, T_q: int, T_k: int, device) -> torch.Tensor | None:
        """Combine the user's mask with the causal mask when this layer is causal."""
        if not self.config.causal:
            return mask
        causal = causal_mask(T_q, T_k, device=device)  # (T_q, T_k): queries are the last T_q keys
        return causal if mask is None else mask & causal  # broadcasts to (B, H, T_q, T_k)

    def _fused(self, q, k, v, mask: torch.Tensor | None) -> torch.Tensor:
        """PyTorch's fused attention kernel, with fully masked query rows pinned to zero output."""
        p = self.config.dropout if self.training else 0.0
        T_q, T_k = q.shape[-2], k.shape[-2]
        if self.config.causal and mask is None:
            if T_q == T_k:  # the kernel applies causality itself: no T x T mask to build
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            if T_q == 1:  # one new token (a KV cache): it is the last position and sees every key
                return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
            # Otherwise an explicit mask: is_causal aligns the queries with the *first* T_q keys.
        mask = self._add_causal(mask, T_q, T_k, q.device)
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, H, T_q, hd)
        # Some kernels give NaN for a query that may attend to nothing. Let such rows attend
        # everywhere (finite values and gradients), then zero their output, as the explicit path does.
        empty = ~mask.any(dim=-1, keepdim=True)  # (..., T_q, 1)
        if not bool(empty.any()):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty, dropout_p=p)
        return y.masked_fill(empty, 0.0)  # (B, H, T_q, hd)
