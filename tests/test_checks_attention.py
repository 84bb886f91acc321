"""Tests for llmlab.checks.attention: each checker accepts the solution and names typical mistakes."""
import math

import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks

solution = load_solutions("03_scaled_dot_product_attention")

INF = float("-inf")


def _scores(q, k, divide_by):
    return q @ k.transpose(-2, -1) / divide_by


def _attn(weights_fn):
    """Build an attention(q, k, v) from a function computing the weights."""
    def attention(q, k, v):
        w = weights_fn(q, k)
        return w @ v, w
    return attention


def _masked(weights_fn):
    def masked_attention(q, k, v, mask):
        w = weights_fn(q, k, mask)
        return w @ v, w
    return masked_attention


# --- softmax ---------------------------------------------------------------------------------

def _naive_softmax(x):
    e = torch.exp(x)
    return e / e.sum(dim=-1, keepdim=True)


def _global_max_softmax(x):
    e = torch.exp(x - x.max())
    return e / e.sum(dim=-1, keepdim=True)


def _in_place_softmax(x):
    x -= x.max(dim=-1, keepdim=True).values
    return torch.exp(x) / torch.exp(x).sum(dim=-1, keepdim=True)


def _no_keepdim_softmax(x):
    e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1)


@pytest.mark.parametrize("wrong, words", [
    (_naive_softmax, ["overflow", "max"]),
    (_global_max_softmax, ["each row's own max"]),
    (lambda x: torch.softmax(x, dim=0), ["columns sum to 1", "dim=-1"]),
    (lambda x: torch.exp(x) / torch.exp(x).sum(), ["whole tensor"]),
    (_no_keepdim_softmax, ["keepdim=True"]),
    (lambda x: torch.exp(x - x.max(dim=-1, keepdim=True).values), ["divide by the row sum"]),
    (_in_place_softmax, ["in place"]),
    (lambda x: torch.softmax(x / 2, dim=-1), ["differ"]),
    (lambda x: x.sum(dim=-1), ["keeps the shape"]),
])
def test_softmax_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_softmax(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_softmax_accepts_the_library_and_numpy_results():
    assert checks.check_softmax(lambda x: torch.softmax(x, dim=-1)).passed
    assert checks.check_softmax(lambda x: solution.softmax(x).numpy()).passed


# --- attention -------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, words", [
    (_attn(lambda q, k: torch.softmax(_scores(q, k, 1.0), -1)), ["not scaled"]),
    (_attn(lambda q, k: torch.softmax(_scores(q, k, q.shape[-1]), -1)), ["d_k = 16 itself",
                                                                         "square root"]),
    (lambda q, k, v: _attn(lambda q_, k_: torch.softmax(_scores(q_, k_, math.sqrt(v.shape[-1])),
                                                        -1))(q, k, v), ["√d_v"]),
    (_attn(lambda q, k: torch.softmax(_scores(q, k, math.sqrt(q.shape[1])), -1)),
     ["sequence length", "q.shape[-1]"]),
    (_attn(lambda q, k: torch.softmax(_scores(q, k, 2.0), -1)),    # a global d_k = 4
     ["divided by 2", "not from a variable elsewhere"]),
    (_attn(lambda q, k: torch.softmax(_scores(q, k, math.sqrt(q.shape[-1])), -2)),
     ["wrong axis", "dim=-1"]),
    (lambda q, k, v: (solution.attention(q, k, v)[1],) * 2, ["forgot V"]),
    (lambda q, k, v: solution.attention(q, k, v)[0], ["return two things"]),
    (lambda q, k, v: _attn(lambda q_, k_: torch.softmax(q_ @ k_.T / math.sqrt(q_.shape[-1]),
                                                        -1))(q, k, v), ["k.transpose(-2, -1)"]),
])
@pytest.mark.filterwarnings("ignore:The use of `x.T`")  # the k.T mistake also warns
def test_attention_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_attention(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_attention_with_q_instead_of_v_for_output():
    def uses_k(q, k, v):
        w = solution.attention(q, k, v)[1]
        return w @ k[..., : v.shape[-1]], w
    verdict = checks.check_attention(uses_k)
    assert not verdict.passed and "weights @ v" in verdict.message


def test_attention_accepts_the_library():
    from llmlab.attention import scaled_dot_product_attention
    assert checks.check_attention(scaled_dot_product_attention).passed


# --- causal mask -----------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, words", [
    (lambda T: torch.ones(T, T, dtype=torch.bool).triu(1), ["*may attend*", "tril"]),
    (lambda T: torch.ones(T, T, dtype=torch.bool).triu(), ["wrong triangle", "lower"]),
    (lambda T: torch.ones(T, T, dtype=torch.bool).tril(-1), ["itself", "diagonal"]),
    (lambda T: torch.ones(T, T).tril(), ["bool"]),
    (lambda T: torch.zeros(T, T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), INF),
     ["additive"]),
    (lambda T: torch.ones(T, T, dtype=torch.bool), ["nothing is masked"]),
    (lambda T: torch.ones(T, T + 1, dtype=torch.bool).tril(), ["shape"]),
])
def test_causal_mask_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_causal_mask(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_causal_mask_accepts_the_library():
    from llmlab.attention import causal_mask
    assert checks.check_causal_mask(causal_mask).passed


# --- masked attention ------------------------------------------------------------------------

def _scaled(q, k):
    return _scores(q, k, math.sqrt(q.shape[-1]))


@pytest.mark.parametrize("wrong, words", [
    (_masked(lambda q, k, m: torch.softmax(_scaled(q, k), -1) * m), ["after the softmax",
                                                                      "before the softmax"]),
    (_masked(lambda q, k, m: torch.softmax(_scaled(q, k).masked_fill(~m, 0.0), -1)),
     ["filled their scores with 0", "-inf"]),
    (_masked(lambda q, k, m: torch.softmax(_scaled(q, k).masked_fill(m, INF), -1)),
     ["*may attend*", "~mask"]),
    (_masked(lambda q, k, m: torch.softmax(_scaled(q, k), -1)), ["not applied"]),
    (_masked(lambda q, k, m: torch.softmax(_scores(q, k, 1.0).masked_fill(~m, INF), -1)),
     ["not scaled"]),
])
def test_masked_attention_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_masked_attention(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_masked_attention_that_spoils_the_mask_in_place_fails():
    def flips(q, k, v, mask):
        mask.logical_not_()
        return solution.masked_attention(q, k, v, ~mask)
    verdict = checks.check_masked_attention(flips)
    assert not verdict.passed and "in place" in verdict.message


def test_masked_attention_accepts_a_large_negative_fill_and_the_library():
    big_negative = _masked(lambda q, k, m: torch.softmax(_scaled(q, k).masked_fill(~m, -1e9), -1))
    assert checks.check_masked_attention(big_negative).passed
    from llmlab.attention import scaled_dot_product_attention
    assert checks.check_masked_attention(scaled_dot_product_attention).passed


def _attention_transposing_axes_1_and_2(q, k, v):
    """Wrong for 4-D input: k.transpose(1, 2) swaps heads and time when k is (B, H, T, d)."""
    kt = k.transpose(0, 1) if k.dim() == 2 else k.transpose(1, 2)
    w = torch.softmax(q @ kt / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v, w


def test_attention_that_only_works_up_to_3d_fails_on_the_4d_case():
    for _ in range(5):  # the 4-D sizes are drawn afresh each time
        verdict = checks.check_attention(_attention_transposing_axes_1_and_2)
        assert not verdict.passed and "4-D input (B, H, T, d)" in verdict.message
        assert "k.transpose(-2, -1)" in verdict.message


def _causal_mask_from_a_fixed_table(T):
    """Wrong: slices a precomputed 8 x 8 table, so T > 8 crashes (or silently truncates)."""
    table = torch.tril(torch.ones(8, 8, dtype=torch.bool))
    return table[:T, :T]


def test_causal_mask_from_a_fixed_table_fails_for_longer_sequences():
    for _ in range(5):
        verdict = checks.check_causal_mask(_causal_mask_from_a_fixed_table)
        assert not verdict.passed and "causal_mask(" in verdict.message
        assert "shape" in verdict.message  # it returned (8, 8) for a longer T
