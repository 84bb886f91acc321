"""Tests for llmlab.checks.gpt: each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.gpt import GPT

solution = load_solutions("06_mini_gpt")


# --- gpt_param_count -----------------------------------------------------------------------------

def test_param_count_accepts_counting_the_real_model():
    # Building the model and counting its tensors is a fine cross-check; so are floats like 1e3.
    assert checks.check_gpt_param_count(lambda c: GPT(c).num_parameters(non_embedding=False)).passed
    assert checks.check_gpt_param_count(lambda c: float(solution.gpt_param_count(c))).passed
    assert checks.check_gpt_param_count(lambda c: torch.tensor(solution.gpt_param_count(c))).passed


def _count(c, tied_twice=False, no_wpe=False, no_ln_f=False, one_block=False, mlp=4, no_ln=False,
           no_bias=False):
    V, T, L, C = c.vocab_size, c.block_size, c.n_layer, c.n_embd
    b = 0 if no_bias else 1
    ln = 0 if no_ln else 2 * C
    block = 2 * ln + (3 * C * C + b * 3 * C) + (C * C + b * C) + (mlp * C * C + b * mlp * C) \
        + (mlp * C * C + b * C)
    total = V * C + (0 if no_wpe else T * C) + (1 if one_block else L) * block
    total += 0 if no_ln_f else 2 * C
    return total + (V * C if tied_twice else 0)


@pytest.mark.parametrize("kwargs, words", [
    (dict(tied_twice=True), ["counted twice", "ties"]),
    (dict(no_wpe=True), ["position embeddings", "block_size"]),
    (dict(no_ln_f=True), ["final LayerNorm", "ln_f"]),
    (dict(one_block=True), ["only one block", "n_layer"]),
    (dict(mlp=1), ["MLP is too small", "4 * n_embd"]),
    (dict(no_ln=True), ["blocks' LayerNorms", "ln_1"]),
    (dict(no_ln=True, no_ln_f=True), ["blocks' LayerNorms", "Also", "final LayerNorm"]),
    (dict(no_bias=True), ["biases of the Linear layers"]),
    (dict(tied_twice=True, no_wpe=True), ["counted twice", "Also", "position embeddings"]),
])
def test_param_count_mistakes_get_specific_hints(kwargs, words):
    verdict = checks.check_gpt_param_count(lambda c: _count(c, **kwargs))
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_param_count_constant_and_unknown_answers():
    first = checks.check_gpt_param_count(lambda c: 809_856)
    assert "For GPTConfig(vocab_size=65" in first.message
    # right for the first config, then the same number again: sizes read from elsewhere
    fixed = solution.gpt_param_count(checks.gpt._param_cases()[0])
    assert "same count for different configs" in checks.check_gpt_param_count(lambda c: fixed).message
    verdict = checks.check_gpt_param_count(lambda c: solution.gpt_param_count(c) + 7)
    assert "piece by piece" in verdict.message
    assert "whole number" in checks.check_gpt_param_count(lambda c: 12.5).message


# --- crop_context --------------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, words", [
    (lambda idx, n: idx[:, :n], ["first 4 tokens", "most recent", "idx[:, -block_size:]"]),
    (lambda idx, n: idx[:, -(n - 1):] if n > 1 else idx[:, -1:], ["3 tokens, one too few"]),
    (lambda idx, n: idx[:, -(n + 1):], ["5 tokens, one too many"]),
    (lambda idx, n: idx[-n:], ["nothing was cropped", "batch axis", "dimension 1"]),
    (lambda idx, n: idx[-1:], ["batch axis", "dimension 1"]),
    (lambda idx, n: idx[:, idx.shape[1] - n:], ["shorter than the context", "negative"]),
    (lambda idx, n: idx[:, -n:].tolist(), None),  # a list of lists is fine
    (lambda idx, n: idx[:, -n:].flip(-1), ["last 4 tokens", "shape (2, 4)"]),
])
def test_crop_context_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_crop_context(wrong)
    if words is None:
        assert verdict.passed, verdict.message
        return
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


# --- previous_token_score ------------------------------------------------------------------------

@pytest.mark.parametrize("wrong, words", [
    (lambda a: torch.diagonal(a, dim1=-2, dim2=-1).mean(-1), ["main diagonal", "offset=-1"]),
    (lambda a: torch.diagonal(a, offset=1, dim1=-2, dim2=-1).mean(-1), ["above", "future", "0"]),
    (lambda a: torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).sum(-1) / a.shape[-1],
     ["divided by T = 6", "T - 1 = 5"]),
    (lambda a: torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).sum(-1), ["summed", "mean"]),
    (lambda a: torch.diagonal(a, offset=-1, dim1=-2, dim2=-1), ["5 weights", ".mean(dim=-1)"]),
    (lambda a: torch.diagonal(a, offset=-1).mean(-1), ["dimensions 0 and 1", "dim1=-2, dim2=-1"]),
    (lambda a: torch.diagonal(a, offset=-1, dim1=-2, dim2=-1).mean(), ["one score per head",
                                                                       "shape (3,)"]),
    (lambda a: a[..., 1:, 0].mean(-1), ["column 0", "first token"]),
    (lambda a: solution.previous_token_score(a) * 0.5, ["should be", "attn[..., i, i - 1]"]),
])
def test_previous_token_score_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_previous_token_score(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_previous_token_score_accepts_a_loop_and_numpy():
    def loop(a):
        T = a.shape[-1]
        return sum(a[..., i, i - 1] for i in range(1, T)) / (T - 1)
    assert checks.check_previous_token_score(loop).passed
    assert checks.check_previous_token_score(
        lambda a: solution.previous_token_score(a).numpy()).passed


def test_checks_agree_with_llmlab_heads():
    from llmlab.heads import previous_token_score
    assert checks.check_previous_token_score(previous_token_score).passed


def test_a_parameter_count_that_memorises_the_fixed_configs_fails():
    from llmlab.gpt import GPT, GPTConfig
    fixed = [GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=16),
             GPTConfig(vocab_size=50, block_size=20, n_layer=3, n_head=4, n_embd=24),
             GPTConfig(vocab_size=101, block_size=9, n_layer=5, n_head=1, n_embd=8)]
    table = {(c.vocab_size, c.block_size, c.n_layer, c.n_embd):
             GPT(c).num_parameters(non_embedding=False) for c in fixed}

    def memorised(config):
        return table.get((config.vocab_size, config.block_size, config.n_layer, config.n_embd), 0)

    verdict = checks.check_gpt_param_count(memorised)
    assert not verdict.passed and "GPTConfig(" in verdict.message


def test_previous_token_score_with_dims_swapped_is_told_about_the_dims():
    def swapped(attn):
        return torch.diagonal(attn, offset=-1, dim1=-1, dim2=-2).mean(-1)

    verdict = checks.check_previous_token_score(swapped)
    assert not verdict.passed and "dim1 and dim2 are swapped" in verdict.message


def test_crop_and_previous_token_answers_that_change_their_input_in_place_fail():
    def crop_zeroing(idx, block_size):
        out = idx[:, -block_size:].clone()
        idx.zero_()  # spoils the caller's tokens
        return out

    def score_then_overwrite(attn):
        score = torch.diagonal(attn, offset=-1, dim1=-2, dim2=-1).mean(-1).clone()
        attn.fill_(0.5)  # right score, but the caller's attention weights are spoiled
        return score

    for verdict, name in ((checks.check_crop_context(crop_zeroing), "idx"),
                          (checks.check_previous_token_score(score_then_overwrite), "attn")):
        assert not verdict.passed and f"changed its input `{name}` in place" in verdict.message
