"""Input checks for llmlab.attention, kept apart so the attention module reads as the algorithm."""
from __future__ import annotations

import math
import numbers
import operator
from typing import Sequence

import numpy as np
import torch

from llmlab.kv_cache import KVCache

__all__: list[str] = []  # private: llmlab.attention is the public face

# --- plain Python values for configs -------------------------------------------------------------
# Configs are saved in checkpoints and loaded with torch.load(weights_only=True), which refuses
# NumPy scalars. So each check returns a plain int / float / bool, converting NumPy's kind.


def as_size(value, name: str, minimum: int = 1) -> int:
    """Return value as a plain int >= minimum (Python or NumPy ints), or raise naming the fix."""
    kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        hint = " (a whole number is needed: use // instead of /, or int(...))" \
            if isinstance(value, (float, np.floating)) else ""
        raise ValueError(f"{name} must be {kind}, got {value!r} ({type(value).__name__}){hint}") from None
    if value < minimum:
        raise ValueError(f"{name} must be {kind}, got {value}")
    return int(value)


def as_dropout(value, name: str = "dropout") -> float:
    """Return a dropout probability as a plain float in [0, 1), or raise naming the fix."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) \
            or not 0.0 <= value < 1.0:  # NaN fails this comparison too
        raise ValueError(f"{name} must be in [0, 1), got {value!r} ({type(value).__name__}): "
                         "e.g. 0.1 to zero one activation in ten while training, 0.0 for none")
    return float(value)


def as_flag(value, name: str) -> bool:
    """Return value as a plain bool; refuse 0/1 and strings such as 'no' (a non-empty str is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def as_base(value) -> float:
    """Return a positional-encoding base (wavelength scale) as a plain float > 1, or raise."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) \
            or not math.isfinite(value) or value <= 1:
        raise ValueError(f"base must be a finite number > 1, got {value!r}: frequencies are "
                         "base ** (-2i / d), so base <= 0 gives NaN and base <= 1 makes them all >= 1 "
                         "(positions repeat); use the paper's 10000.0")
    return float(value)


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise naming the first NaN / inf entry of t (one pass over t: use off the training path)."""
    bad = ~torch.isfinite(t)
    if bad.any():
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{name}{list(where)} is {t[where].item()} ({int(bad.sum())} NaN/inf entries "
                         f"in {name}): attention of NaN or inf is NaN; find where {name} was computed "
                         "(a division by zero, log(0), an overflow, or weights that hold NaN)")


def check_softmax_rows(x: torch.Tensor, row_max: torch.Tensor) -> None:
    """Raise naming the first NaN / +inf in x, given its row maxima (NaN or +inf there flags a row).

    Checking the row maxima, one number per row, is much cheaper than checking x itself.
    """
    if bool((torch.isnan(row_max) | torch.isposinf(row_max)).any()):
        bad = torch.isnan(x) | torch.isposinf(x)
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"softmax input x{list(where)} is {x[where].item()}: softmax is undefined there "
                         "(exp(inf) / exp(inf) and NaN both give NaN); make x finite, e.g. "
                         "x.clamp(max=1e4), or find where the NaN came from (-inf is fine: weight 0)")


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
    if k.shape[-2] == 0:
        raise ValueError(f"k has shape {tuple(k.shape)}: T_k = 0 keys, so there is nothing to attend "
                         "to; pass at least one key (to hide keys, keep them and mask them out)")
    if q.shape[-1] == 0:
        raise ValueError(f"q and k have shape {tuple(q.shape)} and {tuple(k.shape)}: d_k = 0 features, "
                         "so every score is 0 / sqrt(0); give them at least one feature")
    # A full pass over q, k, v: affordable here, on the explicit (teaching) functions. The fused
    # path of MultiHeadAttention skips it; GPT checks its loss / logits instead (one small tensor).
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_finite(t, name)


def check_float_input(t: torch.Tensor, name: str, dtype: torch.dtype) -> None:
    """Raise a clear error unless t is floating point with the dtype of the layer's weights."""
    if not t.is_floating_point():
        raise ValueError(f"{name} has dtype {t.dtype} but this layer needs floats: use {name}.float() "
                         "(token ids go through an embedding first, e.g. nn.Embedding or GPT)")
    # Under autocast PyTorch casts inside each op, so mixed dtypes are expected there.
    if t.dtype != dtype and not torch.is_autocast_enabled(t.device.type):
        raise ValueError(f"{name} has dtype {t.dtype} but this layer's weights are {dtype}: convert the "
                         f"input with {name}.to({dtype}) ({name}.float() for float32), or the model "
                         f"with model.to({t.dtype}) (e.g. model.double())")


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


def check_mha_inputs(cfg, x: torch.Tensor, context: torch.Tensor | None, cache,
                     dtype: torch.dtype = torch.float32) -> None:
    """Raise a clear error unless x (B, T, d_model), context and cache fit a layer (cfg, weight dtype)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != cfg.d_model:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x has shape {got} but this layer expects (B, T, d_model={cfg.d_model}): "
                         "add a batch dimension with x.unsqueeze(0) if needed")
    check_float_input(x, "x", dtype)
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
    check_float_input(context, "context", dtype)
    if context.shape[1] == 0:
        raise ValueError(f"context has shape {tuple(context.shape)}: T_k = 0 positions, so there is "
                         "nothing to attend to; every batch needs at least one context position")
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
    if cache.k.dtype != x.dtype and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(f"the cache holds keys of dtype {cache.k.dtype} but x has dtype {x.dtype}: "
                         "start a fresh KVCache() after changing the model's or the input's dtype")
    B, H, _, hd = cache.k.shape
    if (B, H, hd) != (x.shape[0], cfg.n_heads, cfg.head_dim):
        raise ValueError(f"the cache holds keys of shape {tuple(cache.k.shape)} = (B, H, T_past, hd) "
                         f"but x has shape {tuple(x.shape)} for a layer with n_heads={cfg.n_heads}, "
                         f"head_dim={cfg.head_dim}: use a fresh KVCache() per layer and per batch")
