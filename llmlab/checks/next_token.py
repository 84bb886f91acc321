"""Checkers for lesson 02 (predicting the next token): smoothing, cross-entropy, temperature + top-k.

Each checker runs the learner's function on a few cases (edge cases included), compares with a
reference computed here, and when the answer is wrong names the typical mistake it looks like.
"""
from __future__ import annotations

import random
from types import MappingProxyType

import torch
import torch.nn.functional as F

from ._core import Verdict, call_safely, distinct_sizes, failed, fresh_seed, passed, unchanged

__all__ = ["check_counts_to_probs", "check_cross_entropy_from_logits",
           "check_temperature_top_k"]

_TOL = MappingProxyType({"rtol": 1e-4, "atol": 1e-6})  # read-only on purpose


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _to_tensor(result):
    """The learner's result as a float64 tensor, or None if it is not array-like numbers."""
    try:
        if isinstance(result, torch.Tensor):
            return result.detach().cpu().double()
        return torch.as_tensor(result, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when a and b have the same shape and (finite or not) values within tolerance."""
    return a.shape == b.shape and bool(torch.allclose(a, b, equal_nan=False, **_TOL))


def _fmt(t: torch.Tensor) -> str:
    """A short printout of a small tensor for a hint."""
    return str([round(v, 4) for v in t.flatten().tolist()[:8]])


# ---------------------------------------------------------------------------------------------
# Exercise 1: counts -> probabilities with add-k smoothing

_EX1 = "counts_to_probs"


def _counts_cases():
    """(counts, k) cases: small hand-made tables, a table with an empty row, float counts."""
    gen = torch.Generator().manual_seed(2)
    random_counts = torch.randint(0, 5, (6, 6), generator=gen)               # (6, 6)
    random_counts[random_counts == 1] = 0  # some zeros, so smoothing visibly matters
    return [
        (torch.tensor([[2, 0, 1], [0, 0, 3], [1, 1, 1]]), 1.0),
        (torch.tensor([[2, 0, 1], [0, 4, 3], [1, 1, 1]]), 0.0),             # no smoothing
        (random_counts, 0.5),                                              # k other than 1
        (torch.tensor([[3, 1, 0, 0], [0, 0, 0, 0], [1, 0, 2, 5], [0, 7, 0, 1]]), 1.0),  # empty row
        (torch.tensor([[1.5, 0.5], [0.0, 2.0]]), 2.0),                     # float counts
        _random_counts(),                                                  # a fresh size each time
    ]


def _random_counts():
    """(counts, k) of a vocabulary size and smoothing drawn afresh on every check."""
    V, seed = distinct_sizes((7, 40))[0], fresh_seed()
    counts = torch.randint(0, 6, (V, V), generator=torch.Generator().manual_seed(seed))  # (V, V)
    counts[counts < 3] = 0  # about half zeros, so smoothing visibly matters
    return counts, random.SystemRandom().choice([0.1, 0.25, 1.0, 3.0])


def _counts_reference(counts: torch.Tensor, k: float) -> torch.Tensor:
    """(counts + k) / row totals of (counts + k), as float64."""
    table = counts.double() + k                                             # (V, V)
    return table / table.sum(dim=1, keepdim=True)


def _diagnose_counts(got: torch.Tensor, counts: torch.Tensor, k: float) -> str:
    """A hint naming the mistake that explains got, if we recognise it."""
    c = counts.double()                                                     # (V, V)
    V = c.shape[0]
    want = _counts_reference(c, k)
    case = f"(for counts={c.long().tolist() if (c == c.round()).all() else c.tolist()}, k={k})"
    if torch.isnan(got).any():
        return (f"your table contains NaN {case}. A row with no counts gives 0 / 0 unless k is "
                "added *before* dividing: P = (counts + k) / (row total of counts + V * k).")
    if (got == got.round()).all() and not (want == want.round()).all():
        return (f"every value you returned is a whole number {case}: that looks like integer "
                "division (//) or an integer dtype. Use true division (/) so you get fractions.")
    rows, cols = got.sum(dim=1), got.sum(dim=0)                             # (V,), (V,)
    ones = torch.ones(V, dtype=torch.float64)
    if torch.allclose(cols, ones, **_TOL) and not torch.allclose(rows, ones, **_TOL):
        return (f"your columns sum to 1 but your rows do not {case}. Row i holds the next-token "
                "distribution after token i, so normalise along dim=1: "
                "table.sum(dim=1, keepdim=True).")
    with torch.no_grad():
        plain = c / c.sum(dim=1, keepdim=True)                              # (V, V), maybe NaN
    if k > 0 and _close(got, plain):
        return (f"your result ignores k {case}: you normalised the raw counts. Add k to every "
                "count first, so pairs never seen get a small probability instead of 0.")
    after = plain + k
    if k > 0 and (_close(got, after) or _close(got, after / after.sum(dim=1, keepdim=True))):
        return (f"you added k after normalising {case}. Smoothing adds k to the *counts*, then "
                "you divide each row by its new total: (counts + k) / (row total + V * k).")
    if k > 0 and _close(got, (c + k) / c.sum(dim=1, keepdim=True)):
        return (f"you added k to the counts but divided by the row totals of the raw counts "
                f"{case}, so rows sum to more than 1. The denominator must grow by V * k "
                "too: divide by (counts + k).sum(dim=1, keepdim=True).")
    if _close(got, (c + k) / (c + k).sum()):
        return (f"you divided by the total of the whole table {case}. Each row is its own "
                "distribution: divide by that row's total (sum over dim=1, keepdim=True).")
    if k != 1 and _close(got, _counts_reference(c, 1.0)):
        return f"your answer matches k = 1, but this case asked for k = {k} {case}: use the k argument."
    if torch.allclose(rows, ones, **_TOL):
        return (f"your rows sum to 1 but the values differ from the expected ones {case}: "
                f"got {_fmt(got)}, expected {_fmt(want)}. "
                "P(next = j | prev = i) = (counts[i, j] + k) / (sum over j of counts[i, j] + V * k).")
    return (f"wrong values {case}: got {_fmt(got)}, expected {_fmt(want)}. Each row should be "
            "(counts[i] + k) divided by its own total, and sum to 1.")


def check_counts_to_probs(counts_to_probs) -> Verdict:
    """Check counts_to_probs(counts, k) -> (V, V) table of P(next | prev) with add-k smoothing."""
    for counts, k in _counts_cases():
        given = counts.clone()
        result, error = call_safely(_EX1, counts_to_probs, given, k)
        if error is not None:
            return error
        if not torch.equal(given, counts):
            return failed(_EX1, "your function changed the counts table it was given (e.g. "
                                "counts += k). Build a new tensor instead (counts + k), so the "
                                "caller's counts stay the true counts.")
        got = _to_tensor(result)
        if got is None:
            return failed(_EX1, f"return a tensor of probabilities, got {type(result).__name__}.")
        if got.shape != counts.shape:
            return failed(_EX1, f"for a counts table of shape {tuple(counts.shape)} you returned "
                                f"shape {tuple(got.shape)}: return one probability per entry, "
                                "same shape as counts.")
        if not _close(got, _counts_reference(counts, k)):
            return failed(_EX1, _diagnose_counts(got, counts, k))
    return passed(_EX1, "every row is a proper distribution, smoothed with add-k. "
                        "This is exactly CountBigram(counts, smoothing=k).probs.")


# ---------------------------------------------------------------------------------------------
# Exercise 2: cross-entropy from logits


_EX2 = "cross_entropy_from_logits"


_HUGE_CASE = 3  # the index of the case with logits near +-1000 in _ce_cases()


def _ce_cases():
    """(logits (N, V), targets (N,)) cases: random, one row, uniform, very large logits."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=gen) * 2                           # (6, 5)
    targets = torch.randint(0, 5, (6,), generator=gen)                      # (6,)
    return [
        (logits, targets),
        (torch.tensor([[0.5, -1.0, 2.0, 0.0]]), torch.tensor([3])),         # N = 1
        (torch.zeros(4, 10), torch.tensor([0, 3, 9, 9])),                   # uniform: ln 10
        (torch.tensor([[1000.0, 1001.0, 999.0], [-1000.0, -999.0, -1001.0]]),
         torch.tensor([1, 0])),                                             # overflow trap
        _random_ce(),                                                      # a fresh size each time
    ]


def _random_ce():
    """(logits (N, V), targets (N,)) of sizes drawn afresh on every check."""
    N, V = distinct_sizes((2, 30), (3, 70))
    gen = torch.Generator().manual_seed(fresh_seed())
    return torch.randn(N, V, generator=gen) * 3, torch.randint(0, V, (N,), generator=gen)


def _ce_reference(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[target], computed stably in float64."""
    logp = F.log_softmax(logits.double(), dim=-1)                           # (N, V)
    return -logp[torch.arange(len(targets)), targets].mean()


def _diagnose_ce(got: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                 huge: bool) -> str:
    """A hint naming the mistake that explains got, if we recognise it."""
    z = logits.double()                                                     # (N, V)
    N = len(targets)
    rows = torch.arange(N)
    want = _ce_reference(z, targets)
    case = f"(for logits of shape {tuple(z.shape)})"
    if not torch.isfinite(got).all():
        if huge:
            return ("your function works for ordinary logits but returns inf/NaN for large ones "
                    "like [1000, 1001, 999]: exp(1000) overflows. Subtract each row's maximum "
                    "before exponentiating (it does not change softmax), or use "
                    "torch.log_softmax / torch.logsumexp.")
        return (f"you returned {got.item() if got.numel() == 1 else 'non-finite values'} {case}. "
                "Logits can be negative, so log(logits) is NaN: turn logits into probabilities "
                "with softmax first, then take the log of the target's probability.")
    probs = torch.softmax(z, dim=-1)                                        # (N, V)
    picked_p = probs[rows, targets]                                         # (N,)
    candidates = [
        (-want, "your loss has the wrong sign: log-probabilities are <= 0, so the loss is "
                "their *negative* mean, a number >= 0."),
        (want * N, f"you summed over the {N} examples; the loss is the *mean* over examples, "
                   "so it does not grow with the batch size."),
        (picked_p.mean(), "you averaged the target probabilities themselves. Cross-entropy "
                          "averages -log(probability): take the log."),
        (-picked_p.mean(), "you averaged -probability. Cross-entropy averages "
                           "-log(probability): take the log of the softmax output."),
        (-z[rows, targets].mean(), "you treated the logits as log-probabilities. Logits are "
                                   "unnormalised: subtract log(sum(exp(logits))) of the row (or "
                                   "use log_softmax) before picking the target's entry."),
        (-torch.log_softmax(z, dim=0)[rows, targets].mean(),
         "you applied softmax along the wrong dimension (over the examples). Each row is one "
         "prediction over the vocabulary: use dim=-1."),
        (-torch.log_softmax(z, dim=-1)[:, targets].mean(),
         "logp[:, targets] picks an (N, N) block, every target for every row. Pick one entry per "
         "row: logp[torch.arange(N), targets]."),
    ]
    if got.numel() == 1:
        value = got.reshape(())
        for expected, hint in candidates:
            if torch.allclose(value, expected, **_TOL):
                return f"{hint} {case}"
    return (f"wrong value {case}: got {_fmt(got)}, expected {want.item():.4f}. The loss is the "
            "mean over rows of -log softmax(logits)[row, target].")


def check_cross_entropy_from_logits(cross_entropy_from_logits) -> Verdict:
    """Check cross_entropy_from_logits(logits (N, V), targets (N,)) -> mean negative log-likelihood."""
    for i, (logits, targets) in enumerate(_ce_cases()):
        given = {"logits": logits.clone(), "targets": targets.clone()}
        result, error = call_safely(_EX2, cross_entropy_from_logits, *given.values())
        if error is None:
            error = unchanged(_EX2, {"logits": logits, "targets": targets}, given)
            if error is not None:
                return error
        if error is not None:
            if i == _HUGE_CASE:  # only the huge-logit case broke: say why
                return failed(_EX2, error.message + " This case has huge logits like "
                              "[1000, 1001, 999]: subtract each row's maximum before exp.")
            return error
        got = _to_tensor(result)
        if got is None:
            return failed(_EX2, f"return the loss as a number (a 0-d tensor or a float), got "
                                f"{type(result).__name__}.")
        if got.numel() == len(targets) and len(targets) > 1:
            return failed(_EX2, f"you returned {got.numel()} numbers, one per example. The loss "
                                "is a single number: take the mean over the examples.")
        if got.numel() != 1:
            return failed(_EX2, f"you returned a tensor of shape {tuple(got.shape)}; the loss is "
                                "a single number (the mean over the examples).")
        want = _ce_reference(logits, targets)
        if not (torch.isfinite(got).all() and torch.allclose(got.reshape(()), want, **_TOL)):
            return failed(_EX2, _diagnose_ce(got, logits, targets, huge=(i == _HUGE_CASE)))
    return passed(_EX2, "the mean negative log-likelihood, and stable for huge logits too. "
                        "It agrees with llmlab.lm.cross_entropy and F.cross_entropy.")


# ---------------------------------------------------------------------------------------------
# Exercise 3: temperature, then top-k, as probabilities


_EX3 = "apply_temperature_and_top_k"
_LOGITS = (2.0, 1.0, 0.5, -1.0, 3.0, 0.0)  # no ties, so top-k is unambiguous


def _tk_cases():
    """(logits (V,), temperature, k) cases: plain softmax, each knob alone, k=1, k > V."""
    logits = torch.tensor(_LOGITS)                                          # (6,)
    return [
        (logits, 1.0, None),
        (logits, 0.5, None),
        (logits, 2.0, 3),
        (logits, 1.0, 1),
        (logits, 0.7, 10),             # k larger than the vocabulary keeps every token
        (torch.tensor([0.3, -2.0, 1.7, 1.2, 0.9]), 1.5, 2),
        _random_tk(),                                                      # a fresh size each time
    ]


def _random_tk():
    """(logits (V,), temperature, k) with V, k and the temperature drawn afresh on every check."""
    V, k = distinct_sizes((8, 60), (2, 7))
    pick = random.SystemRandom()
    logits = torch.randn(V, generator=torch.Generator().manual_seed(fresh_seed())) * 2  # (V,)
    return logits, pick.choice([0.3, 0.6, 1.3, 2.5]), k


def _tk_reference(logits: torch.Tensor, temperature: float, k) -> torch.Tensor:
    """softmax(logits / T) restricted to the k largest logits and renormalised (float64)."""
    z = logits.double() / temperature                                       # (V,)
    if k is not None and k < len(z):
        keep = torch.zeros_like(z, dtype=torch.bool)
        keep[torch.topk(z, k).indices] = True
        z = z.masked_fill(~keep, float("-inf"))
    return torch.softmax(z, dim=-1)


def _diagnose_tk(got: torch.Tensor, logits: torch.Tensor, T: float, k) -> str:
    """A hint naming the mistake that explains got, if we recognise it."""
    z = logits.double()                                                     # (V,)
    V = len(z)
    k_eff = V if k is None else min(k, V)
    want = _tk_reference(z, T, k)
    case = f"(for temperature={T}, k={k}, logits={z.tolist()})"
    if torch.isnan(got).any() or torch.isinf(got).any() or (got < 0).any():
        return (f"you returned {_fmt(got)} {case}: those are not probabilities (-inf, NaN or "
                "negative entries). Apply softmax after masking, so excluded tokens get exactly 0.")
    top = torch.zeros(V, dtype=torch.bool)
    top[torch.topk(z, k_eff).indices] = True                                # (V,)
    bottom = torch.zeros(V, dtype=torch.bool)
    bottom[torch.topk(z, k_eff, largest=False).indices] = True
    support = got > 1e-12
    if k_eff < V and torch.equal(support, bottom) and not torch.equal(bottom, top):
        return (f"you kept the k *smallest* logits {case}. top-k keeps the k most likely tokens: "
                "torch.topk(logits, k) returns the largest by default.")
    plain = torch.softmax(z / T, dim=-1)                                    # (V,)
    if k_eff < V and _close(got, plain * top):
        return (f"your kept probabilities sum to {float(got.sum()):.3f}, not 1 {case}. After "
                "removing tokens, renormalise: divide the survivors by their total (or set the "
                "removed logits to -inf *before* softmax).")
    if T != 1 and _close(got, _tk_reference(z, 1.0 / T, k)):
        return (f"you multiplied the logits by the temperature {case}. Divide instead: "
                "logits / T, so T < 1 sharpens and T > 1 flattens the distribution.")
    if T != 1 and _close(got, _tk_reference(z, 1.0, k)):
        return (f"your temperature has no effect {case}. Divide the *logits* by T before softmax; "
                "dividing the probabilities by T and renormalising changes nothing.")
    if T != 1 and _close(got, _tk_reference(z, 1.0, k) / T):
        return (f"your probabilities sum to {float(got.sum()):.3f} {case}: you divided the "
                "probabilities by T after softmax. Divide the logits by T, then apply softmax.")
    if k_eff < V and int(support.sum()) == V and torch.allclose(got.sum(), torch.ones((), dtype=got.dtype), **_TOL):
        return (f"every token still has a probability above 0 {case}. If you set the removed "
                "logits to 0, note exp(0) = 1: set them to float('-inf') so exp gives exactly 0.")
    if int(support.sum()) != k_eff:
        return (f"you kept {int(support.sum())} tokens {case}; top-k with k={k} should keep "
                f"{k_eff} (all of them when k is None or k >= the vocabulary size).")
    return (f"wrong probabilities {case}: got {_fmt(got)}, expected {_fmt(want)}. Divide the "
            "logits by T, set all but the k largest to -inf, then softmax.")


def check_temperature_top_k(apply_temperature_and_top_k) -> Verdict:
    """Check apply_temperature_and_top_k(logits (V,), temperature, k) -> probabilities (V,)."""
    for logits, T, k in _tk_cases():
        given = logits.clone()
        result, error = call_safely(_EX3, apply_temperature_and_top_k, given, T, k)
        if error is None:
            error = unchanged(_EX3, {"logits": logits}, {"logits": given})
            if error is not None:
                return error
        if error is not None:
            if k is None:
                return failed(_EX3, error.message + " (This case passed k=None, which means "
                                                    "'no top-k filter: keep every token'.)")
            if k > len(logits):
                return failed(_EX3, error.message + f" (This case passed k={k}, more than the "
                                                    f"{len(logits)} tokens: keep them all, e.g. "
                                                    "use min(k, len(logits)).)")
            return error
        got = _to_tensor(result)
        if got is None:
            return failed(_EX3, f"return a tensor of probabilities, got {type(result).__name__}.")
        if got.shape != logits.shape:
            return failed(_EX3, f"for logits of shape {tuple(logits.shape)} you returned shape "
                                f"{tuple(got.shape)}: return one probability per token.")
        if not _close(got, _tk_reference(logits, T, k)):
            return failed(_EX3, _diagnose_tk(got, logits, T, k))
    return passed(_EX3, "temperature rescales the logits, top-k keeps the k likeliest tokens, "
                        "and the survivors are renormalised, as llmlab.lm.next_token_probs does.")
