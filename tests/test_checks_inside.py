"""Tests for llmlab.checks.inside (lesson 09): each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import fails_with, load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.scale import gpt2_config, kv_cache_bytes

solution = load_solutions("09_inside_and_beyond")


_fails_with = fails_with


# --- kv_cache_bytes -----------------------------------------------------------------------------

def test_kv_cache_accepts_the_solution_and_the_package():
    assert checks.check_kv_cache_bytes(solution.kv_cache_bytes).passed
    assert checks.check_kv_cache_bytes(lambda c, t, b, n: kv_cache_bytes(c, t, b, n)).passed


def test_kv_cache_pass_message_quotes_gpt2_small_correctly():
    verdict = checks.check_kv_cache_bytes(solution.kv_cache_bytes)
    assert kv_cache_bytes(gpt2_config("small"), 1024) == 75_497_472  # 75.5 MB, as the message says
    assert "75.5 MB" in verdict.message


@pytest.mark.parametrize("answer, words", [
    (lambda c, t, b, n: c.n_layer * c.n_embd * t * b * n, ["keeps both", "multiply by 2"]),
    (lambda c, t, b, n: 2 * c.n_embd * t * b * n, ["multiply by n_layer"]),
    (lambda c, t, b, n: 2 * c.n_layer * c.n_embd * t * b, ["numbers, not bytes"]),
    (lambda c, t, b, n: 2 * c.n_layer * c.n_embd * t * n, ["multiply by batch"]),
    (lambda c, t, b, n: 2 * c.n_layer * c.n_head * c.n_embd * t * b * n, ["n_head as well"]),
    (lambda c, t, b, n: 2 * c.n_layer * (c.n_embd // c.n_head) * t * b * n, ["counted one head"]),
    (lambda c, t, b, n: 2 * c.n_layer * c.n_embd * c.block_size * b * n, ["block_size"]),
    (lambda c, t, b, n: 3 * c.n_layer * c.n_embd * t * b * n, ["a key and a value"]),
    (lambda c, t, b, n: None, ["forget a `return`"]),
    (lambda c, t, b, n: 2 * c.n_layer * c.n_embd * t * b * n / 1e6, ["not KiB or MB"]),  # never whole
    (lambda c, t, b, n: c.n_layer * c.n_embd * t * n, ["a key and a value"]),  # two factors missing
])
def test_kv_cache_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_kv_cache_bytes, answer, words)


def test_kv_cache_answer_that_raises_gets_a_verdict():
    verdict = checks.check_kv_cache_bytes(lambda c, t, b, n: c.n_kv)
    assert not verdict.passed and "AttributeError" in verdict.message


# --- induction_pattern --------------------------------------------------------------------------

def _pattern(ids, shift=1, diagonal=-1, causal=True):
    T = len(ids)
    p = torch.zeros(T, T, dtype=torch.bool)
    if shift == 1:
        p[:, 1:] = ids[:, None] == ids[None, :-1]
    elif shift == 0:
        p = ids[:, None] == ids[None, :]
    else:
        p[:, :-1] = ids[:, None] == ids[None, 1:]
    return p & torch.ones(T, T, dtype=torch.bool).tril(diagonal) if causal else p


def _shifted_query(ids):
    T = len(ids)
    p = torch.zeros(T, T, dtype=torch.bool)
    p[1:] = ids[:-1, None] == ids[None, :]
    return p & torch.ones(T, T, dtype=torch.bool).tril(-1)


def test_induction_pattern_accepts_the_solution_and_a_loop():
    assert checks.check_induction_pattern(solution.induction_pattern).passed

    def loop(ids):
        T = len(ids)
        return torch.tensor([[j >= 1 and j < i and bool(ids[j - 1] == ids[i]) for j in range(T)]
                             for i in range(T)])
    assert checks.check_induction_pattern(loop).passed


@pytest.mark.parametrize("answer, words", [
    (lambda ids: _pattern(ids, shift=0), ["same-token head", "one step further"]),
    (lambda ids: _pattern(ids, shift=-1), ["key before each copy"]),
    (lambda ids: _pattern(ids, causal=False), ["later token", "tril"]),
    (lambda ids: _pattern(ids, diagonal=0), ["query itself", "j < i"]),
    (lambda ids: _pattern(ids).float(), ["dtype", "bool"]),
    (lambda ids: _pattern(ids)[:-1], ["(T, T)"]),
    (lambda ids: _pattern(ids).tolist(), ["bool tensor", "got a list"]),
    (lambda ids: _pattern(ids).T.contiguous(), ["transposed"]),
    (lambda ids: _shifted_query(ids), ["token before the query", "ids[j - 1] == ids[i]"]),
    (lambda ids: torch.zeros(len(ids), len(ids), dtype=torch.bool), ["should be True"]),
])
def test_induction_pattern_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_induction_pattern, answer, words)


def test_induction_pattern_wrapping_around_to_key_0_is_named():
    def rolled(ids):  # torch.roll brings the last token in front of key 0
        T = len(ids)
        p = ids[:, None] == torch.roll(ids, 1)[None, :]
        return p & torch.ones(T, T, dtype=torch.bool).tril(-1)
    verdict = checks.check_induction_pattern(rolled)
    # key 0 then "follows" the last token, so the last query (holding that token) always marks it
    assert not verdict.passed and "key 0" in verdict.message


def test_induction_pattern_catches_an_answer_that_changes_its_input():
    def sorts(tokens):
        out = solution.induction_pattern(tokens.clone())
        tokens.zero_()
        return out
    verdict = checks.check_induction_pattern(sorts)
    assert not verdict.passed and "in place" in verdict.message and "`tokens`" in verdict.message


# --- ablate_head --------------------------------------------------------------------------------

def test_ablate_head_accepts_the_solution_and_a_slice():
    assert checks.check_ablate_head(solution.ablate_head).passed

    def sliced(y, head, n_head):
        hd = y.shape[-1] // n_head
        out = y.clone()
        out[..., head * hd:(head + 1) * hd] = 0
        return out
    assert checks.check_ablate_head(sliced).passed


def _zero(y, cols):
    out = y.clone()
    out[..., cols] = 0
    return out


@pytest.mark.parametrize("answer, words", [
    (lambda y, h, H: _zero(y, slice(h, None, H)), ["every n_head-th column", "side by side"]),
    (lambda y, h, H: y - _zero(y, slice(h * (y.shape[-1] // H), (h + 1) * (y.shape[-1] // H))),
     ["kept only the head"]),
    (lambda y, h, H: y.clone(), ["nothing was switched off"]),
    (lambda y, h, H: solution.ablate_head(y, h, H).view(*y.shape[:2], H, -1), ["view it back"]),
    (lambda y, h, H: solution.ablate_head(y, h, H)[:, :, :-1], ["keep y's shape"]),
    (lambda y, h, H: solution.ablate_head(y, h, H) * 2, ["nothing else changed"]),
    (lambda y, h, H: None, ["forget a `return`"]),
])
def test_ablate_head_mistakes_get_specific_hints(answer, words):
    _fails_with(checks.check_ablate_head, answer, words)


def test_ablate_head_wrong_head_is_named():
    def next_one(y, head, n_head):
        return solution.ablate_head(y, (head + 1) % n_head, n_head)
    verdict = checks.check_ablate_head(next_one)
    assert not verdict.passed and ("instead of head" in verdict.message
                                   or "nothing else changed" in verdict.message)


def test_ablate_head_catches_the_in_place_answer():
    def in_place(y, head, n_head):
        hd = y.shape[-1] // n_head
        y[..., head * hd:(head + 1) * hd] = 0  # spoils the caller's activations
        return y
    verdict = checks.check_ablate_head(in_place)
    assert not verdict.passed and "assigning into y[...]" in verdict.message
    assert "y.clone()" in verdict.message

    def through_a_view(y, head, n_head):
        B, T, C = y.shape
        heads = y.view(B, T, n_head, C // n_head)  # no clone: a view shares y's numbers
        heads[:, :, head] = 0
        return heads.view(B, T, C)
    verdict = checks.check_ablate_head(through_a_view)
    assert not verdict.passed and ".view of y" in verdict.message
