"""Tests for llmlab.attention: softmax, scaled dot-product attention, masks, multi-head attention."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from llmlab.attention import (
    AttentionConfig,
    AttentionOutput,
    KVCache,
    MultiHeadAttention,
    attention_steps,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    softmax,
)

NEG_INF = float("-inf")
TOL = dict(atol=1e-5, rtol=1e-5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _qkv(lead=(2,), T_q=5, T_k=7, d_k=8, d_v=6, seed=0):
    g = _gen(seed)
    return (torch.randn(*lead, T_q, d_k, generator=g), torch.randn(*lead, T_k, d_k, generator=g),
            torch.randn(*lead, T_k, d_v, generator=g))


def _random_mask(shape, seed=0):
    """A random bool mask with at least one allowed key per query row (so torch gives no NaN)."""
    mask = torch.rand(shape, generator=_gen(seed)) < 0.5
    mask[..., 0] = True
    return mask


# --- softmax ---------------------------------------------------------------------------------

def test_softmax_matches_torch_on_ordinary_logits():
    x = torch.randn(4, 9, generator=_gen())
    assert_close(softmax(x), torch.softmax(x, dim=-1))
    assert_close(softmax(x, dim=0), torch.softmax(x, dim=0))


def test_softmax_is_stable_for_huge_logits():
    p = softmax(torch.tensor([[1000.0, 1001.0], [-1000.0, -1001.0]]))
    assert torch.isfinite(p).all()
    e = 1 / (1 + math.e)
    assert_close(p, torch.tensor([[e, 1 - e], [1 - e, e]]))


def test_softmax_gives_zero_weight_to_minus_inf_and_zeros_for_an_all_minus_inf_row():
    x = torch.tensor([[0.0, NEG_INF, 0.0], [NEG_INF, NEG_INF, NEG_INF], [NEG_INF, 3.0, NEG_INF]],
                     requires_grad=True)
    p = softmax(x)
    assert_close(p, torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    (p * torch.arange(3.0)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_softmax_rejects_integer_input():
    with pytest.raises(ValueError, match=r"floating-point.*x\.float\(\)"):
        softmax(torch.tensor([1, 2, 3]))


# --- scaled dot-product attention -------------------------------------------------------------

@pytest.mark.parametrize("lead, T_q, T_k", [((), 4, 4), ((3,), 5, 7), ((2, 3), 6, 4), ((2, 2, 3), 3, 5)])
@pytest.mark.parametrize("kind", ["none", "causal", "padding", "random"])
def test_sdpa_matches_torch(lead, T_q, T_k, kind):
    q, k, v = _qkv(lead, T_q, T_k)
    if kind == "none":
        mask = None
    elif kind == "causal":
        mask = causal_mask(T_q, max(T_q, T_k))[:, :T_k]  # (T_q, T_k); never a fully masked row
    elif kind == "padding":
        # One length per batch row (the first leading dim), broadcast over the rest and the queries.
        lengths = torch.tensor([T_k - i % 3 for i in range(lead[0] if lead else 1)])
        mask = (torch.arange(T_k) < lengths[:, None]).view(*lead[:1], *[1] * max(len(lead) - 1, 0), 1, T_k)
    else:
        mask = _random_mask((*lead, T_q, T_k))
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    assert weights.shape == (*lead, T_q, T_k)
    assert_close(weights.sum(-1), torch.ones(*lead, T_q))
    if mask is not None:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_sdpa_scales_by_d_k_of_q():
    q, k, v = _qkv(d_k=4)
    _, weights = scaled_dot_product_attention(q, k, v)
    assert_close(weights, torch.softmax(q @ k.transpose(-2, -1) / 2.0, dim=-1))  # sqrt(4) = 2
    assert not torch.allclose(weights, torch.softmax(q @ k.transpose(-2, -1), dim=-1), atol=1e-3)


def test_sdpa_fully_masked_rows_give_zero_weights_and_zero_output():
    q, k, v = _qkv((2,), 4, 5)
    q.requires_grad_(True)
    mask = _random_mask((2, 4, 5))
    mask[0, 1] = False
    mask[1, 3] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.equal(weights[0, 1], torch.zeros(5)) and torch.equal(out[1, 3], torch.zeros(6))
    assert not torch.isnan(out).any()
    assert_close(weights[0, 0].sum(), torch.tensor(1.0))
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and torch.equal(q.grad[0, 1], torch.zeros(8))


def test_sdpa_returns_a_named_pair():
    result = scaled_dot_product_attention(*_qkv())
    assert isinstance(result, AttentionOutput) and len(result) == 2
    assert result.output.shape == (2, 5, 6) and result.weights.shape == (2, 5, 7)


def test_attention_steps_are_consistent_with_the_final_output():
    q, k, v = _qkv((2,), 4, 6, d_k=16)
    mask = _random_mask((2, 4, 6))
    s = attention_steps(q, k, v, mask)
    assert_close(s.scores, q @ k.transpose(-2, -1))
    assert_close(s.scaled_scores, s.scores / 4.0)  # sqrt(16)
    assert torch.equal(s.masked_scores[~mask], torch.full(((~mask).sum().item(),), NEG_INF))
    assert torch.equal(s.masked_scores[mask], s.scaled_scores[mask])
    assert_close(s.weights, torch.softmax(s.masked_scores, dim=-1))
    assert_close(s.output, s.weights @ v)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert_close(s.output, out)
    assert_close(s.weights, weights)


def test_attention_steps_without_scaling_is_sharper():
    q, k, v = _qkv(d_k=64, seed=3)
    plain, scaled = attention_steps(q, k, v, scale=False), attention_steps(q, k, v)
    assert torch.equal(plain.scaled_scores, plain.scores)
    assert_close(plain.weights, torch.softmax(plain.scores, dim=-1))
    # Unscaled scores have std ~ sqrt(d_k) = 8, so softmax is much closer to one-hot.
    assert plain.weights.amax(-1).mean() > scaled.weights.amax(-1).mean() + 0.1


# --- masks ------------------------------------------------------------------------------------

def test_causal_mask_is_lower_triangular_and_aligns_right_for_longer_keys():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    # 2 new queries after 3 cached keys: they sit at positions 3 and 4.
    assert torch.equal(causal_mask(2, 5), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
    with pytest.raises(ValueError, match=r"T_k=2 is shorter than T=3"):
        causal_mask(3, 2)
    with pytest.raises(ValueError, match="positive int"):
        causal_mask(0)


def test_padding_mask_shape_values_and_combination_with_causal():
    pad = padding_mask([3, 1], T=4)
    assert pad.shape == (2, 1, 1, 4) and pad.dtype == torch.bool
    assert pad[:, 0, 0].tolist() == [[True, True, True, False], [True, False, False, False]]
    both = pad & causal_mask(4)
    assert both.shape == (2, 1, 4, 4)
    assert both[0, 0, 3].tolist() == [True, True, True, False]  # query 3 sees keys 0..2, not padding
    assert both[1, 0, 2].tolist() == [True, False, False, False]
    assert padding_mask(torch.tensor([2, 5])).shape == (2, 1, 1, 5)  # T defaults to the longest


@pytest.mark.parametrize("lengths, T, match", [
    ([3, 5], 4, r"must lie in 0\.\.T=4"),
    ([-1, 2], 4, r"must lie in 0\.\.T=4"),
    ([1.5, 2.0], 4, "1-D sequence of ints"),
    ([[1, 2]], 4, "1-D sequence of ints"),
])
def test_padding_mask_rejects_bad_lengths(lengths, T, match):
    with pytest.raises(ValueError, match=match):
        padding_mask(lengths, T)


# --- bad input to the functions ---------------------------------------------------------------

def test_sdpa_names_mismatched_d_k():
    q, k = torch.randn(2, 5, 8), torch.randn(2, 5, 16)
    msg = r"q has shape \(2, 5, 8\) but k has shape \(2, 5, 16\): the last dimensions \(d_k\) must match"
    with pytest.raises(ValueError, match=msg):
        scaled_dot_product_attention(q, k, torch.randn(2, 5, 16))


@pytest.mark.parametrize("q, k, v, match", [
    (torch.randn(2, 5, 8), torch.randn(2, 5, 8).double(), torch.randn(2, 5, 8),
     r"q has dtype torch.float32 but k has dtype torch.float64: convert"),
    (torch.randn(2, 5, 8), torch.randn(2, 6, 8), torch.randn(2, 5, 8),
     r"k has shape \(2, 6, 8\) but v has shape \(2, 5, 8\): keys and values must have the same length T_k"),
    (torch.randn(2, 5, 8), torch.randn(3, 5, 8), torch.randn(3, 5, 8),
     r"q has shape \(2, 5, 8\) but k has shape \(3, 5, 8\): the leading"),
    (torch.randn(8), torch.randn(5, 8), torch.randn(5, 8), r"q has shape \(8,\) but needs at least 2"),
    (torch.ones(5, 8, dtype=torch.long), torch.randn(5, 8), torch.randn(5, 8), r"needs floats: use q\.float"),
])
def test_sdpa_rejects_bad_qkv(q, k, v, match):
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v)
    with pytest.raises(ValueError, match=match):
        attention_steps(q, k, v)


def test_sdpa_rejects_non_tensors_with_a_conversion_hint():
    with pytest.raises(TypeError, match=r"torch\.as_tensor"):
        scaled_dot_product_attention([[1.0]], torch.ones(1, 1), torch.ones(1, 1))


def test_sdpa_rejects_a_float_mask_and_says_how_to_convert():
    q, k, v = _qkv()
    additive = torch.zeros(5, 7).masked_fill(~causal_mask(5, 7), NEG_INF)
    with pytest.raises(ValueError, match=r"pass a bool mask where True = may attend.*mask = additive == 0"):
        scaled_dot_product_attention(q, k, v, additive)
    scaled_dot_product_attention(q, k, v, additive == 0)  # the suggested fix works


def test_sdpa_rejects_a_mask_of_the_wrong_shape_naming_both_shapes():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"mask has shape \(7, 5\) but the attention scores have shape \(2, 5, 7\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(7, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 1, 1, 7\)"):  # 4-D padding mask, 3-D q
        scaled_dot_product_attention(q, k, v, padding_mask([7, 3], 7))


# --- MultiHeadAttention -----------------------------------------------------------------------

def _pair(d_model=32, n_heads=4, bias=True, d_kv=None, seed=0):
    """Our layer and torch's, holding the same weights, both in eval mode."""
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True,
                                      kdim=d_kv, vdim=d_kv).eval()
    ours = MultiHeadAttention(AttentionConfig(d_model, n_heads, bias=bias, d_kv=d_kv)).eval()
    with torch.no_grad():
        if d_kv is None:  # torch's in_proj_weight has the same [q; k; v] row layout as c_attn
            ours.c_attn.weight.copy_(ref.in_proj_weight)
        else:
            ours.q_attn.weight.copy_(ref.q_proj_weight)
            ours.kv_attn.weight.copy_(torch.cat([ref.k_proj_weight, ref.v_proj_weight]))
        ours.c_proj.weight.copy_(ref.out_proj.weight)
        if bias:
            if d_kv is None:
                ours.c_attn.bias.copy_(ref.in_proj_bias)
            else:
                ours.q_attn.bias.copy_(ref.in_proj_bias[:d_model])
                ours.kv_attn.bias.copy_(ref.in_proj_bias[d_model:])
            ours.c_proj.bias.copy_(ref.out_proj.bias)
    return ours, ref


@pytest.mark.parametrize("kind", ["none", "causal", "padding", "per_head"])
@pytest.mark.parametrize("bias", [True, False])
def test_mha_self_attention_matches_torch(kind, bias):
    B, T, C, H = 3, 6, 32, 4
    ours, ref = _pair(C, H, bias=bias)
    x = torch.randn(B, T, C, generator=_gen(1))
    torch_kw, mask = {}, None
    if kind == "causal":
        mask = causal_mask(T)  # (T, T)
        torch_kw["attn_mask"] = ~mask  # torch: True = NOT allowed
    elif kind == "padding":
        mask = padding_mask([6, 4, 2], T)  # (B, 1, 1, T)
        torch_kw["key_padding_mask"] = ~mask[:, 0, 0]  # (B, T), True = ignore
    elif kind == "per_head":
        mask = _random_mask((B, H, T, T))
        torch_kw["attn_mask"] = ~mask.reshape(B * H, T, T)
    want, want_w = ref(x, x, x, need_weights=True, average_attn_weights=False, **torch_kw)
    got = ours(x, mask=mask, return_weights=True)
    assert_close(got.output, want, **TOL)
    assert got.weights.shape == (B, H, T, T)
    assert_close(got.weights, want_w, **TOL)
    _, want_avg = ref(x, x, x, need_weights=True, **torch_kw)
    assert_close(got.weights.mean(1), want_avg, **TOL)
    assert_close(ours(x, mask=mask).output, want, **TOL)  # the fused path too


@pytest.mark.parametrize("d_kv", [None, 12])
@pytest.mark.parametrize("masked", [False, True])
def test_mha_cross_attention_matches_torch(d_kv, masked):
    B, T_q, T_k, C, H = 2, 4, 7, 32, 4
    ours, ref = _pair(C, H, d_kv=d_kv)
    x = torch.randn(B, T_q, C, generator=_gen(2))
    ctx = torch.randn(B, T_k, d_kv or C, generator=_gen(3))
    mask = padding_mask([7, 5], T_k) if masked else None
    kpm = ~mask[:, 0, 0] if masked else None
    want, want_w = ref(x, ctx, ctx, key_padding_mask=kpm, need_weights=True, average_attn_weights=False)
    got = ours(x, context=ctx, mask=mask, return_weights=True)
    assert got.weights.shape == (B, H, T_q, T_k)
    assert_close(got.output, want, **TOL)
    assert_close(got.weights, want_w, **TOL)
    assert_close(ours(x, context=ctx, mask=mask).output, want, **TOL)


def _mask_cases(B, H, T):
    """Masks for MultiHeadAttention, including ones with fully masked query rows."""
    rows = _random_mask((B, H, T, T), seed=5)
    rows[0, 1, 2] = False  # batch 0, head 1, query 2 may attend to nothing
    return {
        "none": None,
        "padding": padding_mask([T, 3], T),
        "per_head_with_empty_rows": rows,
        "empty_sequence": padding_mask([T, 0], T),  # every query of batch 1 is fully masked
    }


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", ["none", "padding", "per_head_with_empty_rows", "empty_sequence"])
def test_fused_path_equals_explicit_path_in_values_and_gradients(causal, case):
    B, T, C, H = 2, 6, 32, 4
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(C, H, causal=causal)).eval()
    mask = _mask_cases(B, H, T)[case]
    x1 = torch.randn(B, T, C, generator=_gen(4), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    fused = mha(x1, mask=mask)
    explicit = mha(x2, mask=mask, return_weights=True)
    assert fused.weights is None
    assert not torch.isnan(fused.output).any()
    assert_close(fused.output, explicit.output, **TOL)
    fused.output.square().sum().backward()
    explicit.output.square().sum().backward()
    assert torch.isfinite(x1.grad).all()
    assert_close(x1.grad, x2.grad, **TOL)


def test_mha_fully_masked_rows_have_zero_weights_and_only_the_output_bias():
    mha = MultiHeadAttention(AttentionConfig(16, 2)).eval()
    x = torch.randn(2, 5, 16, generator=_gen(6))
    out, weights = mha(x, mask=padding_mask([5, 0], 5), return_weights=True)
    assert torch.equal(weights[1], torch.zeros(2, 5, 5))
    # The attended vector is zero, so after c_proj only its bias remains.
    assert_close(out[1], mha.c_proj.bias.expand(5, 16))
    assert_close(mha(x, mask=padding_mask([5, 0], 5)).output[1], mha.c_proj.bias.expand(5, 16))


@pytest.mark.parametrize("return_weights", [False, True])
def test_causal_mha_outputs_do_not_depend_on_future_tokens(return_weights):
    T, t = 8, 3
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(32, 4, causal=True)).eval()
    x = torch.randn(2, T, 32, generator=_gen(7))
    x2 = x.clone()
    x2[:, t + 1] += 5.0  # change token t+1 only
    a = mha(x, return_weights=return_weights).output
    b = mha(x2, return_weights=return_weights).output
    assert_close(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
    assert (a[:, t + 1:] - b[:, t + 1:]).abs().amax(-1).min() > 1e-3  # every later position changes
    weights = mha(x, return_weights=True).weights
    assert (weights.masked_select(~causal_mask(T)) == 0).all()


def test_a_non_causal_layer_does_see_the_future():
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(32, 4)).eval()
    x = torch.randn(1, 6, 32, generator=_gen(8))
    x2 = x.clone()
    x2[:, 5] += 5.0
    assert (mha(x).output[:, 0] - mha(x2).output[:, 0]).abs().max() > 1e-3


def test_mha_scales_by_head_dim_not_d_model():
    d_model, n_heads = 64, 16  # head_dim 4: 1/sqrt(4) and 1/sqrt(64) differ by a factor of 4
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(d_model, n_heads)).eval()
    x = torch.randn(2, 5, d_model, generator=_gen(9))
    weights = mha(x, return_weights=True).weights  # (B, H, T, T)
    q, k, _ = mha.c_attn(x).split(d_model, dim=-1)
    q = q.view(2, 5, n_heads, 4).transpose(1, 2)  # (B, H, T, 4)
    k = k.view(2, 5, n_heads, 4).transpose(1, 2)  # (B, H, T, 4)
    raw = q @ k.transpose(-2, -1)  # (B, H, T, T)
    assert_close(weights, torch.softmax(raw / math.sqrt(4), dim=-1), **TOL)
    assert not torch.allclose(weights, torch.softmax(raw / math.sqrt(d_model), dim=-1), atol=1e-3)


def test_mha_always_returns_a_named_pair():
    mha = MultiHeadAttention(AttentionConfig(16, 2))
    x = torch.randn(1, 3, 16)
    plain, with_weights = mha(x), mha(x, return_weights=True)
    assert isinstance(plain, AttentionOutput) and len(plain) == len(with_weights) == 2
    assert plain.weights is None and with_weights.weights.shape == (1, 2, 3, 3)
    out, _ = plain  # unpacks the same way whatever the flags
    assert out.shape == (1, 3, 16)


def test_dropout_acts_only_in_training_and_returned_weights_still_sum_to_one():
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(32, 4, dropout=0.5))
    x = torch.randn(2, 6, 32, generator=_gen(10))
    mha.train()
    for return_weights in (False, True):
        a = mha(x, return_weights=return_weights)
        b = mha(x, return_weights=return_weights)
        assert not torch.allclose(a.output, b.output)
    assert_close(mha(x, return_weights=True).weights.sum(-1), torch.ones(2, 4, 6))
    mha.eval()
    assert torch.equal(mha(x).output, mha(x).output)
    assert_close(mha(x).output, mha(x, return_weights=True).output, **TOL)


def test_gpt2_parameter_layout_and_conv1d_transpose():
    mha = MultiHeadAttention(AttentionConfig(24, 3))
    shapes = {name: tuple(p.shape) for name, p in mha.state_dict().items()}
    assert shapes == {"c_attn.weight": (72, 24), "c_attn.bias": (72,),
                      "c_proj.weight": (24, 24), "c_proj.bias": (24,)}
    # GPT-2's Conv1D computes x @ W + b with W shaped (in, out): load it transposed.
    conv_w, conv_b = torch.randn(24, 72), torch.randn(72)
    with torch.no_grad():
        mha.c_attn.weight.copy_(conv_w.t())
        mha.c_attn.bias.copy_(conv_b)
    x = torch.randn(2, 5, 24)
    assert_close(mha.c_attn(x), x @ conv_w + conv_b, **TOL)
    cross = MultiHeadAttention(AttentionConfig(24, 3, d_kv=10))
    assert {n: tuple(p.shape) for n, p in cross.named_parameters() if n.endswith("weight")} == {
        "q_attn.weight": (24, 24), "kv_attn.weight": (48, 10), "c_proj.weight": (24, 24)}


# --- bad input to MultiHeadAttention ----------------------------------------------------------

def test_config_rejects_n_heads_that_do_not_divide_d_model():
    with pytest.raises(ValueError, match=r"d_model=10 is not divisible by n_heads=3.*\[1, 2, 5, 10\]"):
        AttentionConfig(d_model=10, n_heads=3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=0, n_heads=1), "d_model must be a positive int"),
    (dict(d_model=8, n_heads=2, dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(d_model=8, n_heads=2, causal=True, d_kv=4), "cross-attention is never causal"),
])
def test_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttentionConfig(**kwargs)


def test_mha_rejects_bad_inputs_with_precise_messages():
    self_attn = MultiHeadAttention(AttentionConfig(16, 2))
    causal = MultiHeadAttention(AttentionConfig(16, 2, causal=True))
    cross = MultiHeadAttention(AttentionConfig(16, 2, d_kv=6))
    x = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match=r"x has shape \(2, 5, 8\) but this layer expects \(B, T, d_model=16\)"):
        self_attn(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"x has shape \(5, 16\).*x\.unsqueeze\(0\)"):
        self_attn(torch.randn(5, 16))
    with pytest.raises(ValueError, match=r"mask has shape \(2, 5\) but the attention scores have shape \(2, 2, 5, 5\)"):
        self_attn(x, mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="pass a bool mask"):
        self_attn(x, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match=r"cross-attention layer \(d_kv=6\): pass .* context="):
        cross(x)
    with pytest.raises(ValueError, match=r"context has shape \(2, 4, 16\) but this layer expects \(B, T_k, 6\)"):
        cross(x, context=torch.randn(2, 4, 16))
    with pytest.raises(ValueError, match="batch sizes"):
        cross(x, context=torch.randn(3, 4, 6))
    with pytest.raises(ValueError, match="causal=True, which is for self-attention only"):
        causal(x, context=torch.randn(2, 5, 16))
    with pytest.raises(TypeError, match="AttentionConfig"):
        MultiHeadAttention(16)


# --- KV cache ---------------------------------------------------------------------------------

@pytest.mark.parametrize("return_weights", [False, True])
@pytest.mark.parametrize("chunks", [(1, 1, 1, 1, 1, 1), (3, 1, 2), (2, 4)])
def test_kv_cache_in_chunks_equals_one_causal_pass(return_weights, chunks):
    B, T, C, H = 2, 6, 32, 4
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(C, H, causal=True)).eval()
    x = torch.randn(B, T, C, generator=_gen(11))
    full = mha(x, return_weights=True)
    cache, start = KVCache(), 0
    for n in chunks:
        got = mha(x[:, start:start + n], cache=cache, return_weights=return_weights)
        assert cache.length == start + n and cache.k.shape == (B, H, start + n, C // H)
        assert_close(got.output, full.output[:, start:start + n], **TOL)
        if return_weights:  # the new rows of the full weights, over every key so far
            assert got.weights.shape == (B, H, n, start + n)
            assert_close(got.weights, full.weights[:, :, start:start + n, :start + n], **TOL)
        start += n


def test_kv_cache_combines_with_a_padding_mask_over_all_keys():
    B, T, C, H = 2, 5, 16, 2
    torch.manual_seed(0)
    mha = MultiHeadAttention(AttentionConfig(C, H, causal=True)).eval()
    x = torch.randn(B, T, C, generator=_gen(12))
    mask = padding_mask([5, 3], T)  # (B, 1, 1, T)
    full = mha(x, mask=mask).output
    cache = KVCache()
    mha(x[:, :3], cache=cache, mask=mask[..., :3])
    rest = mha(x[:, 3:], cache=cache, mask=mask)  # mask over all T_past + T_q = 5 keys
    assert_close(rest.output, full[:, 3:], **TOL)


def test_kv_cache_rejects_misuse_with_clear_messages():
    self_attn = MultiHeadAttention(AttentionConfig(16, 2, causal=True))
    cross = MultiHeadAttention(AttentionConfig(16, 2, d_kv=6))
    x = torch.randn(2, 3, 16)
    with pytest.raises(TypeError, match=r"cache must be a KVCache.*KVCache\(\)"):
        self_attn(x, cache={})
    with pytest.raises(ValueError, match="KV cache is for self-attention only"):
        cross(x, context=torch.randn(2, 4, 6), cache=KVCache())
    with pytest.raises(ValueError, match=r"KV cache needs a causal layer \(AttentionConfig\(causal=True\)\)"):
        MultiHeadAttention(AttentionConfig(16, 2))(x, cache=KVCache())
    cache = KVCache()
    self_attn(x, cache=cache)
    with pytest.raises(ValueError, match=r"cache holds keys of shape \(2, 2, 3, 8\).*fresh KVCache\(\)"):
        self_attn(torch.randn(1, 1, 16), cache=cache)
    with pytest.raises(ValueError, match=r"mask has shape \(1, 1, 1, 2\) but the attention scores "
                                         r"have shape \(2, 2, 1, 4\)"):
        self_attn(x[:, :1], cache=cache, mask=torch.ones(1, 1, 1, 2, dtype=torch.bool))  # 2 keys, not 3 + 1


# --- bad input: NaN / inf, empty keys, empty lengths, dtypes, plain config values (issue 10) ------

@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_nan_in_q_k_or_v_is_named(which):
    t = {n: torch.randn(2, 3, 4) for n in "qkv"}
    t[which][1, 2, 0] = float("nan")
    for fn in (scaled_dot_product_attention, attention_steps):
        with pytest.raises(ValueError, match=rf"{which}\[1, 2, 0\] is nan"):
            fn(t["q"], t["k"], t["v"])


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_softmax_refuses_plus_inf_and_nan(bad):
    with pytest.raises(ValueError, match=r"softmax input x\[0\] is (inf|nan)"):
        softmax(torch.tensor([bad, 1.0]))
    assert torch.equal(softmax(torch.tensor([float("-inf"), 0.0])), torch.tensor([0.0, 1.0]))


def test_zero_keys_and_zero_width_are_refused():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="T_k = 0 keys"):
        scaled_dot_product_attention(q, torch.randn(2, 0, 4), torch.randn(2, 0, 4))
    with pytest.raises(ValueError, match="d_k = 0"):
        scaled_dot_product_attention(q[..., :0], q[..., :0], q)
    mha = MultiHeadAttention(AttentionConfig(8, 2))
    with pytest.raises(ValueError, match="T_k = 0 positions"):
        mha(torch.randn(2, 3, 8), context=torch.randn(2, 0, 8))


@pytest.mark.parametrize("T", [None, 4])
def test_all_zero_padding_lengths_are_refused(T):
    with pytest.raises(ValueError, match=r"all <= 0.*T.*length >= 1"):
        padding_mask([0, 0], T=T)


def test_float64_input_to_a_float32_layer_names_the_fix():
    mha = MultiHeadAttention(AttentionConfig(8, 2))
    with pytest.raises(ValueError, match=r"x has dtype torch.float64.*x.float\(\).*model.double\(\)"):
        mha(torch.randn(2, 3, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"context has dtype torch.float64"):
        mha(torch.randn(2, 3, 8), context=torch.randn(2, 3, 8, dtype=torch.float64))
    assert mha.double()(torch.randn(2, 3, 8, dtype=torch.float64)).output.dtype == torch.float64


@pytest.mark.parametrize("kwargs, match", [
    (dict(d_model=8, n_heads=2, dropout="0.1"), r"dropout must be in \[0, 1\), got '0.1'"),
    (dict(d_model=8, n_heads=2, dropout=None), r"dropout must be in \[0, 1\), got None"),
    (dict(d_model=8.0, n_heads=2), "d_model must be a positive int"),
    (dict(d_model=8, n_heads=2, causal=1), "causal must be True or False"),
    (dict(d_model=8, n_heads=2, bias="no"), "bias must be True or False"),
])
def test_config_refuses_non_numeric_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttentionConfig(**kwargs)


def test_numpy_values_in_attention_config_become_plain_python():
    cfg = AttentionConfig(np.int64(8), np.int32(2), dropout=np.float64(0.1), causal=np.bool_(True))
    assert [type(getattr(cfg, n)) for n in ("d_model", "n_heads", "dropout", "causal")] == \
        [int, int, float, bool]
    assert causal_mask(np.int64(3)).shape == (3, 3) and padding_mask([1, 2], T=np.int64(3)).shape[-1] == 3
