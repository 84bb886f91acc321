"""Checkers for lesson 08 (encoder-decoder): the source padding mask, shift right, one beam step.

Each checker draws fresh random sizes and ids on every call (so no answer can be memorised, and a
special id such as pad 0 or BOS 1 cannot be hard-coded), compares the learner's result with a
reference computed here, catches answers that change their input in place, and when the answer is
wrong names the typical mistake it looks like.
"""
from __future__ import annotations

import random

import torch

from ._core import Verdict, call_unchanged, close, distinct_sizes, failed, passed

__all__ = ["check_source_padding_mask", "check_shift_right", "check_beam_step"]


def _as_tensor(value):
    """The learner's result if it is a tensor (its dtype is part of the answer), else None.

    A list or NumPy array is refused: the model feeds these results to torch operations.
    """
    return value.detach() if isinstance(value, torch.Tensor) else None


def _ids(pick: random.Random, B: int, T: int, V: int, avoid: int) -> torch.Tensor:
    """Random token ids (B, T) in 0..V-1 that never equal `avoid` (the pad or BOS id)."""
    gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
    ids = torch.randint(V - 1, (B, T), generator=gen)
    return ids + (ids >= avoid).long()  # skip over `avoid`: real tokens are never mistaken for it


# --- exercise: the encoder's padding mask -------------------------------------------------------

def _mask_cases(pick: random.Random) -> list[tuple[torch.Tensor, int]]:
    """(src, pad_id) right-padded batches; the two cases differ in every size and in the pad id."""
    B1, T1, B2, T2 = distinct_sizes((3, 6), (7, 12), (3, 6), (7, 12))  # B != T: axes cannot mix
    V = pick.randint(20, 60)
    pad1 = pick.randrange(V)
    pad2 = pick.choice([p for p in range(1, V) if p != pad1])  # never 0: a hard-coded 0 fails
    cases = []
    for B, T, pad in ((B1, T1, pad1), (B2, T2, pad2)):
        lengths = [pick.randint(1, T) for _ in range(B)]
        full, single = pick.sample(range(B), 2)
        lengths[full], lengths[single] = T, 1  # a row with no padding, and a one-token row
        real = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # (B, T)
        src = torch.where(real, _ids(pick, B, T, V, pad), pad)
        if pad != 0:
            src[full, 0] = 0  # a real token 0, so `src != 0` is not simply all True
        cases.append((src, pad))
    return cases


def check_source_padding_mask(mask_fn) -> Verdict:
    """Check source_padding_mask(src, pad_id): src (B, T) ids -> bool (B, 1, 1, T), True = real."""
    ex = "source_padding_mask(src, pad_id)"
    for src, pad_id in _mask_cases(random.SystemRandom()):
        B, T = src.shape
        want = (src != pad_id)[:, None, None, :]  # (B, 1, 1, T)
        result, verdict = call_unchanged(ex, mask_fn, src, pad_id)
        if verdict is not None:
            return verdict
        got = _as_tensor(result)
        if got is None:
            return failed(ex, f"return a bool tensor of shape (B, 1, 1, T), got "
                              f"{type(result).__name__}. Did you forget a `return`?")
        case = f"For src of shape (B, T) = {(B, T)} and pad_id = {pad_id}"
        if got.shape == (B, T):
            return failed(ex, f"{case} your mask has shape (B, T). The attention scores are "
                              "(B, H, T_q, T), and broadcasting lines a (B, T) mask up with the "
                              "last two axes, so B would meet the query axis: index with "
                              "[:, None, None, :] to get (B, 1, 1, T).")
        if got.shape in ((B, 1, T, 1), (B, T, 1, 1)):
            return failed(ex, f"{case} your mask has shape {tuple(got.shape)}: wrong axis, the "
                              "source positions are the keys, and keys are the last axis of the "
                              "scores (B, H, T_q, T). Use [:, None, None, :] for (B, 1, 1, T).")
        if got.shape != (B, 1, 1, T):
            return failed(ex, f"{case} the mask should have shape (B, 1, 1, T) = {(B, 1, 1, T)}, "
                              f"got {tuple(got.shape)}: index with [:, None, None, :].")
        if got.dtype != torch.bool:
            if torch.equal(got.double(), want.double()):
                what = "the pattern is right, but"
            elif torch.equal(got.double().isneginf(), ~want):
                what = "that is an additive mask (0 / -inf), but this exercise wants a bool one:"
            else:
                what = "the mask should be bool (True = a real token), but"
            return failed(ex, f"{what} yours has dtype {got.dtype}: compare with != to get a bool "
                              "tensor, src != pad_id, which masked_fill and ~ expect.")
        if torch.equal(got, want):
            continue
        if torch.equal(got, ~want):
            return failed(ex, f"{case} the mask is inverted: True on the padding. True means "
                              "'may attend', so mark the real tokens: src != pad_id.")
        if got.all():
            return failed(ex, f"{case} nothing is masked: the padding is True too. Mark only the "
                              "real tokens: src != pad_id.")
        if pad_id != 0 and torch.equal(got, (src != 0)[:, None, None, :]):
            return failed(ex, f"{case} your mask treats id 0 as the padding: the pad id is "
                              "hard-coded as 0. Tokenizers pick their own pad id: compare with "
                              "the pad_id argument.")
        return failed(ex, f"{case} wrong mask: entry [b, 0, 0, j] should be True exactly when "
                          "src[b, j] != pad_id.")
    return passed(ex, "every decoder query may read every real source token, and none of the "
                      "padding. llmlab.attention.padding_mask builds the same mask from lengths.")


# --- exercise: shift the targets right (teacher forcing) -----------------------------------------

def _shift_cases(pick: random.Random) -> list[tuple[torch.Tensor, int]]:
    """(tgt, bos_id): sizes all differ; BOS ids differ and are never 0 or 1, nor a token of tgt."""
    B1, T1, B2, T2 = distinct_sizes((2, 5), (6, 12), (2, 5), (6, 12))
    V = pick.randint(20, 60)
    bos1, bos2 = pick.sample(range(2, V), 2)
    return [(_ids(pick, B, T, V, bos), bos) for B, T, bos in ((B1, T1, bos1), (B2, T2, bos2))]


def check_shift_right(shift_fn) -> Verdict:
    """Check shift_right(tgt, bos_id): (B, T) -> (B, T), bos_id then tgt[:, :-1] in every row."""
    ex = "shift_right(tgt, bos_id)"
    for tgt, bos in _shift_cases(random.SystemRandom()):
        B, T = tgt.shape
        bos_col = torch.full((B, 1), bos)
        want = torch.cat([bos_col, tgt[:, :-1]], dim=1).double()  # (B, T)
        result, verdict = call_unchanged(ex, shift_fn, tgt, bos)
        if verdict is not None:
            return verdict
        got = _as_tensor(result)
        if got is None:
            return failed(ex, f"return a tensor of token ids of shape (B, T), got "
                              f"{type(result).__name__}. Did you forget a `return`?")
        case = f"For tgt of shape (B, T) = {(B, T)} and bos_id = {bos}"
        g = got.double()
        if got.shape == (B, T + 1):
            kept = torch.equal(g, torch.cat([bos_col, tgt], dim=1).double())
            why = ": BOS is prepended but the last token is still there" if kept else ""
            return failed(ex, f"{case} the result has T + 1 = {T + 1} columns{why}. The decoder "
                              "input is as long as the target, so drop the last column, "
                              "tgt[:, :-1]: the last token is only ever predicted.")
        if got.shape == (B, T - 1) and torch.equal(g, tgt[:, 1:].double()):
            return failed(ex, f"{case} you shifted left (tgt[:, 1:]). The decoder input is the "
                              "target shifted right: bos_id first, then tgt[:, :-1], so position "
                              "t reads the tokens before t and predicts tgt[:, t].")
        if got.shape != (B, T):
            return failed(ex, f"{case} the result should have shape (B, T) = {(B, T)}, like "
                              f"tgt; yours has {tuple(got.shape)}.")
        if torch.equal(g, want):
            if got.dtype != torch.int64:
                return failed(ex, f"the ids are right, but their dtype is {got.dtype}: token ids "
                                  "must be int64 (torch.long), like tgt, for the embedding. "
                                  "Build the BOS column with the same dtype as tgt: "
                                  "torch.full((B, 1), bos_id, dtype=tgt.dtype).")
            continue
        if torch.equal(g, tgt.roll(1, dims=1).double()):
            return failed(ex, f"{case} torch.roll wraps around: the last target token lands in "
                              "column 0, where bos_id belongs. Build bos_id + tgt[:, :-1] with "
                              "torch.cat, or set column 0 of the rolled copy to bos_id.")
        if torch.equal(g, tgt.roll(1).double()):  # no dims: rolls the flattened tensor
            return failed(ex, f"{case} torch.roll without dims rolls the flattened tensor, so "
                              "tokens move between rows, and the last one wraps into column 0. "
                              "Build bos_id + tgt[:, :-1] with torch.cat along dim=1 instead.")
        if torch.equal(g[:, :-1], tgt[:, 1:].double()):
            return failed(ex, f"{case} you shifted left: column t holds tgt[:, t + 1], the label "
                              "to predict. The decoder input is shifted right: bos_id, then "
                              "tgt[:, :-1].")
        if torch.equal(g[:, 1:], want[:, 1:]):
            held = f"{int(g[0, 0])}" if (g[:, 0] == g[0, 0]).all() else "other ids"
            return failed(ex, f"{case} columns 1..T-1 are right, but column 0 holds {held}, not "
                              "bos_id. Every row must start with the bos_id argument, the token "
                              "that tells the decoder to begin (don't hard-code an id).")
        return failed(ex, f"{case} wrong ids: row b should be [bos_id, tgt[b, 0], ..., "
                          "tgt[b, T-2]], that is torch.cat([bos column, tgt[:, :-1]], dim=1).")
    return passed(ex, "in one pass the decoder sees every target prefix, starting from BOS, and "
                      "learns the next token at each position: teacher forcing.")


# --- exercise: one step of beam search ------------------------------------------------------------

def _top(total: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference: the n best of the K*V candidates, best first, as (scores, beam, token)."""
    values, flat = total.flatten().topk(n)  # (n,) each: topk sorts, best first
    return values, flat // total.shape[1], flat % total.shape[1]


def _pairs(beam: torch.Tensor, token: torch.Tensor) -> list[tuple[int, int]]:
    return list(zip(beam.tolist(), token.tolist()))  # [(beam, token), ...]


def _picks(total: torch.Tensor, n: int) -> list[tuple[int, int]]:
    """The (beam, token) pairs of the n best candidates of `total` (K, V), best first."""
    return _pairs(*_top(total, n)[1:])


def _per_beam(total: torch.Tensor, n: int) -> set[tuple[int, int]]:
    """What keeping the best n // K of each beam picks (the beams never compete)."""
    best = total.topk(n // total.shape[0], dim=1).indices  # (K, n // K)
    return {(k, v) for k, row in enumerate(best.tolist()) for v in row}


def _beam_cases(pick: random.Random) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """(scores, log_probs, beam_size): more candidates kept than beams, then at most as many,
    then the first step (one beam of score 0); redrawn until the typical mistakes show."""
    cases = []
    for kind in ("more", "fewer", "first"):  # one beam last: there a product is 0 whatever it picks
        K = 1 if kind == "first" else pick.randint(2, 5)
        V = pick.randint(max(4, K + 2), 30)  # V != K, so dividing by K instead of V shows
        n = {"first": pick.randint(2, min(V, 8)), "more": pick.randint(K + 1, min(V, K + 6)),
             "fewer": pick.randint(1, K)}[kind]
        while True:
            gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
            lp = torch.log_softmax(2 * torch.randn(K, V, generator=gen), -1)  # (K, V)
            # Beams arrive sorted best first, as the previous step returned them.
            scores = -(1 + 4 * torch.rand(K, generator=gen)).sort().values  # (K,), below 0
            scores = scores if K > 1 else torch.zeros(1)  # the first step: BOS alone, score 0
            total = scores[:, None] + lp  # (K, V)
            want = set(_picks(total, n))
            wrong = [_per_beam(total, n)] if n % K == 0 else []  # what mistakes would pick
            if kind == "more":  # (with n = 1, K = 2 the no-score pick is the right one)
                wrong += [set(_picks(lp, n)), set(_picks(scores[:, None] * lp, n))]
            if K == 1 or (all(w != want for w in wrong) and any(b for b, _ in want)):
                break  # ... and one of the best extends a beam other than beam 0
        cases.append((scores, lp, n))
    return cases


def check_beam_step(step_fn) -> Verdict:
    """Check beam_step(scores (K,), log_probs (K, V), beam_size) -> (new_scores, beam, token)."""
    ex = "beam_step(scores, log_probs, beam_size)"
    for scores, log_probs, n in _beam_cases(random.SystemRandom()):
        K, V = log_probs.shape
        total = scores[:, None] + log_probs  # (K, V): candidate (k, v) extends beam k by token v
        want_s, want_b, want_t = _top(total, n)
        result, verdict = call_unchanged(ex, step_fn, scores, log_probs, n)
        if verdict is not None:
            return verdict
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            what = (f"a {'list' if isinstance(result, list) else 'tuple'} of length {len(result)}"
                    if isinstance(result, (tuple, list)) else type(result).__name__)
            return failed(ex, f"return a tuple of three tensors (new_scores, beam_index, token), "
                              f"got {what}.")
        got = [_as_tensor(r) for r in result]
        if any(g is None for g in got):
            return failed(ex, "each of new_scores, beam_index and token should be a tensor of "
                              "shape (beam_size,), not a list or an array.")
        if got[2].is_floating_point() and not got[0].is_floating_point():
            return failed(ex, "the scores came last: return the tuple in the order (new_scores, "
                              "beam_index, token).")
        case = f"For K = {K} beams, V = {V} tokens and beam_size = {n}"
        if any(g.shape == (K, n) for g in got):
            return failed(ex, f"{case} your result has shape (K, beam_size) = {(K, n)}: the top "
                              "beam_size within each beam separately. All beams compete: flatten "
                              "the (K, V) totals to K*V candidates and take one topk over them.")
        if any(g.shape != (n,) for g in got):
            return failed(ex, f"{case} each of the three should have shape (beam_size,) = {(n,)}; "
                              f"yours are {', '.join(str(tuple(g.shape)) for g in got)}.")
        new_s, beam, token = got
        for name, g in (("beam_index", beam), ("token", token)):
            if g.dtype != torch.int64:
                return failed(ex, f"{name} has dtype {g.dtype}, but indices must be int64 "
                                  "(torch.long). From topk's flat indices i, i // V and i % V "
                                  "stay int64; i / V gives floats.")
        s, pairs, right = new_s.double(), _pairs(beam, token), _pairs(want_b, want_t)
        if close(s, want_s) and pairs == right:
            continue
        product = scores[:, None] * log_probs  # (K, V): what multiplying would rank by
        if close(s, want_s):  # the right totals, so the index arithmetic is what went wrong
            swapped = pairs == _pairs(want_t, want_b)
            swapped = " (beam_index and token are swapped)" if swapped else ""
            return failed(ex, f"{case} new_scores are right but the indices are not{swapped}: "
                              "flat index i is beam i // V, token i % V (V = log_probs.shape[1], "
                              "not K). Return them in the order (new_scores, beam_index, token).")
        if pairs == right:
            return failed(ex, f"{case} you picked the right candidates, but new_scores are not "
                              "their totals: new_scores[i] must be scores[k] + log_probs[k, v] "
                              "for the beam k and token v of candidate i (no exp, no softmax).")
        worst = _top(-total, n)[0]  # (n,) the negated n smallest totals
        if close(s, -worst) or close(s, (-worst).flip(0)):
            return failed(ex, f"{case} you kept the worst candidates: the beam_size *largest* "
                              "totals survive. topk takes the largest by default (not "
                              "largest=False); after sort, pass descending=True.")
        if K > 1 and not beam.any():
            return failed(ex, f"{case} every candidate extends beam 0: you searched only the first "
                              "beam. The other beams' continuations compete too: flatten the "
                              "(K, V) totals and take one topk over all K*V.")
        multiplied = (f"{case} you multiplied scores and log_probs, as if they were probabilities. "
                      "Log-probabilities add where probabilities multiply: a candidate's total is "
                      "scores[k] + log_probs[k, v].")
        no_score = (f"{case} you forgot to add the beam's own score: a candidate's total is "
                    "scores[k] + log_probs[k, v] (the sequence so far, plus the next token), as "
                    "in scores[:, None] + log_probs.")
        # The values say most: with one beam of score 0 these mistakes even pick the right pairs.
        if close(s, _top(product, n)[0]) and scores.any():
            return failed(ex, multiplied)
        if close(s, _top(log_probs, n)[0]):
            return failed(ex, no_score)
        if sorted(pairs) == sorted(right) and close(s.sort(descending=True).values, want_s):
            return failed(ex, f"{case} these are the right candidates, but not sorted best first: "
                              "new_scores must decrease. topk sorts for you; after sort or "
                              "argsort, pass descending=True.")
        if n % K == 0 and set(pairs) == _per_beam(total, n):
            return failed(ex, f"{case} you kept the top beam_size // K within each beam, but all "
                              "beams compete: flatten the (K, V) totals and take one topk over "
                              "all K*V.")
        if pairs == _picks(product, n) != right:  # ranked by the product, reported the sum
            return failed(ex, multiplied)
        if pairs == _picks(log_probs, n) != right:
            return failed(ex, no_score)
        return failed(ex, f"{case} wrong candidates: take the beam_size largest of scores[k] + "
                          "log_probs[k, v] over all K*V pairs, best first, with one topk on the "
                          "flattened totals.")
    return passed(ex, "the beams compete with one another for beam_size places, scored by the "
                      "log-probability of the whole sequence: one step of beam search.")
