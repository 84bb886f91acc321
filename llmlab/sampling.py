"""Choosing the next token: temperature, top-k and top-p (nucleus) filtering, sampling, greedy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab._validate_input import as_int as _as_int
from llmlab._validate_input import is_number as _is_number

__all__ = [
    "top_k_mask",
    "top_p_mask",
    "sampling_mask",
    "next_token_probs",
    "sample_next",
    "greedy_next",
]


# ---------------------------------------------------------------------------------------------
# Input checks (raised at the boundary, with the fix in the message)


def _as_logits(logits, name: str = "logits") -> torch.Tensor:
    """Return logits as a float tensor of shape (..., V), rejecting what softmax cannot handle."""
    if logits is None or isinstance(logits, (str, bytes)):
        raise TypeError(f"{name} must be a tensor of scores (..., V), got "
                        f"{type(logits).__name__}: pass the model's output logits, not text")
    try:
        logits = torch.as_tensor(logits)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor of scores (..., V), got {type(logits).__name__} "
                        f"({e})") from None
    if logits.dtype == torch.bool or logits.is_complex():
        raise ValueError(f"{name} has dtype {logits.dtype}: pass real-valued scores, one per token")
    if not logits.is_floating_point():
        logits = logits.to(torch.get_default_dtype())
    if logits.dim() == 0 or logits.shape[-1] == 0:
        raise ValueError(f"{name} has shape {tuple(logits.shape)}: it needs a last dimension of "
                         "size V >= 1 holding one score per token in the vocabulary")
    if torch.isnan(logits).any():
        raise ValueError(f"{name} contain NaN: the model produced invalid scores; check for a "
                         "division by zero or an exploding loss upstream")
    if torch.isposinf(logits).any():
        raise ValueError(f"{name} contain +inf, which makes softmax undefined; clamp them or "
                         "use -inf only to exclude tokens")
    # -inf means "never pick this token"; a row where every token is excluded has no distribution.
    if (logits == float("-inf")).all(dim=-1).any():
        raise ValueError(f"every entry of some row of {name} is -inf, so no token can be chosen; "
                         "leave at least one finite score per row")
    return logits


_TINY = torch.finfo(torch.float32).tiny  # about 1.2e-38


def _check_temperature(temperature) -> float:
    """Return temperature as a float, or raise if it is not strictly positive."""
    if not _is_number(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}. "
                         "Temperature 0 means 'always take the most likely token': use "
                         "greedy_next(logits) (an argmax) for that instead")
    if temperature < _TINY:
        # Below float32's smallest normal number the division overflows and softmax gives NaN.
        raise ValueError(f"temperature={temperature!r} is too small to divide by in float32 (the "
                         f"smallest usable is about {_TINY:.1e}); for 'always the most likely "
                         "token' use greedy decoding, greedy_next(logits), instead")
    return float(temperature)




# ---------------------------------------------------------------------------------------------
# Sampling: temperature, then top-k, then top-p (the order Hugging Face's generate uses)


def top_k_mask(logits, k: int) -> torch.Tensor:
    """Boolean mask (..., V), True for the k highest logits of each row; k > V keeps everything.

    Ties at the boundary go to the lower token id, so exactly min(k, V) tokens are kept per row.
    """
    logits = _as_logits(logits)
    try:
        k = _as_int(k, "top_k", 1)
    except ValueError as err:
        raise ValueError(f"{err} (the number of tokens to keep); pass top_k=None to switch it off") from None
    k = min(k, logits.shape[-1])  # asking for more tokens than exist simply keeps all of them
    # A stable descending sort keeps equal logits in id order: the deterministic tie-break.
    order = torch.sort(logits, dim=-1, descending=True, stable=True).indices   # (..., V)
    mask = torch.zeros_like(logits, dtype=torch.bool)                          # (..., V)
    return mask.scatter(-1, order[..., :k], True)


def top_p_mask(logits, p: float) -> torch.Tensor:
    """Boolean mask (..., V) of the nucleus: the fewest most-likely tokens with total probability >= p.

    The most likely token always survives. Tokens are taken in order of probability, ties in id
    order (lower id first), so the nucleus is unique; p = 1.0 keeps every token.
    """
    logits = _as_logits(logits)
    if not _is_number(p) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be a probability in (0, 1], got {p!r}; "
                         "pass top_p=None (or 1.0) to switch it off")
    if p >= 1.0:
        return torch.ones_like(logits, dtype=torch.bool)
    # float64 so the running total does not drift below p through rounding on large vocabularies.
    probs = F.softmax(logits.double(), dim=-1)                                  # (..., V)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    # Keep a token if the tokens strictly ahead of it have not yet reached p. The first token has
    # nothing ahead of it (mass 0 < p), so it is always kept.
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs             # (..., V)
    keep_sorted = mass_before < p                                               # (..., V)
    mask = torch.zeros_like(logits, dtype=torch.bool)
    return mask.scatter(-1, order, keep_sorted)


def _scaled(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(logits - row max) / temperature: same softmax, but no overflow when temperature is small."""
    return (logits - logits.max(dim=-1, keepdim=True).values) / temperature    # (..., V)


def sampling_mask(logits, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """Boolean mask (..., V) of the tokens that survive temperature, then top-k, then top-p.

    top_p picks its nucleus from the distribution left after top-k (renormalised).
    None switches a filter off.
    """
    logits = _as_logits(logits)
    scaled = _scaled(logits, _check_temperature(temperature))                  # (..., V)
    keep = torch.ones_like(scaled, dtype=torch.bool)                           # (..., V)
    if top_k is not None:
        # Temperature never reorders tokens, but rounding in the scaling can create ties:
        # ranking the raw logits keeps the order exact.
        keep = top_k_mask(logits, top_k)
    if top_p is not None:
        keep = keep & top_p_mask(scaled.masked_fill(~keep, float("-inf")), top_p)
    return keep


def next_token_probs(logits, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> torch.Tensor:
    """Probabilities (..., V) after temperature, top-k and top-p; excluded tokens get exactly 0.

    Temperature divides the logits (< 1 sharpens, > 1 flattens). top_k keeps the k most likely
    tokens, then top_p keeps the nucleus of what is left; the survivors are renormalised to sum
    to 1 (see sampling_mask).
    """
    logits = _as_logits(logits)
    scaled = _scaled(logits, _check_temperature(temperature))                  # (..., V)
    if top_k is not None or top_p is not None:
        keep = sampling_mask(logits, temperature, top_k, top_p)                # (..., V)
        scaled = scaled.masked_fill(~keep, float("-inf"))
    return F.softmax(scaled, dim=-1)  # exp(-inf) is exactly 0, so excluded tokens stay at 0


def sample_next(logits, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token id per row of logits (..., V); returns a LongTensor of shape (...)."""
    probs = next_token_probs(logits, temperature, top_k, top_p)                 # (..., V)
    flat = probs.reshape(-1, probs.shape[-1])                                   # (N, V)
    ids = torch.multinomial(flat, num_samples=1, generator=generator)           # (N, 1)
    return ids.view(probs.shape[:-1])                                           # (...)


def greedy_next(logits) -> torch.Tensor:
    """The most likely token id per row of logits (..., V) (temperature -> 0); ties go to the lower id."""
    return _as_logits(logits).argmax(dim=-1)                                    # (...)
