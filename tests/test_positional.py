"""Tests for llmlab.positional: sinusoidal, learned and rotary position encodings."""
import math

import pytest
import torch
from torch.testing import assert_close

from llmlab.positional import (
    LearnedPositionalEmbedding,
    apply_rope,
    rope_frequencies,
    sinusoidal_encoding,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- sinusoidal -------------------------------------------------------------------------------

def test_sinusoidal_shape_and_position_zero():
    pe = sinusoidal_encoding(10, 8)
    assert pe.shape == (10, 8) and pe.dtype == torch.float32
    assert pe[0].tolist() == [0.0, 1.0] * 4  # sin 0 = 0, cos 0 = 1 in every pair


def test_sinusoidal_known_values():
    pe = sinusoidal_encoding(50, 6)
    for pos in (1, 7, 49):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_sinusoidal_odd_width_drops_the_last_cosine():
    pe, even = sinusoidal_encoding(5, 7), sinusoidal_encoding(5, 8)
    assert pe.shape == (5, 7)
    assert_close(pe[:, 0::2], torch.sin(torch.arange(5.0)[:, None] / 10000 ** (torch.arange(0, 7, 2) / 7)))
    assert not torch.equal(pe, even[:, :7])  # frequencies depend on the width, as in the paper


def test_sinusoidal_rejects_bad_sizes():
    with pytest.raises(ValueError, match="d_model must be a positive int"):
        sinusoidal_encoding(4, 0)


# --- learned ----------------------------------------------------------------------------------

def test_learned_embedding_returns_rows_and_trains():
    emb = LearnedPositionalEmbedding(max_len=16, d_model=8)
    out = emb(5)
    assert out.shape == (5, 8)
    assert torch.equal(emb(3, offset=2), emb.weight[2:5])
    out.sum().backward()
    assert emb.weight.grad[:5].abs().sum() > 0 and emb.weight.grad[5:].abs().sum() == 0


def test_learned_embedding_names_both_lengths_when_too_long():
    emb = LearnedPositionalEmbedding(max_len=16, d_model=8)
    with pytest.raises(ValueError, match=r"T=20.*max_len=16.*max_len >= 20"):
        emb(20)
    with pytest.raises(ValueError, match=r"positions 10\.\.19.*max_len=16"):
        emb(10, offset=10)
    with pytest.raises(ValueError, match="max_len must be a positive int"):
        LearnedPositionalEmbedding(0, 8)


# --- rotary -----------------------------------------------------------------------------------

def test_rope_frequencies_shapes_and_position_zero_is_identity():
    cos, sin = rope_frequencies(6, 8)
    assert cos.shape == sin.shape == (6, 8)
    assert torch.equal(cos[0], torch.ones(8)) and torch.equal(sin[0], torch.zeros(8))
    x = torch.randn(1, 8, generator=_gen())
    assert_close(apply_rope(x), x)  # a single token sits at position 0


def test_rope_rotates_pairs_j_and_j_plus_half_by_position_times_theta():
    head_dim, pos = 4, 3
    x = torch.zeros(pos + 1, head_dim)
    x[pos, 0] = 1.0  # the unit vector e_0 at position 3
    y = apply_rope(x)[pos]
    theta0 = 1.0  # base ** 0
    assert_close(y, torch.tensor([math.cos(pos * theta0), 0.0, math.sin(pos * theta0), 0.0]))


def test_rope_preserves_norms():
    x = torch.randn(2, 3, 10, 16, generator=_gen(1))
    y = apply_rope(x)
    assert_close(y.norm(dim=-1), x.norm(dim=-1))
    assert not torch.allclose(y[..., 1:, :], x[..., 1:, :])  # yet every later position moved


def test_rope_scores_depend_only_on_relative_position():
    head_dim = 16
    q, k = torch.randn(head_dim, generator=_gen(2)), torch.randn(head_dim, generator=_gen(3))

    def score(m, n):
        qm = apply_rope(q[None], positions=torch.tensor([m]))[0]
        kn = apply_rope(k[None], positions=torch.tensor([n]))[0]
        return (qm @ kn).item()

    for m, n in [(5, 2), (0, 7), (9, 9)]:
        for shift in (1, 13, 500):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-4)
    assert abs(score(5, 2) - score(6, 2)) > 1e-3  # but the relative offset does matter


def test_apply_rope_positions_and_precomputed_tables_agree():
    x = torch.randn(2, 4, 5, 8, generator=_gen(4))
    cos, sin = rope_frequencies(5, 8, offset=3)
    assert_close(apply_rope(x, cos=cos, sin=sin), apply_rope(x, positions=torch.arange(3, 8)))
    assert_close(apply_rope(x, cos=cos, sin=sin), apply_rope(x, positions=[3, 4, 5, 6, 7]))
    assert_close(apply_rope(x), apply_rope(x, positions=torch.arange(5)))


def test_rope_rejects_odd_head_dim():
    with pytest.raises(ValueError, match=r"head_dim=7 is odd: RoPE rotates dimensions in pairs"):
        apply_rope(torch.randn(3, 7))
    with pytest.raises(ValueError, match=r"head_dim=5 is odd"):
        rope_frequencies(4, 5)


def test_rope_rejects_mismatched_tables_and_positions():
    x = torch.randn(2, 5, 8)
    cos, sin = rope_frequencies(4, 8)
    with pytest.raises(ValueError, match=r"cos has shape \(4, 8\).*x has shape \(2, 5, 8\).*T=5"):
        apply_rope(x, cos=cos, sin=sin)
    with pytest.raises(ValueError, match="pass cos and sin together"):
        apply_rope(x, cos=cos)
    with pytest.raises(ValueError, match="either positions or cos/sin"):
        apply_rope(x, positions=torch.arange(5), cos=cos, sin=sin)
    with pytest.raises(ValueError, match=r"positions has shape \(4,\).*\(T,\) = \(5,\)"):
        apply_rope(x, positions=torch.arange(4))


# --- bad input (issue 10) -------------------------------------------------------------------------

@pytest.mark.parametrize("base", [0, -1.0, 1.0, float("nan"), float("inf"), "10000", True])
def test_bad_base_is_refused_everywhere(base):
    for call in (lambda: sinusoidal_encoding(4, 8, base=base), lambda: rope_frequencies(4, 8, base=base),
                 lambda: apply_rope(torch.randn(4, 8), base=base)):
        with pytest.raises(ValueError, match=r"base must be a finite number > 1.*10000"):
            call()


def test_numpy_sizes_are_accepted_and_bool_positions_refused():
    import numpy as np
    assert torch.equal(sinusoidal_encoding(np.int64(4), 8), sinusoidal_encoding(4, 8))
    assert torch.equal(rope_frequencies(4, 8, offset=np.int64(2))[0], rope_frequencies(4, 8, offset=2)[0])
    with pytest.raises(ValueError, match="integer positions"):
        apply_rope(torch.randn(4, 8), positions=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cos and sin must be float tensors"):
        apply_rope(torch.randn(4, 8), cos=[[1.0] * 8] * 4, sin=[[0.0] * 8] * 4)
