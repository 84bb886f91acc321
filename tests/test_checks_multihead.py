"""Tests for llmlab.checks.multihead: each checker accepts the solution and names typical mistakes."""
import math

import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks

solution = load_solutions("04_multi_head_attention")


_ids = lambda f: getattr(f, "__name__", "")  # noqa: E731


# --- split_heads -----------------------------------------------------------------------------

def _view_swapped(x, H):
    B, T, C = x.shape
    return x.view(B, T, C // H, H).transpose(1, 2)


def _in_place(x, H):
    x.mul_(1.0)  # harmless values, but the learner still wrote into the input
    x.add_(1.0)
    return solution.split_heads(x - 1.0, H)


@pytest.mark.parametrize("wrong, words", [
    (lambda x, H: x.view(*x.shape[:2], H, x.shape[2] // H), ["(B, T, H, d_k)", ".transpose(1, 2)"]),
    (lambda x, H: x.reshape(x.shape[0], H, x.shape[1], x.shape[2] // H),
     ["mixed up", "View as (B, T, n_heads, d_k) first"]),
    (_view_swapped, ["swapped n_heads and d_k"]),
    (lambda x, H: x.view(x.shape[0], x.shape[1], 3, -1).transpose(1, 2),  # n_heads fixed at 3
     ["do not multiply", "x.shape", "n_heads argument"]),
    (lambda x, H: x.view(x.shape[0], x.shape[1], H, -1).transpose(1, 2)[:, :, :, :2],
     ["should have shape", "x.shape"]),
    (lambda x, H: solution.split_heads(x, H).flip(-1), ["values are not where they belong"]),
    (_in_place, ["in place"]),
])
def test_split_heads_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_split_heads(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_split_heads_accepts_permute_and_numpy():
    assert checks.check_split_heads(
        lambda x, H: x.reshape(*x.shape[:2], H, -1).permute(0, 2, 1, 3)).passed
    assert checks.check_split_heads(lambda x, H: solution.split_heads(x, H).numpy()).passed


# --- merge_heads -----------------------------------------------------------------------------

def _merge_with_view(y):
    B, H, T, d = y.shape
    return y.transpose(1, 2).view(B, T, H * d)


@pytest.mark.parametrize("wrong, words", [
    (_merge_with_view, [".view()", "contiguous", "reshape"]),
    (lambda y: y.reshape(y.shape[0], y.shape[2], -1), ["mixed up", "y.transpose(1, 2)"]),
    (lambda y: y.permute(0, 2, 3, 1).reshape(y.shape[0], y.shape[2], -1),
     ["interleaved", "permute(0, 2, 1, 3)"]),
    (lambda y: y.transpose(1, 2), ["flatten the last two axes"]),
    (lambda y: y.reshape(y.shape[0], -1), ["should have shape"]),
])
def test_merge_heads_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_merge_heads(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_merge_heads_accepts_contiguous_view():
    def merge(y):
        B, H, T, d = y.shape
        return y.transpose(1, 2).contiguous().view(B, T, H * d)
    assert checks.check_merge_heads(merge).passed


# --- multi-head attention ----------------------------------------------------------------------

def _mha(scale=None, split=None, merge=None, project=True, swap_qk=False, dim=-1):
    """multi_head_attention with one deliberate mistake."""
    split = split or solution.split_heads
    merge = merge or solution.merge_heads

    def mha(x, W_q, W_k, W_v, W_o, n_heads):
        if swap_qk:
            W_q, W_k = W_k, W_q
        q, k, v = (split(x @ W, n_heads) for W in (W_q, W_k, W_v))
        s = q.shape[-1] if scale is None else scale(x, q)
        w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(s), dim=dim)
        y = merge(w @ v)
        return (y @ W_o if project else y), w
    return mha


def _split_straight(x, H):
    B, T, C = x.shape
    return x.reshape(B, H, T, C // H)


def _merge_straight(y):
    B, H, T, d = y.shape
    return y.reshape(B, T, H * d)


def _one_head(x, W_q, W_k, W_v, W_o, n_heads):
    q, k, v = x @ W_q, x @ W_k, x @ W_v
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return w @ v @ W_o, w


@pytest.mark.parametrize("wrong, words", [
    (_mha(scale=lambda x, q: x.shape[-1]), ["√d_model", "√d_k"]),
    (_mha(scale=lambda x, q: 1.0), ["not scaled"]),
    (_mha(split=_split_straight), ["split wrongly", "mixes tokens"]),
    (_mha(swap_qk=True), ["swapped", "transposed"]),
    (_mha(dim=-2), ["columns sum to 1", "dim=-1"]),
    (_mha(project=False), ["output projection", "W_o"]),
    (_mha(merge=_merge_straight), ["merged wrongly"]),
    (_one_head, ["one head", "(B, n_heads, T, T)"]),
    (lambda *args: _mha()(*args)[0], ["return two things"]),
    (lambda *args: (_mha()(*args)[0] * 2, _mha()(*args)[1]), ["merge_heads(weights @ v) @ W_o"]),
])
def test_multi_head_attention_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_multi_head_attention(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_multi_head_attention_agrees_with_the_library():
    """The checker's reference is llmlab's MultiHeadAttention with the same weights."""
    from llmlab.attention import AttentionConfig, MultiHeadAttention

    def via_library(x, W_q, W_k, W_v, W_o, n_heads):
        layer = MultiHeadAttention(AttentionConfig(x.shape[-1], n_heads, bias=False))
        with torch.no_grad():
            layer.c_attn.weight.copy_(torch.cat([W_q, W_k, W_v], dim=1).T)
            layer.c_proj.weight.copy_(W_o.T)
            out = layer(x, return_weights=True)
        return out.output, out.weights
    verdict = checks.check_multi_head_attention(via_library)
    assert verdict.passed, verdict.message


# --- sinusoidal encoding ---------------------------------------------------------------------

def _table(start=0, exponent=lambda two_i, d: two_i / d, swap=False, concat=False, per_column=False):
    """sinusoidal_encoding with one deliberate mistake."""
    def pe(T, d):
        pos = torch.arange(start, start + T, dtype=torch.float64)[:, None]
        if per_column:
            a = pos / 10000 ** (torch.arange(d, dtype=torch.float64) / d)
            out = torch.sin(a)
            out[:, 1::2] = torch.cos(a[:, 1::2])
            return out
        two_i = torch.arange(0, d, 2, dtype=torch.float64)
        a = pos / 10000 ** exponent(two_i, d)
        s, c = (torch.cos(a), torch.sin(a)) if swap else (torch.sin(a), torch.cos(a))
        if concat:
            return torch.cat([s, c], dim=-1)
        out = torch.empty(T, d, dtype=torch.float64)
        out[:, 0::2], out[:, 1::2] = s, c
        return out
    return pe


@pytest.mark.parametrize("wrong, words", [
    (_table(swap=True), ["swapped"]),
    (_table(exponent=lambda two_i, d: two_i / 2 / d), ["2i / d_model, not i / d_model"]),
    (_table(per_column=True), ["same frequency as column 2i"]),
    (_table(start=1), ["positions start at 1", "start at 0"]),
    (_table(concat=True), ["sines first", "interleaves"]),
    (lambda T, d: _table()(T, d).T, ["(d_model, T)"]),
    (_table(exponent=lambda two_i, d: two_i / d * 0.9), ["first wrong entry", "PE["]),
    (lambda T, d: _table()(T, d)[:, : d // 2], ["should have shape"]),
])
def test_sinusoidal_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_sinusoidal_encoding(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_sinusoidal_accepts_the_library_and_numpy():
    from llmlab.positional import sinusoidal_encoding
    assert checks.check_sinusoidal_encoding(sinusoidal_encoding).passed
    assert checks.check_sinusoidal_encoding(lambda T, d: solution.sinusoidal_encoding(T, d).numpy()).passed


def test_split_heads_with_transpose_0_2_gets_a_hint_about_the_axes():
    def wrong(x, n_heads):
        B, T, C = x.shape
        return x.view(B, T, n_heads, C // n_heads).transpose(0, 2)

    verdict = checks.check_split_heads(wrong)
    assert not verdict.passed and "moved the wrong axes" in verdict.message
    assert ".transpose(1, 2)" in verdict.message and "(n_heads, T, B, d_k)" in verdict.message


def test_multi_head_attention_with_a_causal_mask_is_told_it_is_masked():
    def causal(x, W_q, W_k, W_v, W_o, n_heads):
        B, T, C = x.shape
        q, k, v = ((x @ W).view(B, T, n_heads, C // n_heads).transpose(1, 2)
                   for W in (W_q, W_k, W_v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(C // n_heads)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        w = torch.softmax(scores, dim=-1)
        return (w @ v).transpose(1, 2).reshape(B, T, C) @ W_o, w

    verdict = checks.check_multi_head_attention(causal)
    assert not verdict.passed and "you applied a causal mask" in verdict.message
    assert "split_heads" not in verdict.message
