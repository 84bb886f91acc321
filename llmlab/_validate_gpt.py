"""Input checks for llmlab.gpt, kept apart so the model module reads as the model."""
from __future__ import annotations

import numbers
import operator
from typing import Mapping

import torch

from llmlab._validate_attention import as_dropout, as_flag, as_size
from llmlab.transformer import BLOCK_MLPS, NORM_KINDS, _check_heads

POSITIONS = ("learned", "rope", "none")

__all__: list[str] = []  # private: llmlab.gpt is the public face


def check_config(config) -> None:
    """Make a GPTConfig's fields plain Python ints / float / bool in place, or raise naming the fix.

    Plain values matter: a checkpoint stores the config, and weights-only loading refuses NumPy's.
    """
    for name in ("vocab_size", "block_size", "n_layer"):
        setattr(config, name, as_size(getattr(config, name), f"GPTConfig.{name}"))
    config.n_embd, config.n_head = _check_heads(config.n_embd, config.n_head)
    config.dropout = as_dropout(config.dropout, "GPTConfig.dropout")
    config.bias = as_flag(config.bias, "GPTConfig.bias")
    for name, choices in (("norm", NORM_KINDS), ("mlp", BLOCK_MLPS), ("positions", POSITIONS)):
        if getattr(config, name) not in choices:
            raise ValueError(f"GPTConfig.{name} must be one of {', '.join(map(repr, choices))}, got "
                             f"{getattr(config, name)!r}")
        setattr(config, name, str(getattr(config, name)))  # a NumPy str_ would not load weights-only
    config.qk_norm = as_flag(config.qk_norm, "GPTConfig.qk_norm")
    config.tie_weights = as_flag(config.tie_weights, "GPTConfig.tie_weights")
    if config.positions == "rope" and (config.n_embd // config.n_head) % 2:
        raise ValueError(f"positions='rope' needs an even head width, but n_embd // n_head = "
                         f"{config.n_embd // config.n_head}: RoPE rotates dimensions in pairs")


def check_finite_output(model, out: torch.Tensor, what: str) -> None:
    """Raise if out (the loss or the logits) holds NaN / inf, naming the weights that hold NaN / inf.

    One check on the output instead of one per layer: a single small tensor per forward pass.
    """
    if bool(torch.isfinite(out).all()):
        return
    bad = [n for n, p in model.named_parameters() if not bool(torch.isfinite(p).all())]
    if bad:
        raise FloatingPointError(
            f"the {what} holds NaN or inf because the model's weights do ({len(bad)} tensors: "
            f"{_first(bad, 3)}): training diverged (lower lr, or set grad_clip=1.0) or the weights "
            "came from a broken checkpoint; rebuild the model or load good weights")
    raise FloatingPointError(f"the {what} holds NaN or inf although every weight is finite: the "
                             "activations overflowed (e.g. in float16); run in float32 or bfloat16")


def _is_int_tensor(t: torch.Tensor) -> bool:
    """True for an integer (not bool) tensor."""
    return not (t.dtype == torch.bool or t.is_floating_point() or t.is_complex())


def check_idx(idx, config, device: torch.device, crop: bool = False) -> torch.Tensor:
    """Return idx as int64 (any integer dtype is accepted), or raise unless it holds (B, T) ids that fit."""
    V, block_size = config.vocab_size, config.block_size
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"idx must be a torch.Tensor of token ids, got {type(idx).__name__}: "
                        "e.g. torch.tensor([ids], dtype=torch.long)")
    if not _is_int_tensor(idx):
        raise ValueError(f"idx has dtype {idx.dtype} but token ids must be integers: use idx.long()")
    if idx.dim() != 2:
        raise ValueError(f"idx has shape {tuple(idx.shape)} but GPT expects (B, T) token ids: "
                         "for one sequence add a batch dimension with idx.unsqueeze(0)")
    if idx.shape[0] == 0 or idx.shape[1] == 0:
        raise ValueError(f"idx has shape {tuple(idx.shape)}: it needs at least one sequence of at "
                         "least one token (to generate from nothing, start from e.g. a newline)")
    if idx.device != device:
        raise ValueError(f"idx is on {idx.device} but the model is on {device}: use idx.to({str(device)!r})")
    bad = (idx < 0) | (idx >= V)  # (B, T)
    if bad.any():
        b, t = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"idx[{b}, {t}] = {int(idx[b, t])} is not a token id in [0, vocab_size={V}) "
                         f"({int(bad.sum())} such ids): encode text with the model's tokenizer, or "
                         "build the model with a vocab_size that covers it")
    if not crop and idx.shape[1] > block_size:
        raise ValueError(f"idx has T={idx.shape[1]} tokens but the model's block_size is {block_size}: "
                         f"crop the input (e.g. idx[:, -{block_size}:]) or build the model with a "
                         "larger block_size")
    return idx.long()  # nn.Embedding takes int64 (or int32) ids only; .long() of int64 is free


def check_targets(idx: torch.Tensor, targets, vocab_size: int) -> torch.Tensor:
    """Return targets as int64, or raise unless they are integer ids shaped like idx (-100 = ignore)."""
    if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
        got = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets has shape {got} but idx has shape {tuple(idx.shape)}: give one "
                         "target per position (usually idx shifted left by one token)")
    if not _is_int_tensor(targets):
        raise ValueError(f"targets has dtype {targets.dtype} but must hold token ids: use targets.long()")
    bad = ((targets < 0) | (targets >= vocab_size)) & (targets != -100)  # (B, T)
    if bad.any():
        b, t = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"targets[{b}, {t}] = {int(targets[b, t])} is not a token id in "
                         f"[0, vocab_size={vocab_size}) (use -100 to ignore a position)")
    if bool((targets == -100).all()):
        raise ValueError("every target is -100 (ignored), so the mean loss would be 0 / 0 = NaN: keep at "
                         "least one real target per batch (drop batches that are all padding)")
    return targets.long()  # cross_entropy takes int64 class ids


def check_count(n) -> int:
    """Return n as an int >= 0 (the number of tokens to generate), or raise."""
    try:
        if isinstance(n, bool):
            raise TypeError
        n = operator.index(n)
    except TypeError:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {n!r}") from None
    if n < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {n}")
    return n


def check_gpt2_keys(got: Mapping[str, torch.Tensor], expected: Mapping[str, tuple], config) -> None:
    """Raise one error listing every missing, unexpected and wrongly shaped key of a GPT-2 dict."""
    missing = sorted(set(expected) - set(got) - {"lm_head.weight"})  # tied to wte: optional
    unexpected = sorted(set(got) - set(expected))
    wrong = [f"{n}: {tuple(got[n].shape)} in the dict, {expected[n]} in the model"
             for n in expected if n in got and tuple(got[n].shape) != expected[n]]
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(items)}): {_first(items)}" for label, items in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong))
                 if items]
        raise ValueError("the state dict does not fit this model's GPTConfig. " + "; ".join(parts)
                         + f". This model: {config}. The dict {_config_hint(got)}: build the model "
                         "with the dict's config (GPT.from_config_dict) before loading")


def _first(items: list[str], n: int = 6) -> str:
    """The first n items joined by commas, and how many more there are."""
    more = f", ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _config_hint(sd: Mapping[str, torch.Tensor]) -> str:
    """What the shapes in a GPT-2-layout dict say about its config (n_head cannot be read off)."""
    wte, wpe = sd.get("transformer.wte.weight"), sd.get("transformer.wpe.weight")
    if wte is None or wpe is None or wte.dim() != 2 or wpe.dim() != 2:
        return "lacks transformer.wte.weight / transformer.wpe.weight, so it may not be a GPT at all"
    layers = {n.split(".")[2] for n in sd if n.startswith("transformer.h.")}
    return (f"has vocab_size={wte.shape[0]}, block_size={wpe.shape[0]}, n_layer={len(layers)}, "
            f"n_embd={wte.shape[1]}, bias={'transformer.ln_f.bias' in sd} (n_head is not in the shapes)")
