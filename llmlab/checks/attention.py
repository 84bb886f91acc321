"""Checkers for lesson 03: a stable softmax, attention from scratch, the causal mask, masked attention."""
from __future__ import annotations

import math
import random

import torch

from llmlab.attention import causal_mask as _causal_mask
from llmlab.attention import padding_mask as _padding_mask
from llmlab.attention import softmax as _softmax

from ._core import Verdict, call_safely, failed, passed
from ._core import unchanged as _unchanged
from ._core import as_tensor as _as_tensor
from ._core import close as _close
from ._core import randn as _randn

__all__ = ["check_softmax", "check_attention", "check_causal_mask", "check_masked_attention"]








# --- softmax ---------------------------------------------------------------------------------

def check_softmax(softmax_fn) -> Verdict:
    """Check softmax(x) over the last axis: right values, any shape, huge logits, -inf entries."""
    ex = "softmax(x)"
    cases = [("a 4×4 matrix", _randn(4, 4, seed=1, std=2.0)),
             ("a 3×5 matrix", _randn(3, 5, seed=2, std=2.0)),
             ("a vector", torch.tensor([1.0, 2.0, 3.0, 0.5])),
             ("a batch (2, 3, 4)", _randn(2, 3, 4, seed=3)),
             ("one row of huge logits", torch.tensor([[1000.0, 1001.0, 1002.0]])),
             ("rows of very different sizes",
              torch.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, -999.0, -1001.0]])),
             ("masked (-inf) entries", torch.tensor([[0.0, float("-inf"), 1.0],
                                                     [2.0, 2.0, float("-inf")]]))]
    pick = random.SystemRandom()  # and a shape drawn afresh on every check, up to 4-D
    shape = [pick.randint(2, 6) for _ in range(pick.randint(1, 4))]
    cases.append((f"a random {tuple(shape)} tensor", _randn(*shape, seed=pick.randint(0, 10**6),
                                                           std=3.0)))
    for what, x in cases:
        x_in = x.clone()
        result, verdict = call_safely(ex, softmax_fn, x_in)
        if verdict is None:
            verdict = _unchanged(ex, {"x": x}, {"x": x_in})
        if verdict is None:
            got, verdict = _as_tensor(result, ex, "softmax(x)")
        if verdict is not None:
            return verdict
        verdict = _softmax_mistake(ex, what, x.double(), got)
        if verdict is not None:
            return verdict
    return passed(ex, "stable for huge logits, exact zeros for -inf, rows sum to 1. "
                      "This is the softmax inside every attention head.")


def _softmax_mistake(ex: str, what: str, x: torch.Tensor, got: torch.Tensor) -> Verdict | None:
    """Name the mistake in one softmax result, or None if it is right."""
    want = _softmax(x, dim=-1)
    if got.shape != x.shape:
        return failed(ex, f"for {what} of shape {tuple(x.shape)} you returned shape "
                          f"{tuple(got.shape)}: softmax keeps the shape of x. Sum with "
                          "keepdim=True so the division broadcasts along each row.")
    if not torch.isfinite(got).all():
        if "huge" in what or "sizes" in what:
            per_row = "each row's own max, x.max(dim=-1, keepdim=True).values" if "sizes" in what \
                else "the max first"
            return failed(ex, f"for {what} you returned NaN/inf: exp(1000) overflows. Subtract "
                              f"{per_row}, before exp; softmax(x) = softmax(x - c) for any c.")
        return failed(ex, f"for {what} you returned NaN or inf; exp(-inf) = 0 should give a weight "
                          "of exactly 0 there. Subtract the max, then exp, then divide by the sum.")
    if _close(got, want):
        return None
    e = torch.exp(x - x.max())  # (the shift cancels in every candidate below)
    e_row = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    if x.dim() == 2 and _close(got, _softmax(x, dim=0)):
        return failed(ex, f"for {what} your columns sum to 1, not your rows: you normalised over "
                          "the wrong axis. Take the max and the sum over the last axis, dim=-1.")
    if _close(got, e / e.sum()):
        return failed(ex, f"for {what} all entries together sum to 1: sum over each row only, "
                          "e.sum(dim=-1, keepdim=True), not the whole tensor.")
    if x.dim() == 2 and x.shape[0] == x.shape[1] and any(
            _close(got, a / a.sum(dim=-1)) for a in (e_row, torch.exp(x))):
        return failed(ex, f"for {what} each column was divided by a row's sum: without keepdim=True "
                          "the sums have shape (T,) and broadcast along the wrong axis. Use "
                          "e.sum(dim=-1, keepdim=True).")
    if _close(got / got.sum(dim=-1, keepdim=True), want):
        return failed(ex, f"for {what} the values are proportional to exp(x) but the rows do not "
                          "sum to 1: divide by the row sum.")
    return failed(ex, f"for {what} the values differ from exp(x_i) / Σ_j exp(x_j) along the last "
                      "axis. Compare yours with llmlab.attention.softmax on a small example.")


# --- attention and masked attention ------------------------------------------------------------

def _pair(result, ex: str):
    """Split the learner's (output, weights) into float64 tensors, or return a failing verdict."""
    if isinstance(result, torch.Tensor) or not isinstance(result, (tuple, list)) or len(result) != 2:
        return None, None, failed(ex, "return two things, the output and the weights: "
                                      "`return weights @ v, weights`.")
    out, verdict = _as_tensor(result[0], ex, "the output")
    if verdict is None:
        w, verdict = _as_tensor(result[1], ex, "the weights")
        return out, w, verdict
    return None, None, verdict


def _effective_scale(scores: torch.Tensor, w: torch.Tensor, allowed: torch.Tensor) -> float | None:
    """The s with w = softmax(scores / s) over the allowed keys, or None if no s fits."""
    use = allowed & (w > 0)  # (..., T_q, T_k)
    n = use.sum(dim=-1, keepdim=True).clamp_min(1)
    # Within a row, log w = scores / s - const: centre both on the allowed keys and fit s.
    ds = torch.where(use, scores - (scores * use).sum(-1, keepdim=True) / n, 0.0)
    logw = torch.where(use, w.clamp_min(1e-300).log(), 0.0)
    dl = torch.where(use, logw - logw.sum(-1, keepdim=True) / n, 0.0)
    denom = float((ds * dl).sum())
    if denom <= 0:
        return None
    s = float((ds * ds).sum()) / denom
    return s if float((dl - ds / s).abs().max()) < 1e-3 else None


def _scale_hint(ex: str, s: float, shape: dict) -> Verdict:
    """A failing verdict naming what the scores were divided by instead of √d_k."""
    d_k = shape["d_k"]
    named = [(1.0, "your scores are not scaled at all"),
             (d_k, f"you divided the scores by d_k = {d_k} itself, not by its square root"),
             (math.sqrt(shape["d_v"]), "you divided by √d_v, the width of v, but the scale is "
                                       "about the width of q and k"),
             (math.sqrt(shape["T_q"]), "you divided by √T, the sequence length: for a batch "
                                       "(B, T, d_k), q.shape[1] is T, while q.shape[-1] is d_k"),
             (math.sqrt(shape["T_k"]), "you divided by √T_k, the number of keys")]
    fix = f" Here d_k = {d_k}: divide q @ kᵀ by √d_k = math.sqrt(q.shape[-1]) = {math.sqrt(d_k):.3g}."
    for value, text in named:
        if abs(s - value) < 1e-3 * value:
            return failed(ex, text + "." + fix)
    return failed(ex, f"your scores are divided by {s:.3g}." + fix + " Read d_k from q (not from "
                      "a variable elsewhere in the notebook, and not d_model).")


def _attention_mistake(ex, q, k, v, out, w, mask) -> Verdict | None:
    """Name the mistake in one (output, weights) result of (masked) attention, or None."""
    d_k, T_q, T_k, d_v = q.shape[-1], q.shape[-2], k.shape[-2], v.shape[-1]
    lead = tuple(q.shape[:-2])
    scores = q @ k.transpose(-2, -1)  # (..., T_q, T_k)
    allowed = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.expand_as(scores)
    if w.shape != scores.shape:
        return failed(ex, f"the weights should have shape (..., T_q, T_k) = {tuple(scores.shape)}, "
                          f"yours have {tuple(w.shape)}: one row per query, one column per key. "
                          "Use k.transpose(-2, -1) (not k.T, which also flips the batch axes).")
    if out.shape == scores.shape and out.shape != lead + (T_q, d_v):
        return failed(ex, "your output has the shape of the weights: you forgot V. Each query's "
                          "output is the weighted average of the values: weights @ v.")
    if mask is not None:
        w0 = torch.nan_to_num(w, nan=0.0)  # an inverted mask can leave rows with nothing to see
        if float(w0.masked_fill(allowed, 0).abs().max()) > 1e-6 \
                and float(w0.masked_fill(~allowed, 0).abs().max()) < 1e-6:
            return failed(ex, "the weights sit exactly on the masked keys: True in the mask means "
                              "*may attend*. Fill the scores where ~mask (not where mask) with -inf.")
    if not torch.isfinite(w).all():
        return failed(ex, "some weights are NaN or inf: subtract the row max inside softmax, and "
                          "check that every query may attend to at least one key.")
    if mask is not None and float(w.masked_fill(allowed, 0).abs().max()) > 1e-6:
        hidden = (~allowed).any(-1)  # (..., T_q) rows that have masked keys
        zero_filled = _softmax(scores.masked_fill(~allowed, 0.0) / math.sqrt(d_k), dim=-1)
        if _close(w, zero_filled):
            return failed(ex, "masked keys still get weight because you filled their scores with 0: "
                              "exp(0) = 1 is not nothing. Fill them with float('-inf') so they get "
                              "exactly zero weight.")
        if _close(w, _softmax(scores / math.sqrt(d_k), dim=-1)) or not hidden.any():
            return failed(ex, "the mask is not applied: masked keys still get weight. Use "
                              "scores.masked_fill(~mask, float('-inf')) before the softmax.")
        return failed(ex, "masked keys still get some weight: every score where the mask is False "
                          "must become -inf before the softmax.")
    sums = w.sum(dim=-1)  # (..., T_q)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        if w.dim() >= 2 and torch.allclose(w.sum(dim=-2), torch.ones_like(w.sum(dim=-2)), atol=1e-4):
            return failed(ex, "your columns sum to 1, not your rows: softmax ran over the wrong axis "
                              "(the queries). Each query's weights over the keys must sum to 1: "
                              "softmax(scores, dim=-1).")
        if mask is not None and _close(w, _softmax(scores / math.sqrt(d_k), dim=-1) * allowed):
            return failed(ex, "you masked after the softmax: zeroing weights leaves rows that sum to "
                              "less than 1. Apply the mask to the scores (-inf) before the softmax.")
        return failed(ex, "each query's weights should sum to 1 over the keys (dim=-1); yours do not. "
                          "Did you apply softmax to the scores?")
    s = _effective_scale(scores, w, allowed)
    if s is None:
        return failed(ex, "your weights are not softmax(q @ kᵀ / √d_k) along the keys: check that "
                          "the scores are q @ k.transpose(-2, -1) (queries times keys, not values).")
    if abs(s - math.sqrt(d_k)) > 1e-3 * math.sqrt(d_k):
        return _scale_hint(ex, s, {"d_k": d_k, "d_v": d_v, "T_q": T_q, "T_k": T_k})
    if out.shape != lead + (T_q, d_v):
        return failed(ex, f"the output should have shape (..., T_q, d_v) = {lead + (T_q, d_v)}, "
                          f"yours has {tuple(out.shape)}: multiply the weights by v.")
    want = w @ v
    if not _close(out, want, atol=1e-4):
        for name, other in (("k", k), ("q", q)):
            if other.shape[-2] == T_k and other.shape[-1] == d_v and _close(out, w @ other, 1e-4):
                return failed(ex, f"your output averages the {name} vectors: use the values, "
                                  "weights @ v.")
        return failed(ex, "the weights are right but the output is not weights @ v: each query's "
                          "output is the weighted average of the value rows.")
    return None


def _attention_cases():
    """(q, k, v) cases whose widths all differ, so each wrong scale is recognisable: a sequence,
    a batch, and a 4-D (B, H, T, d) case of sizes drawn afresh on every check (not guessable)."""
    q1, k1, v1 = _randn(3, 16, seed=10), _randn(5, 16, seed=11), _randn(5, 6, seed=12)
    q2, k2, v2 = _randn(2, 4, 9, seed=13), _randn(2, 7, 9, seed=14), _randn(2, 7, 5, seed=15)
    pick = random.SystemRandom()
    B, H, T_q, T_k = (pick.randint(2, 4), pick.randint(2, 5), pick.randint(2, 9), pick.randint(3, 11))
    d_k, d_v, seed = pick.choice([10, 12, 20, 24]), pick.randint(2, 7), pick.randint(0, 10**6)
    q3, k3 = _randn(B, H, T_q, d_k, seed=seed), _randn(B, H, T_k, d_k, seed=seed + 1)
    v3 = _randn(B, H, T_k, d_v, seed=seed + 2)
    return [(q1, k1, v1), (q2, k2, v2), (q3, k3, v3)]


def _run_attention(ex, fn, q, k, v, mask=None):
    """Call fn on copies of the inputs; return a failing verdict or None if the result is right."""
    inputs = {"q": q, "k": k, "v": v} | ({} if mask is None else {"mask": mask})
    copies = {name: t.clone() for name, t in inputs.items()}
    result, verdict = call_safely(ex, fn, *copies.values())
    if verdict is None:  # (not `verdict or ...`: a failing Verdict is falsy)
        verdict = _unchanged(ex, inputs, copies)
    if verdict is not None:
        return verdict
    out, w, verdict = _pair(result, ex)
    if verdict is not None:
        return verdict
    return _attention_mistake(ex, *(t.double() for t in (q, k, v)), out, w, mask)


def check_attention(attention_fn) -> Verdict:
    """Check attention(q, k, v) -> (output, weights) on a single sequence and on a batch."""
    ex = "attention(q, k, v)"
    for n, (q, k, v) in enumerate(_attention_cases()):
        verdict = _run_attention(ex, attention_fn, q, k, v)
        if verdict is not None and n == 1 and "raised" in verdict.message:
            return failed(ex, "it works for one sequence (T, d) but not for a batch (B, T, d): use "
                              "k.transpose(-2, -1) (not k.T) and d_k = q.shape[-1]. "
                              f"({verdict.message})")
        if verdict is not None and n == 2:
            return failed(ex, f"right for (T, d) and (B, T, d) but not for 4-D input (B, H, T, d) "
                              f"such as q of shape {tuple(q.shape)}, k {tuple(k.shape)}: transpose "
                              "the last two axes of k with k.transpose(-2, -1), not "
                              f"k.transpose(1, 2) or k.T. ({verdict.message})")
        if verdict is not None:
            return verdict
    return passed(ex, "softmax(q kᵀ / √d_k) v, right for one sequence, a batch and 4-D heads, "
                      "with d_k read from the data.")


def check_masked_attention(masked_attention_fn) -> Verdict:
    """Check masked_attention(q, k, v, mask) with True = may attend: causal, and causal & padding."""
    ex = "masked_attention(q, k, v, mask)"
    q1, k1, v1 = _randn(5, 8, seed=20), _randn(5, 8, seed=21), _randn(5, 3, seed=22)
    q2, k2, v2 = _randn(2, 6, 4, seed=23), _randn(2, 6, 4, seed=24), _randn(2, 6, 5, seed=25)
    both = _padding_mask([6, 4], 6)[:, 0] & _causal_mask(6)  # (2, 1, 6) & (6, 6) -> (2, 6, 6)
    cases = [(q1, k1, v1, _causal_mask(5)), (q2, k2, v2, both)]
    # Sizes and lengths drawn afresh on every check, so nothing can be fitted to the cases above.
    pick = random.SystemRandom()
    B, T, d_k, d_v, seed = (pick.randint(2, 4), pick.randint(3, 12), pick.randint(2, 9),
                            pick.randint(2, 7), pick.randint(0, 10**6))
    lengths = [T] + [pick.randint(1, T) for _ in range(B - 1)]
    mask = _padding_mask(lengths, T)[:, 0] & _causal_mask(T)  # (B, T, T)
    cases.append((_randn(B, T, d_k, seed=seed), _randn(B, T, d_k, seed=seed + 1),
                  _randn(B, T, d_v, seed=seed + 2), mask))
    for q, k, v, mask in cases:
        verdict = _run_attention(ex, masked_attention_fn, q, k, v, mask)
        if verdict is not None:
            return verdict
    return passed(ex, "masked keys get exactly zero weight and every row still sums to 1.")


# --- the causal mask ---------------------------------------------------------------------------

def check_causal_mask(causal_mask_fn) -> Verdict:
    """Check causal_mask(T) -> bool (T, T), True where query i may attend to key j (j <= i)."""
    ex = "causal_mask(T)"
    # Fixed sizes, then one drawn afresh each time: a table built for a few sizes cannot pass.
    for T in (4, 7, 1, random.SystemRandom().randint(9, 40)):
        result, verdict = call_safely(ex, causal_mask_fn, T)
        if verdict is not None:
            return verdict
        try:
            got = torch.as_tensor(result)
        except (TypeError, ValueError, RuntimeError):
            return failed(ex, f"causal_mask({T}) returned {type(result).__name__}; return a bool "
                              "tensor of shape (T, T).")
        want = _causal_mask(T)
        if got.shape != (T, T):
            return failed(ex, f"causal_mask({T}) has shape {tuple(got.shape)}; it should be "
                              f"(T, T) = ({T}, {T}): one row per query, one column per key.")
        if got.dtype != torch.bool:
            if torch.equal(got.double(), want.double()):
                return failed(ex, "right pattern, but the mask should be bool (True = may attend) so "
                                  "that ~mask and masked_fill work: add .bool() or dtype=torch.bool.")
            if torch.equal(got.double().isneginf(), ~want):
                return failed(ex, "that is an additive mask (0 / -inf). This exercise wants a bool "
                                  "mask: True where query i may attend to key j, i.e. j <= i.")
            return failed(ex, f"causal_mask({T}) has dtype {got.dtype}; return a bool tensor with "
                              "True where query i (row) may attend to key j (column), j <= i.")
        if torch.equal(got, want):
            continue
        ones = torch.ones(T, T, dtype=torch.bool)
        if torch.equal(got, ones.triu(1)):
            return failed(ex, "you marked the future (j > i) as True, but True means *may attend*: "
                              "keep the present and the past instead, torch.tril(...).")
        if torch.equal(got, ones.triu(0)):
            return failed(ex, "wrong triangle: row i is query i, and it may see keys j <= i, which "
                              "is the lower triangle (torch.tril), not the upper one.")
        if torch.equal(got, ones.tril(-1)):
            return failed(ex, "the diagonal is False, so a token cannot attend to itself (and the "
                              "first token sees nothing at all). Include the diagonal: "
                              "torch.tril(torch.ones(T, T)).bool().")
        if got.all():
            return failed(ex, "nothing is masked: every query sees the future. Keep only j <= i.")
        return failed(ex, f"causal_mask({T}) is not the lower triangle: query i may attend to "
                          "keys 0..i (itself and the past) and nothing after.")
    return passed(ex, "lower triangle, diagonal included: every token sees itself and the past.")
