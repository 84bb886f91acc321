"""Tests for llmlab.induction (repeated segments, per-position loss, head ablation) and its plots."""

import copy

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from llmlab.gpt import GPT, GPTConfig
from llmlab.induction import (RepeatedSegments, ablate_heads, ablation_effects, chance_loss,
                              head_output_norms, position_loss, repeat_losses)
from llmlab.viz import plot_head_table, plot_position_loss


def _toy(seed=0, **overrides):
    torch.manual_seed(seed)
    config = dict(vocab_size=20, block_size=15, n_layer=2, n_head=4, n_embd=32, mlp="none",
                  positions="rope", bias=False)
    return GPT(GPTConfig(**{**config, **overrides})).eval()


# --- the data -----------------------------------------------------------------------------------

def test_sample_rows_end_in_a_repeat_of_varying_length():
    task = RepeatedSegments(vocab_size=50, segment_len=8, min_len=3)
    x, y = task.sample(400, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (400, task.block_size) == (400, 15)
    assert torch.equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    seq = torch.cat([x, y[:, -1:]], dim=1)  # (B, 16)
    lengths = set()
    for row in seq:
        # the longest l in min_len..L whose last l tokens equal the l before them
        found = [l for l in range(3, 9) if torch.equal(row[-l:], row[-2 * l:-l])]
        assert found, row
        lengths.add(max(found))
    assert lengths == set(range(3, 9))  # every allowed length occurs, none outside


def test_fixed_is_one_segment_twice():
    task = RepeatedSegments(vocab_size=30, segment_len=6)
    x, y = task.fixed(5, torch.Generator().manual_seed(1))
    seq = torch.cat([x, y[:, -1:]], dim=1)  # (5, 12)
    assert torch.equal(seq[:, :6], seq[:, 6:])
    assert int(seq.max()) < 30 and task.min_len == 3


def test_bad_task_settings_are_named():
    with pytest.raises(ValueError, match="min_len=9 is longer than segment_len=4"):
        RepeatedSegments(10, 4, min_len=9)
    with pytest.raises(ValueError, match="segment_len"):
        RepeatedSegments(10, 1)


# --- losses -------------------------------------------------------------------------------------

def test_position_loss_is_the_batch_mean_cross_entropy_and_keeps_the_mode():
    model = _toy().train()
    task = RepeatedSegments(20, 8)
    x, y = task.fixed(6, torch.Generator().manual_seed(2))
    losses = position_loss(model, x, y)
    assert model.training  # put back as it was
    with torch.no_grad():
        logits = model.eval()(x).logits
    want = torch.stack([F.cross_entropy(logits[:, t], y[:, t]) for t in range(x.shape[1])])
    torch.testing.assert_close(losses, want)


def test_position_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        position_loss(_toy(), torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))


def test_repeat_losses_splits_first_copy_and_repeat():
    losses = torch.tensor([4.0, 4.0, 4.0, 1.0, 1.0, 1.0, 1.0])  # L = 4: 3 fresh targets, 4 copies
    got = repeat_losses(losses)
    assert got == {"first copy": 4.0, "repeat": 1.0, "gain": 3.0}
    with pytest.raises(ValueError, match="odd length"):
        repeat_losses(torch.ones(6))
    assert chance_loss(64) == pytest.approx(4.1589, abs=1e-4)


# --- ablation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("layer, head", [(0, 0), (1, 3), (0, 2)])
@pytest.mark.parametrize("explicit", [False, True])
def test_ablating_a_head_equals_zeroing_its_columns_of_c_proj(layer, head, explicit):
    model = _toy(bias=True)  # with biases: c_proj's bias must stay, as it does in the hook
    x = torch.randint(20, (3, 15), generator=torch.Generator().manual_seed(3))
    edited = copy.deepcopy(model)
    hd = 32 // 4
    with torch.no_grad():
        edited.transformer.h[layer].attn.c_proj.weight[:, head * hd:(head + 1) * hd] = 0
        want = edited(x).logits
        with ablate_heads(model, [(layer, head)]):
            got = model(x, return_attention=explicit).logits
        torch.testing.assert_close(got, want)
        assert not torch.allclose(model(x).logits, want)  # the hook is gone after the block


def test_hooks_are_removed_after_an_error():
    model = _toy()
    x = torch.randint(20, (1, 15))
    before = model(x).logits
    with pytest.raises(RuntimeError, match="boom"):
        with ablate_heads(model, (1, 1)):  # one pair may be given without a list
            raise RuntimeError("boom")
    torch.testing.assert_close(model(x).logits, before)
    assert all(not b.attn.c_proj._forward_pre_hooks for b in model.transformer.h)


@pytest.mark.parametrize("heads, match", [
    ([(2, 0)], r"head \(2, 0\) does not exist: this model has layers 0..1"),
    ([(0, 4)], "heads 0..3"),
    ([(0,)], "pair of ints"),
    ([("0", 1)], "pair of ints"),
])
def test_bad_heads_are_named(heads, match):
    with pytest.raises(ValueError, match=match):
        with ablate_heads(_toy(), heads):
            pass


def test_ablate_heads_needs_a_gpt():
    with pytest.raises(TypeError, match="llmlab GPT"):
        with ablate_heads(torch.nn.Linear(2, 2), [(0, 0)]):
            pass


def test_ablation_effects_match_ablating_by_hand():
    model = _toy(seed=4)
    task = RepeatedSegments(20, 8)
    x, y = task.fixed(8, torch.Generator().manual_seed(5))
    effects = ablation_effects(model, x, y)
    assert effects.shape == (2, 4)
    base = repeat_losses(position_loss(model, x, y))["repeat"]
    with ablate_heads(model, [(1, 2)]):
        by_hand = repeat_losses(position_loss(model, x, y))["repeat"] - base
    assert effects[1, 2].item() == pytest.approx(by_hand, abs=1e-6)
    assert effects.abs().sum() > 0


def test_head_output_norms_add_up_to_the_layer_output():
    model = _toy(seed=6)
    x = torch.randint(20, (2, 15), generator=torch.Generator().manual_seed(7))
    norms = head_output_norms(model, x)
    assert norms.shape == (2, 4) and bool((norms > 0).all())
    hd = 8
    with torch.no_grad():  # a head whose c_proj columns are zero writes nothing
        model.transformer.h[0].attn.c_proj.weight[:, 1 * hd:2 * hd] = 0
    assert head_output_norms(model, x)[0, 1].item() == 0.0


# --- an attention-only GPT ----------------------------------------------------------------------

def test_attention_only_blocks_have_no_mlp_and_still_learn():
    model = _toy(seed=8).train()
    assert all(b.mlp is None and b.ln_2 is None for b in model.transformer.h)
    assert not any("mlp" in name for name, _ in model.named_parameters())
    x, y = RepeatedSegments(20, 8).sample(16, torch.Generator().manual_seed(9))  # one batch
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):  # attention alone can memorise a batch
        loss = model(x, targets=y).loss
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first - 0.5


# --- the plots ----------------------------------------------------------------------------------

def test_plots_return_figures_and_check_their_input():
    losses = torch.linspace(4, 0, 15)
    fig = plot_position_loss({"a": losses, "b": losses * 0.5}, vocab_size=20)
    assert isinstance(fig, matplotlib.figure.Figure)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["a", "b"] and any("ln 20" in t for t in labels)
    with pytest.raises(ValueError, match="one length"):
        plot_position_loss({"a": losses, "b": losses[:-2]})
    with pytest.raises(ValueError, match="empty"):
        plot_position_loss({})
    fig = plot_head_table(torch.tensor([[0.1, 2.0], [-0.5, 0.0]]), "effects")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["0.10", "2.00", "-0.50", "0.00"]
    with pytest.raises(ValueError, match="one \\(layers, heads\\) table"):
        plot_head_table(torch.ones(3), "x")
