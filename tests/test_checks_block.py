"""Tests for llmlab.checks.block: each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.transformer import Block, BlockConfig, LayerNorm

solution = load_solutions("05_the_transformer_block")


# --- layer_norm --------------------------------------------------------------------------------

def _ln(dim=-1, unbiased=False, eps_used=True, eps_inside=True, gain=True, bias=True, centre=True,
        keepdim=True, fixed_eps=None):
    """layer_norm with one deliberate mistake."""
    def layer_norm(x, g, b, eps):
        e = fixed_eps if fixed_eps is not None else (eps if eps_used else 0.0)
        mean = x.mean(dim=dim, keepdim=keepdim)
        var = x.var(dim=dim, keepdim=keepdim, unbiased=unbiased)
        denom = torch.sqrt(var + e) if eps_inside else torch.sqrt(var) + e
        y = ((x - mean) if centre else x) / denom
        return y * (g if gain else 1.0) + (b if bias else 0.0)
    return layer_norm


@pytest.mark.parametrize("wrong, words", [
    (_ln(dim=0), ["batch axis", "dim=-1"]),
    (_ln(dim=1), ["time axis", "dim=-1"]),
    (_ln(unbiased=True), ["unbiased", "C - 1", "unbiased=False"]),
    (lambda x, g, b, eps: (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) ** 2 + eps)
     ** 0.5 * g + b, ["unbiased", "x.std()"]),
    (_ln(fixed_eps=1e-5), ["eps you are given", "1e-5"]),
    (_ln(eps_used=False), ["eps you are given", "inside the square root"]),
    (_ln(eps_inside=False), ["sqrt(var + eps), not sqrt(var) + eps"]),
    (_ln(gain=False, bias=False), ["not yet scaled and shifted", "x_hat * gain + bias"]),
    (_ln(bias=False), ["bias is missing"]),
    (_ln(gain=False), ["gain is missing"]),
    (_ln(centre=False), ["subtract the mean"]),
    (_ln(keepdim=False), ["keepdim=True"]),
    (lambda x, g, b, eps: ((x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True,
                                                                             unbiased=False) + eps)
                           + b) * g, ["scale first, then shift"]),
    (lambda x, g, b, eps: solution.layer_norm(x, g, b, eps)[..., 0], ["shape of x"]),
    (lambda x, g, b, eps: solution.layer_norm(x, g, b, eps) * 1.1,
     ["(x - mean) / sqrt(var + eps)"]),
])
def test_layer_norm_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_layer_norm(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_layer_norm_without_eps_on_a_constant_token_names_eps():
    """A learner who only drops eps for the constant token still gets the eps hint (nan there)."""
    def layer_norm(x, g, b, eps):
        mean = x.mean(-1, keepdim=True)
        var = x.var(-1, keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + (eps if eps > 1e-3 else 0.0)) * g + b
    verdict = checks.check_layer_norm(layer_norm)
    assert not verdict.passed
    assert "nan" in verdict.message and "eps" in verdict.message, verdict.message


def test_layer_norm_accepts_the_library_and_torch():
    def via_torch(x, g, b, eps):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], g, b, eps)
    assert checks.check_layer_norm(via_torch).passed

    def via_llmlab(x, g, b, eps):
        ln = LayerNorm(x.shape[-1], eps=eps)
        with torch.no_grad():
            ln.weight.copy_(g)
            ln.bias.copy_(b)
        return ln(x)
    assert checks.check_layer_norm(via_llmlab).passed


def test_layer_norm_in_place_change_is_named():
    def in_place(x, g, b, eps):
        x -= x.mean(-1, keepdim=True)
        return x / torch.sqrt(x.var(-1, keepdim=True, unbiased=False) + eps) * g + b
    verdict = checks.check_layer_norm(in_place)
    assert not verdict.passed
    assert "in place" in verdict.message


# --- block_forward -----------------------------------------------------------------------------

def _post_norm(x, ln_1, attn, ln_2, mlp):
    x = ln_1(x + attn(x))
    return ln_2(x + mlp(x))


def _no_residual(x, ln_1, attn, ln_2, mlp):
    x = attn(ln_1(x))
    return mlp(ln_2(x))


def _normalised_stream(x, ln_1, attn, ln_2, mlp):
    x = ln_1(x)
    x = x + attn(x)
    x = ln_2(x)
    return x + mlp(x)


def _parallel(x, ln_1, attn, ln_2, mlp):
    return x + attn(ln_1(x)) + mlp(ln_2(x))


def _in_place(x, ln_1, attn, ln_2, mlp):
    x += attn(ln_1(x))
    x += mlp(ln_2(x))
    return x


@pytest.mark.parametrize("wrong, words", [
    (_post_norm, ["post-norm", "2017", "x = x + attn(ln_1(x))"]),
    (_no_residual, ["residual additions are missing"]),
    (lambda x, l1, a, l2, m: m(l2(x + a(l1(x)))), ["around the MLP is missing"]),
    (lambda x, l1, a, l2, m: (lambda h: h + m(l2(h)))(a(l1(x))), ["around attention is missing"]),
    (_normalised_stream, ["normalised the residual stream"]),
    (_parallel, ["*after* attention's update"]),
    (lambda x, l1, a, l2, m: solution.block_forward(x, l2, m, l1, a), ["wrong order"]),
    (lambda x, l1, a, l2, m: solution.block_forward(x, l2, a, l1, m), ["swapped"]),
    (lambda x, l1, a, l2, m: solution.block_forward(x, l1, a, l1, m), ["ln_1 twice"]),
    (lambda x, l1, a, l2, m: l2(solution.block_forward(x, l1, a, l2, m)),
     ["should not be normalised"]),
    (_in_place, ["in place", "x = x + ..."]),
    (lambda x, l1, a, l2, m: solution.block_forward(x, l1, a, l2, m)[:, -1], ["shape of x"]),
    (lambda x, l1, a, l2, m: x + a(l1(x)), ["is not x + attn(ln_1(x))"]),
])
def test_block_forward_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_block_forward(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_block_forward_agrees_with_the_library_block():
    """The solution, given a Block's own sublayers, reproduces Block.forward."""
    torch.manual_seed(0)
    block = Block(BlockConfig(n_embd=12, n_head=3)).eval()
    x = torch.randn(2, 5, 12)
    with torch.no_grad():
        ours = solution.block_forward(x, block.ln_1, lambda h: block.attn(h).output, block.ln_2,
                                      block.mlp)
        torch.testing.assert_close(ours, block(x))


# --- count_block_parameters --------------------------------------------------------------------

def _count(ln=2, attn_mats=4, mlp_mats=8, linear_biases=9, ignore_bias=False):
    """count_block_parameters with one deliberate mistake (ln = numbers per LayerNorm / C)."""
    def count(C, bias=True):
        b = 1 if (bias or ignore_bias) else 0
        ln_params = 2 * (C + b * C) if ln == 2 else (2 * C if ln == 1 else 0)
        return ln_params + (attn_mats + mlp_mats) * C * C + b * linear_biases * C
    return count


@pytest.mark.parametrize("wrong, words", [
    (_count(linear_biases=0), ["biases of the four Linear layers are missing", "9C"]),
    (_count(ln=0), ["two LayerNorms are missing"]),
    (_count(ln=1), ["gain only", "4C"]),
    (_count(attn_mats=3, linear_biases=8), ["output projection is missing"]),
    (_count(attn_mats=2, linear_biases=7), ["counted as C x C", "C x 3C"]),
    (_count(mlp_mats=2, linear_biases=6), ["not 4 times wider"]),
    (_count(linear_biases=12), ["second bias is counted as 4C"]),
    (_count(ignore_bias=True), ["ignores bias=False"]),
    (_count(linear_biases=0, ln=0), ["biases of the four Linear layers", "Also", "LayerNorms"]),
    (lambda C, bias=True: 198_272, ["same count for every width"]),
    (lambda C, bias=True: 12 * C * C + 7 * C, ["Count layer by layer"]),
    (lambda C, bias=True: C * C / 7, ["whole number"]),
])
def test_count_block_parameters_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_count_block_parameters(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_count_without_bias_mistakes():
    def no_gains(C, bias=True):
        return 12 * C * C + (13 * C if bias else 0)
    verdict = checks.check_count_block_parameters(no_gains)
    assert not verdict.passed and "LayerNorm gains are missing" in verdict.message

    def ln_biases_kept(C, bias=True):
        return 12 * C * C + (13 * C if bias else 4 * C)
    verdict = checks.check_count_block_parameters(ln_biases_kept)
    assert not verdict.passed and "LayerNorm biases are still counted" in verdict.message


def test_count_accepts_counting_a_real_block():
    from llmlab.transformer import count_parameters
    def by_building(C, bias=True):
        return count_parameters(Block(BlockConfig(n_embd=C, n_head=1, bias=bias)))
    assert checks.check_count_block_parameters(by_building).passed


def test_a_whole_layer_norm_forgotten_is_not_called_gain_only():
    def one_layer_norm(C, bias=True):
        b = 1 if bias else 0
        layer_norms = C + b * C  # only ln_1: ln_2 forgotten
        return layer_norms + (C * 3 * C + b * 3 * C) + (C * C + b * C) \
            + (C * 4 * C + b * 4 * C) + (4 * C * C + b * C)

    verdict = checks.check_count_block_parameters(one_layer_norm)
    assert not verdict.passed and "one of the two is missing" in verdict.message
