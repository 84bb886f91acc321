"""Input checks for llmlab.attention, kept apart so the attention module reads as the algorithm."""
from __future__ import annotations

from typing import Sequence

import torch

from llmlab.kv_cache import KVCache

__all__: list[str] = []  # private: llmlab.attention is the public face


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    """Raise a clear error unless q, k, v are (..., T_q, d_k), (..., T_k, d_k), (..., T_k, d_v)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}: "
                            f"convert it with torch.as_tensor({name}, dtype=torch.float32)")
        if t.dim() < 2:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but needs at least 2 dimensions "
                             f"(..., T, d): add a sequence dimension, e.g. {name}.unsqueeze(0)")
        if not torch.is_floating_point(t):
            raise ValueError(f"{name} has dtype {t.dtype} but attention needs floats: "
                             f"use {name}.float()")
    for name, t in (("k", k), ("v", v)):
        if t.dtype != q.dtype:
            raise ValueError(f"q has dtype {q.dtype} but {name} has dtype {t.dtype}: "
                             f"convert them to one dtype, e.g. {name} = {name}.to(q.dtype)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q has shape {tuple(q.shape)} but k has shape {tuple(k.shape)}: "
                         "the last dimensions (d_k) must match")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k has shape {tuple(k.shape)} but v has shape {tuple(v.shape)}: keys and "
                         "values must have the same length T_k (dimension -2), one value per key")
    for name, t in (("k", k), ("v", v)):
        if t.shape[:-2] != q.shape[:-2]:
            raise ValueError(f"q has shape {tuple(q.shape)} but {name} has shape {tuple(t.shape)}: "
                             "the leading (batch, head) dimensions must match exactly")


def check_mask(mask: torch.Tensor | None, scores_shape: Sequence[int]) -> None:
    """Raise a clear error unless mask is None or a bool tensor broadcastable to scores_shape."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask has dtype {got}: pass a bool mask where True = may attend "
                         "(for an additive float mask of 0 / -inf, convert with mask = additive == 0)")
    target, m = tuple(scores_shape), tuple(mask.shape)
    if len(m) > len(target) or any(a not in (1, b) for a, b in zip(m[::-1], target[::-1])):
        raise ValueError(f"mask has shape {m} but the attention scores have shape {target}: "
                         f"the mask must broadcast to (..., T_q, T_k) = {target}; for padding use "
                         "padding_mask(lengths, T), shape (B, 1, 1, T)")


def check_mha_inputs(cfg, x: torch.Tensor, context: torch.Tensor | None, cache) -> None:
    """Raise a clear error unless x is (B, T, d_model) and context / cache fit a layer with config cfg."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != cfg.d_model:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x has shape {got} but this layer expects (B, T, d_model={cfg.d_model}): "
                         "add a batch dimension with x.unsqueeze(0) if needed")
    if cache is not None:
        _check_cache(cfg, x, context, cache)
    if context is None:
        if cfg.d_kv is not None:
            raise ValueError(f"this is a cross-attention layer (d_kv={cfg.d_kv}): pass the keys' "
                             "source as context=..., or build it with d_kv=None for self-attention")
        return
    width = cfg.d_model if cfg.d_kv is None else cfg.d_kv
    if not isinstance(context, torch.Tensor) or context.dim() != 3 or context.shape[-1] != width:
        got = tuple(context.shape) if isinstance(context, torch.Tensor) else type(context).__name__
        raise ValueError(f"context has shape {got} but this layer expects (B, T_k, {width}): "
                         "set AttentionConfig(d_kv=...) to the context's width")
    if context.shape[0] != x.shape[0]:
        raise ValueError(f"x has shape {tuple(x.shape)} but context has shape "
                         f"{tuple(context.shape)}: the batch sizes (dimension 0) must match")
    if cfg.causal:
        raise ValueError("this layer has causal=True, which is for self-attention only: call it "
                         "without context, or pass an explicit mask= to a non-causal layer")


def _check_cache(cfg, x: torch.Tensor, context: torch.Tensor | None, cache) -> None:
    """Raise a clear error unless cache is a KVCache for causal self-attention whose keys fit x."""

    if not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache, got {type(cache).__name__}: "
                        "start each new sequence with cache=KVCache()")
    if context is not None or cfg.d_kv is not None:
        raise ValueError("a KV cache is for self-attention only: cross-attention's keys come from a "
                         "fixed context, so compute them once and pass context=... without a cache")
    if not cfg.causal:
        raise ValueError("a KV cache needs a causal layer (AttentionConfig(causal=True)): only then do "
                         "earlier tokens' keys and values stay the same when new tokens arrive")
    if cache.k is None:
        return
    B, H, _, hd = cache.k.shape
    if (B, H, hd) != (x.shape[0], cfg.n_heads, cfg.head_dim):
        raise ValueError(f"the cache holds keys of shape {tuple(cache.k.shape)} = (B, H, T_past, hd) "
                         f"but x has shape {tuple(x.shape)} for a layer with n_heads={cfg.n_heads}, "
                         f"head_dim={cfg.head_dim}: use a fresh KVCache() per layer and per batch")
