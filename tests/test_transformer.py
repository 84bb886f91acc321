"""Tests for llmlab.transformer: LayerNorm, FeedForward, Block, DecoderBlock, parameter counts."""
import math

import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

from llmlab.attention import causal_mask, padding_mask
from llmlab.transformer import (
    Block,
    BlockConfig,
    DecoderBlock,
    DecoderBlockOutput,
    FeedForward,
    LayerNorm,
    block_parameter_count,
    count_parameters,
)

TOL = dict(atol=1e-5, rtol=1e-5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- LayerNorm --------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_layernorm_matches_torch_in_values_and_gradients(bias):
    C = 16
    ours, ref = LayerNorm(C, bias=bias), nn.LayerNorm(C, bias=bias)
    with torch.no_grad():  # non-trivial gain and shift, shared by both
        ours.weight.copy_(torch.randn(C, generator=_gen(1)))
        ref.weight.copy_(ours.weight)
        if bias:
            ours.bias.copy_(torch.randn(C, generator=_gen(2)))
            ref.bias.copy_(ours.bias)
    x1 = (torch.randn(3, 5, C, generator=_gen(3)) * 4 + 2).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ours(x1), ref(x2)
    assert_close(y1, y2, **TOL)
    (y1 * torch.arange(C)).sum().backward()
    (y2 * torch.arange(C)).sum().backward()
    assert_close(x1.grad, x2.grad, **TOL)
    assert_close(ours.weight.grad, ref.weight.grad, **TOL)
    assert (ours.bias is None) == (not bias)


def test_layernorm_gives_each_token_mean_zero_and_variance_one():
    x = torch.randn(4, 7, 32, generator=_gen(4)) * 10 - 3  # (B, T, C)
    y = LayerNorm(32)(x)
    assert_close(y.mean(-1), torch.zeros(4, 7), atol=1e-5, rtol=0)
    assert_close(y.var(-1, unbiased=False), torch.ones(4, 7), atol=1e-3, rtol=0)
    flat = LayerNorm(4)(torch.full((1, 4), 3.0))  # all-equal features: eps keeps it finite
    assert torch.equal(flat, torch.zeros(1, 4))


# --- FeedForward ------------------------------------------------------------------------------

def test_feedforward_has_gpt2_names_shapes_and_tanh_gelu():
    ff = FeedForward(8).eval()
    assert {n: tuple(p.shape) for n, p in ff.named_parameters()} == {
        "c_fc.weight": (32, 8), "c_fc.bias": (32,), "c_proj.weight": (8, 32), "c_proj.bias": (8,)}
    x = torch.randn(2, 3, 8, generator=_gen(5))
    h = ff.c_fc(x)  # (B, T, 4C)
    tanh_gelu = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
    assert_close(ff(x), ff.c_proj(tanh_gelu), **TOL)
    assert ff(x).shape == (2, 3, 8)


def test_feedforward_works_on_each_position_separately():
    ff = FeedForward(8).eval()
    x = torch.randn(1, 5, 8, generator=_gen(6))
    x2 = x.clone()
    x2[:, 2] += 1.0
    changed = (ff(x) - ff(x2)).abs().amax(-1)[0]  # (T,)
    assert changed[2] > 1e-4 and torch.equal(changed[[0, 1, 3, 4]], torch.zeros(4))


# --- Block ------------------------------------------------------------------------------------

def _block(**kw):
    torch.manual_seed(0)
    return Block(BlockConfig(n_embd=32, n_head=4, **kw)).eval()


def test_block_shapes_names_and_weights():
    block = _block()
    x = torch.randn(2, 6, 32, generator=_gen(7))
    assert block(x).shape == (2, 6, 32)
    out, weights = block.with_weights(x)
    assert weights.shape == (2, 4, 6, 6)
    assert_close(weights.sum(-1), torch.ones(2, 4, 6), **TOL)
    assert (weights.masked_select(~causal_mask(6)) == 0).all()  # causal
    assert_close(out, block(x), **TOL)  # fused path == explicit path
    names = {n.rsplit(".", 1)[0] for n, _ in block.named_parameters()}
    assert names == {"ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"}


def test_block_is_causal():
    block = _block()
    x = torch.randn(1, 6, 32, generator=_gen(8))
    x2 = x.clone()
    x2[:, 4] += 3.0
    assert_close(block(x)[:, :4], block(x2)[:, :4], atol=1e-6, rtol=0)
    assert (block(x)[:, 4:] - block(x2)[:, 4:]).abs().max() > 1e-3


def _zero_projections(block):
    with torch.no_grad():
        for layer in (block.attn.c_proj, block.mlp.c_proj):
            layer.weight.zero_()
            layer.bias.zero_()


def test_residual_flag_adds_or_replaces_the_stream():
    x = torch.randn(2, 5, 32, generator=_gen(9))
    with_res, without = _block(), _block(residual=False)
    _zero_projections(with_res)
    _zero_projections(without)
    # Sublayers that output zero: with residuals the block is the identity, without it erases x.
    assert torch.equal(with_res(x), x)
    assert torch.equal(without(x), torch.zeros_like(x))


def test_norm_flag_removes_the_layernorms():
    block = _block(norm=False)
    assert isinstance(block.ln_1, nn.Identity) and isinstance(block.ln_2, nn.Identity)
    assert count_parameters(block) == block_parameter_count(32) - 4 * 32  # two gains, two shifts
    x = torch.randn(2, 5, 32, generator=_gen(10))
    assert block(x).shape == (2, 5, 32)
    assert not torch.allclose(block(x), _block()(x))


def test_a_deep_stack_without_residuals_and_norms_loses_its_gradient():
    def input_grad_norm(**kw):
        torch.manual_seed(0)
        stack = nn.Sequential(*[Block(BlockConfig(32, 4, **kw)) for _ in range(16)])
        x = torch.randn(2, 8, 32, generator=_gen(11), requires_grad=True)
        stack(x).square().mean().backward()
        return x.grad.norm().item()
    healthy = input_grad_norm()
    plain = input_grad_norm(residual=False, norm=False)
    assert plain < healthy / 100


# --- parameter counting -----------------------------------------------------------------------

@pytest.mark.parametrize("n_embd, n_head", [(8, 2), (32, 4), (48, 6), (128, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_block_parameter_formula_matches_the_count(n_embd, n_head, bias):
    block = Block(BlockConfig(n_embd, n_head, bias=bias))
    want = 12 * n_embd ** 2 + (13 * n_embd if bias else 2 * n_embd)
    assert block_parameter_count(n_embd, bias) == count_parameters(block) == want


def test_count_parameters_counts_shared_tensors_once_and_can_skip_frozen_ones():
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.weight = a.weight  # tied
    model = nn.ModuleList([a, b])
    assert count_parameters(model) == 12 + 3 + 3
    a.bias.requires_grad_(False)
    assert count_parameters(model) == 12 + 3
    assert count_parameters(model, trainable_only=False) == 18
    with pytest.raises(TypeError, match="nn.Module"):
        count_parameters(torch.zeros(3))


# --- DecoderBlock -----------------------------------------------------------------------------

def _decoder(d_context=None):
    torch.manual_seed(0)
    return DecoderBlock(BlockConfig(32, 4, d_context=d_context)).eval()


@pytest.mark.parametrize("d_context", [None, 12])
def test_decoder_block_shapes(d_context):
    block = _decoder(d_context)
    x = torch.randn(2, 5, 32, generator=_gen(12))
    enc = torch.randn(2, 7, d_context or 32, generator=_gen(13))
    out = block.with_weights(x, enc)
    assert isinstance(out, DecoderBlockOutput)
    assert out.output.shape == (2, 5, 32)
    assert out.self_attention.shape == (2, 4, 5, 5)
    assert out.cross_attention.shape == (2, 4, 5, 7)
    assert_close(out.cross_attention.sum(-1), torch.ones(2, 4, 5), **TOL)
    assert_close(block(x, enc), out.output, **TOL)  # fused path == explicit path


def test_decoder_block_reads_the_encoder_output_except_where_masked():
    block = _decoder(12)
    x = torch.randn(2, 5, 32, generator=_gen(14))
    enc = torch.randn(2, 7, 12, generator=_gen(15))
    enc2 = enc.clone()
    enc2[:, 6] += 5.0  # change the last source token
    assert (block(x, enc) - block(x, enc2)).abs().amax(-1).min() > 1e-4  # every target position sees it
    mask = padding_mask([6, 6], 7)  # the last source token is padding
    assert_close(block(x, enc, mask), block(x, enc2, mask), **TOL)
    assert (block.with_weights(x, enc, mask).cross_attention[..., 6] == 0).all()


def test_decoder_self_attention_stays_causal():
    block = _decoder()
    x = torch.randn(1, 5, 32, generator=_gen(16))
    enc = torch.randn(1, 3, 32, generator=_gen(17))
    x2 = x.clone()
    x2[:, 3] += 3.0
    assert_close(block(x, enc)[:, :3], block(x2, enc)[:, :3], atol=1e-6, rtol=0)


# --- bad input --------------------------------------------------------------------------------

def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match=r"n_embd=30 is not divisible by n_head=4.*\[1, 2, 3, 5, 6, 10, 15, 30\]"):
        BlockConfig(30, 4)
    with pytest.raises(ValueError, match="n_head must be a positive int"):
        BlockConfig(32, 0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        BlockConfig(32, 4, dropout=1.5)
    with pytest.raises(TypeError, match=r"BlockConfig.*Block\(BlockConfig\(n_embd=64, n_head=4\)\)"):
        Block(32)
    with pytest.raises(ValueError, match="n_embd must be a positive int"):
        LayerNorm(0)
    with pytest.raises(ValueError, match=r"x has shape \(2, 8\) but this LayerNorm .* n_embd=4"):
        LayerNorm(4)(torch.zeros(2, 8))
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 16\) but this block expects \(B, T, n_embd=32\)"):
        _block()(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"context has shape \(2, 7, 32\) but this layer expects \(B, T_k, 12\)"):
        _decoder(12)(torch.randn(2, 5, 32), torch.randn(2, 7, 32))


# --- bad input (issue 10) -------------------------------------------------------------------------

def test_float64_and_integer_input_to_a_float32_block_name_the_fix():
    block, x = Block(BlockConfig(8, 2)), torch.randn(2, 3, 8)
    for layer in (block, LayerNorm(8), FeedForward(8)):
        with pytest.raises(ValueError, match=r"x has dtype torch.float64.*x.float\(\)"):
            layer(x.double())
    with pytest.raises(ValueError, match=r"x has dtype torch.int64.*needs floats"):
        block(x.long())


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_embd=8, n_head=2, dropout="0.1"), r"dropout must be in \[0, 1\)"),
    (dict(n_embd=8, n_head=2, residual="no"), "residual must be True or False"),
    (dict(n_embd=8, n_head=2, norm=0), "norm must be True or False"),
    (dict(n_embd=8, n_head=2, bias=None), "bias must be True or False"),
    (dict(n_embd=8, n_head=2, d_context=4.0), "d_context must be a positive int"),
])
def test_block_config_refuses_non_numeric_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlockConfig(**kwargs)


def test_numpy_values_in_block_config_become_plain_python():
    import numpy as np
    cfg = BlockConfig(np.int64(8), np.int64(2), dropout=np.float64(0.1))
    assert (type(cfg.n_embd), type(cfg.n_head), type(cfg.dropout)) == (int, int, float)
    with pytest.raises(ValueError, match="eps must be a small positive number"):
        LayerNorm(8, eps=-1.0)
    with pytest.raises(ValueError, match="trainable_only must be True or False"):
        count_parameters(nn.Linear(2, 2), trainable_only="no")
