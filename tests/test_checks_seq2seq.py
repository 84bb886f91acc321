"""Tests for llmlab.checks.seq2seq: each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import fails_with, load_solutions  # tests/_solutions.py
from llmlab import checks

solution = load_solutions("08_encoder_decoder_and_cross_attention")


_fails_with = fails_with


# --- source_padding_mask -----------------------------------------------------------------------

def test_padding_mask_accepts_the_solution_and_a_loop():
    assert checks.check_source_padding_mask(solution.source_padding_mask).passed

    def loop(src, pad_id):
        rows = [[tok != pad_id for tok in row] for row in src.tolist()]
        return torch.tensor(rows).view(src.shape[0], 1, 1, src.shape[1])
    assert checks.check_source_padding_mask(loop).passed


@pytest.mark.parametrize("answer, words", [
    (lambda s, p: s != p, ["(B, T)", "index with [:, None, None, :]"]),
    (lambda s, p: (s != p)[:, None, :, None], ["wrong axis", "keys are the last axis"]),
    (lambda s, p: (s != p)[:, :, None, None], ["wrong axis", "keys are the last axis"]),
    (lambda s, p: (s != p)[:, None, :], ["(B, 1, 1, T)"]),
    (lambda s, p: (s == p)[:, None, None, :], ["inverted", "True means 'may attend'"]),
    (lambda s, p: (s != p)[:, None, None, :].float(), ["pattern is right",
                                                       "compare with != to get a bool tensor"]),
    (lambda s, p: (s != p)[:, None, None, :].long(), ["compare with != to get a bool tensor"]),
    (lambda s, p: torch.zeros(s.shape).masked_fill(s == p, float("-inf"))[:, None, None, :],
     ["additive mask", "compare with != to get a bool tensor"]),
    (lambda s, p: (s != 0)[:, None, None, :], ["hard-coded as 0", "pad_id argument"]),
    (lambda s, p: torch.ones(s.shape[0], 1, 1, s.shape[1], dtype=torch.bool),
     ["nothing is masked"]),
    (lambda s, p: (s != p)[:, None, None, :] & (torch.rand(s.shape) < 0.5)[:, None, None, :],
     ["wrong mask"]),
    (lambda s, p: (s != p).tolist(), ["a bool tensor", "got list"]),
])
def test_padding_mask_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_source_padding_mask, answer, words)


def test_padding_mask_catches_an_answer_that_changes_its_input():
    def zeroes_the_pads(tokens, pad):  # the learner's own parameter names
        mask = (tokens != pad)[:, None, None, :]
        tokens[tokens == pad] = 0  # spoils the caller's batch (whenever pad_id is not 0)
        return mask
    verdict = checks.check_source_padding_mask(zeroes_the_pads)
    assert not verdict.passed and "in place" in verdict.message and "`tokens`" in verdict.message


def test_padding_mask_cases_have_padding_a_full_row_a_one_token_row_and_varied_pad_ids():
    seen = []

    def recording(src, pad_id):
        seen.append((src.clone(), pad_id))
        return solution.source_padding_mask(src, pad_id)
    for _ in range(5):
        assert checks.check_source_padding_mask(recording).passed
    for src, pad_id in seen:
        lengths = (src != pad_id).sum(1)
        assert lengths.max() == src.shape[1] and lengths.min() == 1
        # right padding: once a row reaches pad_id it stays there
        assert torch.equal((src != pad_id), torch.arange(src.shape[1])[None] < lengths[:, None])
    assert any(pad_id != 0 for _, pad_id in seen)
    assert len({pad_id for _, pad_id in seen}) > 2


# --- shift_right --------------------------------------------------------------------------------

def test_shift_right_accepts_the_solution_and_other_right_answers():
    assert checks.check_shift_right(solution.shift_right).passed

    def rolled_then_fixed(tgt, bos_id):
        out = tgt.roll(1, dims=1)  # a new tensor: setting its column 0 is fine
        out[:, 0] = bos_id
        return out
    assert checks.check_shift_right(rolled_then_fixed).passed
    padded = lambda t, b: torch.nn.functional.pad(t[:, :-1], (1, 0), value=b)  # noqa: E731
    assert checks.check_shift_right(padded).passed


def _bos(tgt, bos_id, dtype=None):
    return torch.full((tgt.shape[0], 1), bos_id, dtype=dtype or tgt.dtype)


@pytest.mark.parametrize("answer, words", [
    (lambda t, b: t.roll(1, dims=1), ["torch.roll", "wraps around", "column 0"]),
    (lambda t, b: torch.cat([_bos(t, b), t], 1), ["T + 1", "last token is still there",
                                                   "drop the last column, tgt[:, :-1]"]),
    (lambda t, b: torch.cat([t[:, 1:], _bos(t, b)], 1), ["shifted left"]),
    (lambda t, b: t[:, 1:], ["shifted left"]),
    (lambda t, b: torch.cat([_bos(t, 0), t[:, :-1]], 1), ["column 0 holds 0", "bos_id"]),
    (lambda t, b: torch.cat([_bos(t, 1), t[:, :-1]], 1), ["column 0 holds 1", "hard-code"]),
    (lambda t, b: torch.cat([torch.ones(t.shape[0], 1) * b, t[:, :-1]], 1),
     ["int64", "torch.full((B, 1), bos_id, dtype=tgt.dtype)"]),
    (lambda t, b: t.roll(1), ["torch.roll"]),  # when the rows' last tokens agree, dims=1's hint
    (lambda t, b: torch.cat([_bos(t, b), t[:, :-1]], 1).int(), ["int32", "dtype=tgt.dtype"]),
    (lambda t, b: t, ["wrong ids"]),
    (lambda t, b: t[:, :-1], ["should have shape (B, T)"]),
])
def test_shift_right_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_shift_right, answer, words)


def test_shift_right_catches_an_answer_that_changes_its_input():
    def in_place(targets, start):
        targets[:, 1:] = targets[:, :-1].clone()
        targets[:, 0] = start
        return targets
    verdict = checks.check_shift_right(in_place)
    assert not verdict.passed and "in place" in verdict.message and "`targets`" in verdict.message


def test_shift_right_bos_ids_vary_and_never_occur_in_the_targets():
    seen = []

    def recording(tgt, bos_id):
        seen.append((tgt.clone(), bos_id))
        return solution.shift_right(tgt, bos_id)
    for _ in range(5):
        assert checks.check_shift_right(recording).passed
    assert all(tgt.dtype == torch.int64 and not (tgt == bos).any() for tgt, bos in seen)
    assert len({bos for _, bos in seen}) > 2 and all(bos not in (0, 1) for _, bos in seen)


# --- beam_step -----------------------------------------------------------------------------------

def _flat_top(total, n):
    return total.flatten().topk(n)


def _first_beam(s, lp, n):
    values, tok = (s[:, None] + lp)[0].topk(n)
    return values, torch.zeros_like(tok), tok


def _per_beam(s, lp, n):
    values, tok = (s[:, None] + lp).topk(n, dim=1)  # (K, n): each beam's own best
    return values, torch.arange(lp.shape[0])[:, None].expand_as(tok), tok


def _worst(s, lp, n):
    values, i = (s[:, None] + lp).flatten().topk(n, largest=False)  # the n smallest totals
    return values, i // lp.shape[1], i % lp.shape[1]


def _no_score(s, lp, n):
    values, i = _flat_top(lp, n)
    return values, i // lp.shape[1], i % lp.shape[1]


def _multiplied(s, lp, n):
    values, i = _flat_top(s[:, None] * lp, n)
    return values, i // lp.shape[1], i % lp.shape[1]


def _with(indices):
    def step(s, lp, n):
        values, i = _flat_top(s[:, None] + lp, n)
        return (values, *indices(i, *lp.shape))
    return step


def test_beam_step_accepts_the_solution_and_a_loop():
    assert checks.check_beam_step(solution.beam_step).passed

    def loop(scores, log_probs, beam_size):
        K, V = log_probs.shape
        cands = sorted(((float(scores[k] + log_probs[k, v]), k, v) for k in range(K)
                        for v in range(V)), reverse=True)[:beam_size]
        return (torch.tensor([c[0] for c in cands]), torch.tensor([c[1] for c in cands]),
                torch.tensor([c[2] for c in cands]))
    assert checks.check_beam_step(loop).passed
    as_list = lambda s, lp, n: list(solution.beam_step(s, lp, n))  # noqa: E731
    assert checks.check_beam_step(as_list).passed


@pytest.mark.parametrize("answer, words", [
    (_per_beam, ["(K, beam_size)", "within each beam"]),
    (_first_beam, ["only the first beam"]),
    (_no_score, ["forgot to add the beam's own score"]),
    (_multiplied, ["multiplied", "add"]),
    (_with(lambda i, K, V: (i % V, i // V)),
     ["swapped", "flat index i is beam i // V, token i % V"]),
    (_with(lambda i, K, V: (i // K, i % K)), ["flat index i is beam i // V, token i % V"]),
    (_with(lambda i, K, V: (i % V, i % V)), ["flat index i is beam i // V, token i % V"]),
    (lambda s, lp, n: tuple(x.flip(0) for x in solution.beam_step(s, lp, n)),
     ["not sorted best first"]),
    (_with(lambda i, K, V: (i / V, i % V)), ["beam_index", "int64", "i / V gives floats"]),
    (_with(lambda i, K, V: (i // V, (i % V).float())), ["token", "int64"]),
    (lambda s, lp, n: solution.beam_step(s, lp, n)[0], ["tuple of three"]),
    (lambda s, lp, n: solution.beam_step(s, lp, n)[:2], ["tuple of three", "length 2"]),
    (lambda s, lp, n: tuple(x[:1] for x in solution.beam_step(s, lp, n)), ["shape (beam_size,)"]),
    (lambda s, lp, n: (torch.zeros(n), torch.arange(n) % len(s), torch.arange(n)),
     ["wrong candidates"]),
    (lambda s, lp, n: tuple(_worst(s, lp, n)), ["worst candidates", "largest=False"]),
    (lambda s, lp, n: tuple(x.flip(0) for x in _worst(s, lp, n)), ["worst candidates"]),
    (lambda s, lp, n: (solution.beam_step(s, lp, n)[0].exp(), *solution.beam_step(s, lp, n)[1:]),
     ["right candidates", "new_scores are not their totals"]),
    (lambda s, lp, n: (*solution.beam_step(s, lp, n)[1:], solution.beam_step(s, lp, n)[0]),
     ["the scores came last"]),
    (lambda s, lp, n: tuple(x.tolist() for x in solution.beam_step(s, lp, n)),
     ["not a list or an array"]),
])
def test_beam_step_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_beam_step, answer, words)


def test_beam_step_each_beam_keeping_its_best_token_is_caught():
    # beam_size == K: every beam extended by its own argmax is a plausible but wrong search.
    def greedy_per_beam(s, lp, n):
        total = s[:, None] + lp
        if n != lp.shape[0]:
            return solution.beam_step(s, lp, n)  # right elsewhere: only this case can catch it
        values, tok = total.max(dim=1)
        order = values.argsort(descending=True)
        return values[order], order, tok[order]
    for _ in range(60):  # the beam_size == K case is drawn in about a third of the checks
        verdict = checks.check_beam_step(greedy_per_beam)
        if not verdict.passed:
            assert "within each beam" in verdict.message, verdict.message
            return
    pytest.fail("no case with beam_size == K in 60 checks")


def test_beam_step_catches_an_answer_that_changes_its_input():
    def adds_in_place(beam_scores, lp, k):
        lp += beam_scores[:, None]  # spoils the caller's log-probabilities
        values, i = lp.flatten().topk(k)
        return values, i // lp.shape[1], i % lp.shape[1]
    verdict = checks.check_beam_step(adds_in_place)
    assert not verdict.passed and "in place" in verdict.message and "`lp`" in verdict.message


def test_beam_step_cases_include_one_beam_and_more_and_fewer_kept_than_beams():
    seen = []

    def recording(scores, log_probs, beam_size):
        seen.append((log_probs.shape, beam_size))
        return solution.beam_step(scores, log_probs, beam_size)
    for _ in range(5):
        assert checks.check_beam_step(recording).passed
    assert any(K == 1 for (K, _), _ in seen)
    assert any(n > K > 1 for (K, _), n in seen) and any(1 < K and n <= K for (K, _), n in seen)
    assert all(1 <= n <= K * V for (K, V), n in seen)


# --- fresh sizes on every call ------------------------------------------------------------------

def _fitted_to_the_first_case(right):
    """An answer that is right for the sizes of the first case it sees, and wrong elsewhere."""
    first = []

    def fitted(x, *rest):
        shapes = [tuple(a.shape) for a in (x, *rest) if isinstance(a, torch.Tensor)]
        first.append(first[0] if first else shapes)
        if shapes == first[0]:
            return right(x, *rest)
        return right(x[:1], *rest)  # as if the first size (B, or K beams) were written in
    return fitted


@pytest.mark.parametrize("check, right", [
    (checks.check_source_padding_mask, solution.source_padding_mask),
    (checks.check_shift_right, solution.shift_right),
    (checks.check_beam_step, solution.beam_step),
])
def test_an_answer_fitted_to_the_first_case_fails_and_sizes_change_between_calls(check, right):
    assert not check(_fitted_to_the_first_case(right)).passed
    calls = []

    def recording(*args):
        calls[-1].add(tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor)))
        return right(*args)
    for _ in range(6):
        calls.append(set())
        assert check(recording).passed
    # Later calls bring sizes the first call never showed (a collision on one call is allowed:
    # some tasks draw from a small range of sizes).
    assert set().union(*calls[1:]) - calls[0]
    assert sum(bool(c - calls[0]) for c in calls[1:]) >= 3
