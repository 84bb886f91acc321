"""Checkers for lesson 04: splitting and merging heads, multi-head attention, sinusoidal positions.

Each checker runs the learner's function on cases with widths that all differ (so T, n_heads and
d_k cannot be confused), compares with a reference computed here, and when the answer is wrong
names the typical mistake it looks like.
"""
from __future__ import annotations

import itertools
import math

import torch

from llmlab.attention import softmax as _softmax
from llmlab.positional import sinusoidal_encoding as _sinusoidal

from ._core import Verdict, call_safely, distinct_sizes, failed, fresh_seed, passed
from ._core import as_tensor as _as_tensor
from ._core import call_unchanged as _call_unchanged
from ._core import close as _same
from ._core import randn as _randn

__all__ = ["check_split_heads", "check_merge_heads", "check_multi_head_attention",
           "check_sinusoidal_encoding"]










# --- the reference layouts, right and wrong ----------------------------------------------------

def _split(x: torch.Tensor, H: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C // H): head h gets columns h*d_k .. (h+1)*d_k - 1 of every token."""
    B, T, C = x.shape
    return x.view(B, T, H, C // H).transpose(1, 2)  # (B, H, T, d_k)


def _split_straight(x: torch.Tensor, H: int) -> torch.Tensor:
    """The classic mistake: view (B, T, C) as (B, H, T, d_k) directly, which mixes tokens."""
    B, T, C = x.shape
    return x.reshape(B, H, T, C // H)


def _merge(y: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d_k) -> (B, T, H * d_k): each token's heads side by side again."""
    B, H, T, d = y.shape
    return y.transpose(1, 2).reshape(B, T, H * d)


def _merge_straight(y: torch.Tensor) -> torch.Tensor:
    """The classic mistake: reshape (B, H, T, d_k) to (B, T, C) without moving the heads back."""
    B, H, T, d = y.shape
    return y.reshape(B, T, H * d)


# --- exercise: split_heads ---------------------------------------------------------------------

def _split_cases():
    """(x, n_heads) with B, T, H and d_k all different, so every mix-up changes the shape."""
    B, T, H, d_k = distinct_sizes((1, 4), (5, 9), (2, 5), (6, 10))  # and a fresh one each time
    return [(_randn(2, 5, 12, seed=40), 3), (_randn(3, 4, 10, seed=41), 2),
            (_randn(1, 7, 24, seed=42), 6), (_randn(B, T, H * d_k, seed=fresh_seed()), H)]


def _split_mistake(ex: str, x: torch.Tensor, H: int, got: torch.Tensor) -> Verdict | None:
    """Name the mistake in one split_heads result, or None if it is right."""
    B, T, C = x.shape
    d_k = C // H
    want = _split(x, H)
    if _same(got, want):
        return None
    case = f"For x of shape (B, T, C) = {(B, T, C)} and n_heads = {H}"
    if _same(got, x.view(B, T, H, d_k)):
        return failed(ex, f"{case} you returned (B, T, H, d_k) = {(B, T, H, d_k)}: the split is "
                          "right, but the heads must sit next to the batch so that one matmul "
                          "attends within every head at once. Add .transpose(1, 2).")
    if _same(got, _split_straight(x, H)):
        return failed(ex, f"{case} the shape {(B, H, T, d_k)} is right but the numbers are "
                          "mixed up: viewing (B, T, C) straight as (B, H, T, d_k) cuts the memory "
                          "in the wrong places, so one 'token' of head 0 holds pieces of several "
                          "tokens. View as (B, T, n_heads, d_k) first, then .transpose(1, 2).")
    if _same(got, x.view(B, T, d_k, H).transpose(1, 2)):
        return failed(ex, f"{case} you swapped n_heads and d_k, giving shape {tuple(got.shape)}. "
                          f"There are n_heads = {H} heads of d_k = C // n_heads = {d_k} numbers "
                          "each: x.view(B, T, n_heads, C // n_heads).")
    names = ("B", "T", "n_heads", "d_k")
    for order in itertools.permutations(range(4)):  # the right split, axes in another order
        if order != (0, 2, 1, 3) and _same(got, x.view(B, T, H, d_k).permute(*order)):
            axes = ", ".join(names[i] for i in order)
            return failed(ex, f"{case} the split into (B, T, n_heads, d_k) is right, but then you "
                              f"moved the wrong axes: your result is ({axes}). Swap only T and "
                              "n_heads (axes 1 and 2) with .transpose(1, 2); e.g. .transpose(0, 2) "
                              "moves the batch axis instead.")
    if got.shape != want.shape:
        return failed(ex, f"{case} the result should have shape (B, n_heads, T, d_k) = "
                          f"{tuple(want.shape)} with d_k = C // n_heads = {d_k}; yours has "
                          f"{tuple(got.shape)}. Read B, T, C from x.shape (not from variables "
                          "elsewhere in the notebook).")
    return failed(ex, f"{case} the shape is right but the values are not where they belong: "
                      "head h of token t should hold x[b, t, h*d_k:(h+1)*d_k]. Use "
                      "x.view(B, T, n_heads, d_k).transpose(1, 2).")


def check_split_heads(split_heads_fn) -> Verdict:
    """Check split_heads(x, n_heads): (B, T, C) -> (B, n_heads, T, C // n_heads)."""
    ex = "split_heads(x, n_heads)"
    for x, H in _split_cases():
        result, verdict = _call_unchanged(ex, split_heads_fn, x, H)
        if verdict is not None and "is invalid for input of size" in verdict.message:
            B, T, C = x.shape
            return failed(ex, f"for x of shape (B, T, C) = {(B, T, C)} and n_heads = {H} your view "
                              "asks for a shape whose sizes do not multiply to B * T * C. Read B, "
                              "T, C from x.shape and use the n_heads argument (not numbers from "
                              f"elsewhere in the notebook): d_k = C // n_heads = {C // H}. "
                              f"({verdict.message})")
        if verdict is None:
            got, verdict = _as_tensor(result, ex, "split_heads(x, n_heads)")
        if verdict is None:
            verdict = _split_mistake(ex, x.double(), H, got)
        if verdict is not None:
            return verdict
    return passed(ex, "(B, T, C) -> (B, n_heads, T, d_k): every head gets its own slice of "
                      "every token, and the heads sit next to the batch.")


# --- exercise: merge_heads ---------------------------------------------------------------------

def _merge_cases():
    """(B, H, T, d_k) inputs: two contiguous (like attention's output), one a transposed view."""
    B, H, T, d_k = distinct_sizes((1, 4), (2, 5), (6, 9), (10, 13))  # and a fresh one each time
    return [_randn(2, 3, 5, 4, seed=50), _randn(1, 4, 6, 2, seed=51),
            _split(_randn(3, 7, 10, seed=52), 2), _randn(B, H, T, d_k, seed=fresh_seed())]


def check_merge_heads(merge_heads_fn) -> Verdict:
    """Check merge_heads(y): (B, n_heads, T, d_k) -> (B, T, n_heads * d_k), undoing split_heads."""
    ex = "merge_heads(y)"
    for y in _merge_cases():
        result, verdict = _call_unchanged(ex, merge_heads_fn, y)
        if verdict is not None and ("view size is not compatible" in verdict.message
                                    or "contiguous" in verdict.message):
            return failed(ex, "after .transpose(1, 2) the numbers are no longer stored in the "
                              "order (B, T, H, d_k), so .view() cannot reinterpret them and "
                              "raises. Copy them into that order first with "
                              ".transpose(1, 2).contiguous().view(B, T, C), or use .reshape(), "
                              f"which copies when it must. ({verdict.message})")
        if verdict is None:
            got, verdict = _as_tensor(result, ex, "merge_heads(y)")
        if verdict is not None:
            return verdict
        y64 = y.double()
        B, H, T, d = y.shape
        want = _merge(y64)
        if _same(got, want):
            continue
        case = f"For y of shape (B, n_heads, T, d_k) = {(B, H, T, d)}"
        if _same(got, _merge_straight(y64)):
            return failed(ex, f"{case} the shape {(B, T, H * d)} is right but the numbers are "
                              "mixed up: reshaping (B, H, T, d_k) straight to (B, T, C) glues "
                              "together rows of one head, not the heads of one token. Move the "
                              "heads back next to d_k first: y.transpose(1, 2), then reshape.")
        if _same(got, y64.permute(0, 2, 3, 1).reshape(B, T, H * d)):
            return failed(ex, f"{case} the heads' numbers are interleaved: you permuted to "
                              "(B, T, d_k, H). Each token needs head 0's d_k numbers, then head "
                              "1's, ...: permute(0, 2, 1, 3), i.e. transpose(1, 2).")
        if _same(got, y64.transpose(1, 2)):
            return failed(ex, f"{case} you returned (B, T, n_heads, d_k) = {(B, T, H, d)}: "
                              "right order, but flatten the last two axes into one of width "
                              f"n_heads * d_k = {H * d}, e.g. .reshape(B, T, H * d_k).")
        if got.shape != want.shape:
            return failed(ex, f"{case} the result should have shape (B, T, n_heads * d_k) = "
                              f"{tuple(want.shape)}; yours has {tuple(got.shape)}. Read the "
                              "sizes from y.shape.")
        return failed(ex, f"{case} the shape is right but the values are not where they belong: "
                          "out[b, t, h*d_k:(h+1)*d_k] should be y[b, h, t]. merge_heads must "
                          "undo split_heads exactly.")
    return passed(ex, "(B, n_heads, T, d_k) -> (B, T, C): the exact inverse of split_heads, for "
                      "contiguous and non-contiguous inputs.")


# --- exercise: multi-head attention ------------------------------------------------------------

def _mha(x, W_q, W_k, W_v, W_o, H, split=_split, merge=_merge, scale=None, project=True):
    """Reference multi-head attention (x @ W convention, no biases), optionally with a mistake."""
    q, k, v = (split(x @ W, H) for W in (W_q, W_k, W_v))  # (B, H, T, d_k) each
    d = q.shape[-1] if scale is None else scale
    w = _softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)  # (B, H, T, T)
    y = merge(w @ v)  # (B, T, C)
    return (y @ W_o if project else y), w


def _mha_cases():
    """(x, W_q, W_k, W_v, W_o, n_heads); weights large enough that every wrong scale shows."""
    cases = []
    B, T, H, d_k = distinct_sizes((1, 3), (4, 8), (2, 4), (5, 7))  # drawn afresh on every check
    for n, (B, T, C, H) in enumerate(((2, 5, 12, 3), (1, 6, 16, 4), (2, 3, 10, 2),
                                      (B, T, H * d_k, H))):
        seed = 60 + 10 * n if n < 3 else fresh_seed()
        x = _randn(B, T, C, seed=seed)
        Ws = [_randn(C, C, seed=seed + 1 + i, std=1.5 / math.sqrt(C)) for i in range(4)]
        cases.append((x, *Ws, H))
    return cases


def _pair(result, ex: str):
    """Split the learner's (output, weights) into float64 tensors, or return a failing verdict."""
    if isinstance(result, torch.Tensor) or not isinstance(result, (tuple, list)) or len(result) != 2:
        return None, None, failed(ex, "return two things, the output and the weights: "
                                      "`return output, weights`.")
    out, verdict = _as_tensor(result[0], ex, "the output")
    if verdict is None:
        w, verdict = _as_tensor(result[1], ex, "the weights")
        return out, w, verdict
    return None, None, verdict


def _mha_mistake(ex, x, W_q, W_k, W_v, W_o, H, out, w) -> Verdict | None:
    """Name the mistake in one multi-head attention result, or None if it is right."""
    B, T, C = x.shape
    d_k = C // H
    want_out, want_w = _mha(x, W_q, W_k, W_v, W_o, H)
    case = f"For x of shape {(B, T, C)} and n_heads = {H} (so d_k = {d_k})"
    if w.shape == (B, T, T):
        return failed(ex, f"{case} your weights have shape (B, T, T) = {(B, T, T)}: one head. "
                          "Split q, k and v into heads first, so there is one (T, T) table per "
                          f"head: (B, n_heads, T, T) = {(B, H, T, T)}.")
    if w.shape != want_w.shape:
        return failed(ex, f"{case} the weights should have shape (B, n_heads, T, T) = "
                          f"{tuple(want_w.shape)}; yours have {tuple(w.shape)}.")
    if not _same(w, want_w):
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # (T, T): key j after query i
        if T > 1 and bool((w[..., future].abs() < 1e-9).all()):
            return failed(ex, f"{case} your weights are zero above the diagonal: you applied a "
                              "causal mask. This exercise is plain multi-head self-attention, "
                              "where every query may attend to every key; leave the mask out "
                              "(section 2's causal version is what a decoder uses).")
        known = [((x, W_q, W_k, W_v, W_o, H), {"scale": C},
                  f"you divided the scores by √d_model = √{C}. Each head compares vectors of "
                  f"width d_k = C // n_heads = {d_k}, so divide by √d_k = q.shape[-1] ** 0.5 "
                  "after splitting."),
                 ((x, W_q, W_k, W_v, W_o, H), {"scale": 1.0},
                  "your scores are not scaled: divide q @ kᵀ by √d_k, as in lesson 03."),
                 ((x, W_q, W_k, W_v, W_o, H), {"split": _split_straight},
                  "the heads are split wrongly: viewing (B, T, C) straight as (B, H, T, d_k) "
                  "mixes tokens. Use your split_heads: view(B, T, H, d_k).transpose(1, 2)."),
                 ((x, W_k, W_q, W_v, W_o, H), {},
                  "queries and keys are swapped, so your weights are transposed: row i should "
                  "be query i, scores = q @ k.transpose(-2, -1) with q = x @ W_q.")]
        for args, kwargs, hint in known:
            if _same(w, _mha(*args, **kwargs)[1]):
                return failed(ex, f"{case} {hint}")
        cols = w.sum(dim=-2)  # (B, H, T)
        if torch.allclose(cols, torch.ones_like(cols), atol=1e-4):
            return failed(ex, f"{case} your columns sum to 1, not your rows: softmax over the "
                              "keys, dim=-1.")
        return failed(ex, f"{case} your weights differ from softmax(q_h k_hᵀ / √d_k) in each "
                          "head h. Split x @ W_q, x @ W_k, x @ W_v with split_heads, then "
                          "attend within each head.")
    if _same(out, want_out, atol=1e-4):
        return None
    if _same(out, _mha(x, W_q, W_k, W_v, W_o, H, project=False)[0], atol=1e-4):
        return failed(ex, f"{case} the weights are right, but the output skips the output "
                          "projection: multiply the merged heads by W_o, which lets the heads' "
                          "results mix.")
    if _same(out, _mha(x, W_q, W_k, W_v, W_o, H, merge=_merge_straight)[0], atol=1e-4):
        return failed(ex, f"{case} the weights are right, but the heads are merged wrongly: "
                          "reshaping (B, H, T, d_k) straight to (B, T, C) mixes tokens. "
                          "Use your merge_heads: transpose(1, 2), then reshape.")
    if out.shape != want_out.shape:
        return failed(ex, f"{case} the output should have shape (B, T, C) = "
                          f"{tuple(want_out.shape)}; yours has {tuple(out.shape)}. Merge the "
                          "heads (weights @ v is (B, H, T, d_k)) and apply W_o.")
    return failed(ex, f"{case} the weights are right but the output is not "
                      "merge_heads(weights @ v) @ W_o.")


def check_multi_head_attention(mha_fn) -> Verdict:
    """Check mha(x, W_q, W_k, W_v, W_o, n_heads) -> (output (B, T, C), weights (B, H, T, T))."""
    ex = "multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads)"
    for case in _mha_cases():
        result, verdict = _call_unchanged(ex, mha_fn, *case)
        if verdict is not None:
            return verdict
        out, w, verdict = _pair(result, ex)
        if verdict is None:
            verdict = _mha_mistake(ex, *(t.double() for t in case[:5]), case[5], out, w)
        if verdict is not None:
            return verdict
    return passed(ex, "project, split into heads, attend in every head with √d_k of a head, "
                      "merge, project again: this is MultiHeadAttention without the biases.")


# --- exercise: sinusoidal positions ------------------------------------------------------------

def _sin_table(T: int, d: int, start: int = 0, pair_index: bool = True, swap: bool = False,
               exponent_over: str = "d", concat: bool = False) -> torch.Tensor:
    """The sinusoidal table with one deliberate change, to recognise a learner's mistake."""
    pos = torch.arange(start, start + T, dtype=torch.float64)[:, None]  # (T, 1)
    if pair_index:  # the paper: pair i (columns 2i, 2i+1) has exponent 2i / d
        j = torch.arange(0, d, 2, dtype=torch.float64)  # (d/2,) = 2i
        if exponent_over == "i":  # the mistake: exponent i / d
            j = j / 2
        a = pos * 10000.0 ** (-j / d)  # (T, d/2)
        first, second = (torch.cos(a), torch.sin(a)) if swap else (torch.sin(a), torch.cos(a))
        if concat:
            return torch.cat([first, second], dim=-1)  # (T, d)
        return torch.stack([first, second], dim=-1).reshape(T, d)  # (T, d) interleaved
    # the mistake: every column j gets its own exponent j / d (cosines one step too slow)
    a = pos * 10000.0 ** (-torch.arange(d, dtype=torch.float64) / d)  # (T, d)
    out = torch.sin(a)
    out[:, 1::2] = torch.cos(a[:, 1::2])
    return out


def check_sinusoidal_encoding(sinusoidal_fn) -> Verdict:
    """Check sinusoidal_encoding(T, d_model): PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos."""
    ex = "sinusoidal_encoding(T, d_model)"
    mistakes = [({"swap": True}, "sine and cosine are swapped: even columns 2i hold the sine, odd "
                                 "columns 2i+1 the cosine."),
                ({"exponent_over": "i"}, "the frequencies fall too slowly: for pair i "
                                         "(columns 2i and 2i+1) the exponent is 2i / d_model, not "
                                         "i / d_model. With torch.arange(0, d_model, 2) you "
                                         "already have 2i."),
                ({"pair_index": False}, "the cosine columns use their own column index: column "
                                        "2i+1 must use the same frequency as column 2i, "
                                        "1 / 10000^(2i / d_model). Compute one angle per pair "
                                        "and take its sin and its cos."),
                ({"start": 1}, "positions start at 1; they start at 0, so row 0 is "
                               "[0, 1, 0, 1, ...] (sin 0 = 0, cos 0 = 1)."),
                ({"concat": True}, "you put all the sines first and then all the cosines. "
                                   "That layout also appears in some code bases, but this course "
                                   "follows the paper and interleaves them: sin in columns 0, 2, "
                                   "4, ..., cos in columns 1, 3, 5, ....")]
    T_random, half = distinct_sizes((5, 60), (3, 12))  # a size drawn afresh on every check
    for T, d in ((6, 8), (50, 16), (3, 4), (T_random, 2 * half)):
        result, verdict = call_safely(ex, sinusoidal_fn, T, d)
        if verdict is None:
            got, verdict = _as_tensor(result, ex, f"sinusoidal_encoding({T}, {d})")
        if verdict is not None:
            return verdict
        want = _sinusoidal(T, d).double()
        if _same(got, want):
            continue
        case = f"For T = {T}, d_model = {d}"
        if got.shape == (d, T) and T != d:
            return failed(ex, f"{case} you returned shape (d_model, T) = {(d, T)}: one row per "
                              "position, please, (T, d_model).")
        if got.shape != want.shape:
            return failed(ex, f"{case} the table should have shape (T, d_model) = {(T, d)}; yours "
                              f"has {tuple(got.shape)}.")
        for kwargs, hint in mistakes:
            if _same(got, _sin_table(T, d, **kwargs)):
                return failed(ex, f"{case} {hint}")
        bad = (got - want).abs() > 1e-4
        p, c = (int(i) for i in bad.nonzero()[0])
        fn = "sin" if c % 2 == 0 else "cos"
        return failed(ex, f"{case} the first wrong entry is PE[{p}, {c}] = {float(got[p, c]):.4f}; "
                          f"it should be {fn}({p} / 10000^({c - c % 2}/{d})) = "
                          f"{float(want[p, c]):.4f}.")
    return passed(ex, "sines in the even columns, cosines in the odd ones, frequencies "
                      "1 / 10000^(2i/d): the table of the original Transformer.")
