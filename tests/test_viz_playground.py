"""Tests for llmlab.viz.playground: the attention playground widget and its static twin."""
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from llmlab.attention import attention_steps, causal_mask
from llmlab.viz import AttentionPlayground, plot_attention_steps

TOKENS = ["The", "cat", "sat", "on", "the", "mat"]
D_K = 4


def _qkv(seed=0, T=6, d_k=D_K, d_v=3):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(T, d_k, generator=gen), torch.randn(T, d_k, generator=gen),
            torch.randn(T, d_v, generator=gen))


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")  # tests/conftest.py


@pytest.fixture(scope="module")
def playground():
    return AttentionPlayground(TOKENS, *_qkv(), query_index=2)


def _changes_view(pg, control, value):
    """Set a control; return (old steps, new steps), asserting the picture changed too."""
    steps, png = pg.current_steps, pg.image.value
    control.value = value
    assert pg.image.value != png, "the picture did not change"
    assert bytes(pg.image.value).startswith(b"\x89PNG")
    return steps, pg.current_steps


def test_initial_view_matches_attention_steps(playground):
    q, k, v = _qkv()
    want = attention_steps(q.double(), k.double(), v.double())
    for got, expected in zip(playground.current_steps, want):
        torch.testing.assert_close(got, expected)
    assert playground.query.value == 2
    assert [s.value for s in playground.components] == pytest.approx(q[2].tolist())
    assert "sat" in playground.summary.value


def test_scale_toggle_divides_scaled_scores_by_sqrt_dk():
    pg = AttentionPlayground(TOKENS, *_qkv())
    before, after = _changes_view(pg, pg.scale, False)
    torch.testing.assert_close(after.scaled_scores, after.scores)
    torch.testing.assert_close(before.scaled_scores, before.scores / math.sqrt(D_K))
    torch.testing.assert_close(before.scaled_scores, after.scaled_scores / math.sqrt(D_K))


def test_causal_toggle_zeroes_future_weights():
    pg = AttentionPlayground(TOKENS, *_qkv())
    before, after = _changes_view(pg, pg.causal, True)
    future = ~causal_mask(len(TOKENS))
    assert (before.weights[future] > 0).all()
    assert (after.weights[future] == 0).all()
    assert torch.isneginf(after.masked_scores[future]).all()
    torch.testing.assert_close(after.weights.sum(-1), torch.ones(len(TOKENS), dtype=torch.float64))


def test_query_dropdown_moves_the_row_and_loads_its_vector():
    pg = AttentionPlayground(TOKENS, *_qkv(), query_index=0)
    before, after = _changes_view(pg, pg.query, 4)
    torch.testing.assert_close(before.weights, after.weights)  # same numbers, another row shown
    assert [s.value for s in pg.components] == pytest.approx(_qkv()[0][4].tolist())
    assert "the" in pg.summary.value


def test_editing_a_component_changes_only_that_query():
    pg = AttentionPlayground(TOKENS, *_qkv(), query_index=1)
    before, after = _changes_view(pg, pg.components[0], 1.5)
    assert float(pg.query_vector[0]) == 1.5
    q, k, _ = (t.double() for t in _qkv())
    q[1, 0] = 1.5
    torch.testing.assert_close(after.scores, q @ k.T)
    changed = (after.weights != before.weights).any(-1)
    assert changed.tolist() == [False, True, False, False, False, False]
    # The edit belongs to that query: it survives a visit to another query, and reset undoes it.
    pg.query.value = 3
    pg.query.value = 1
    assert pg.components[0].value == 1.5
    pg.reset.click()
    torch.testing.assert_close(pg.current_steps.weights, before.weights)
    assert pg.components[0].value == pytest.approx(float(_qkv()[0][1, 0]))


def test_sharpness_multiplies_every_query():
    pg = AttentionPlayground(TOKENS, *_qkv())
    before, after = _changes_view(pg, pg.sharpness, 10.0)
    torch.testing.assert_close(after.scores, 10.0 * before.scores)
    assert after.weights.max(-1).values.mean() > before.weights.max(-1).values.mean()


def test_from_embeddings_projects_with_the_matrices():
    gen = torch.Generator().manual_seed(3)
    x, W_q, W_k, W_v = (torch.randn(*s, generator=gen) for s in ((6, 5), (5, 4), (5, 4), (5, 2)))
    pg = AttentionPlayground.from_embeddings(TOKENS, x, W_q, W_k, W_v)
    want = attention_steps(*(t.double() for t in (x @ W_q, x @ W_k, x @ W_v)))
    torch.testing.assert_close(pg.current_steps.output, want.output)
    with pytest.raises(ValueError, match="W_k must be \\(d_model, d\\)"):
        AttentionPlayground.from_embeddings(TOKENS, x, W_q, W_k.T, W_v)


def test_numpy_input_and_wide_queries_get_a_few_sliders():
    q, k, v = (t.numpy() for t in _qkv(d_k=20))
    pg = AttentionPlayground(TOKENS, q, k, v)
    assert len(pg.components) == 8
    assert "first 8 of its 20" in pg.widget.children[1].value


def test_widget_layout_and_display(playground):
    import ipywidgets as W

    assert isinstance(playground.widget, W.VBox)
    assert playground.image in playground.widget.children
    for control in (playground.query, playground.scale, playground.causal, playground.sharpness):
        assert isinstance(control, W.ValueWidget)


def test_displayed_with_its_picture_and_a_note_for_untrusted_notebooks(playground):
    """Where the widget cannot run (a notebook fresh from disk), the picture shows, not a repr."""
    import base64

    bundle = playground._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == playground.widget.model_id
    assert base64.b64decode(bundle["image/png"]) == playground.image.value  # the current view
    assert "children=" not in bundle["text/plain"] and "run this cell" in bundle["text/plain"]
    before, playground.query.value = playground.query.value, 0
    try:
        assert base64.b64decode(playground._repr_mimebundle_()["image/png"]) == playground.image.value
    finally:
        playground.query.value = before  # the fixture is shared


@pytest.mark.parametrize("tokens, match", [
    (TOKENS[:5], "tokens has 5 entries but q has 6 rows"),
    ("The cat sat on the mat", "one string"),
])
def test_bad_tokens_raise_clear_errors(tokens, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AttentionPlayground(tokens, *_qkv())


def test_bad_shapes_raise_clear_errors():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="k has 5"):
        AttentionPlayground(TOKENS, q, k[:5], v)
    with pytest.raises(ValueError, match="last dimensions \\(d_k\\) must match"):
        AttentionPlayground(TOKENS, q, torch.randn(6, 3), v)
    with pytest.raises(ValueError, match="one sequence"):
        AttentionPlayground(TOKENS, q[None], k[None], v[None])
    with pytest.raises(ValueError, match="query_index=6"):
        AttentionPlayground(TOKENS, q, k, v, query_index=6)


def test_static_twin_has_the_expected_panels():
    q, k, v = _qkv()
    steps = attention_steps(q, k, v, mask=causal_mask(6))
    fig = plot_attention_steps(steps, TOKENS, query_index=2)
    assert isinstance(fig, Figure)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    for prefix in ("1 · scores", "2 · scaled scores", "3 · masked scores", "4 · weights"):
        assert any(t.startswith(prefix) for t in titles), (prefix, titles)
    assert any("÷ √4 = ÷ 2" in t for t in titles)
    assert any("3 hidden keys" in t for t in titles)       # query 2 cannot see 3, 4, 5
    assert any(t.startswith("all queries") for t in titles)
    assert "'sat'" in fig._suptitle.get_text()
    heat = next(ax for ax in fig.axes if ax.get_title(loc="left").startswith("all queries"))
    assert heat.get_ylabel() == "query (attending from)"
    assert [t.get_text() for t in heat.get_yticklabels()] == TOKENS
    # The weight bars are the chosen row's weights.
    weights_ax = next(ax for ax in fig.axes if ax.get_title(loc="left").startswith("4 · weights"))
    heights = [p.get_height() for p in weights_ax.patches if p.get_width() == pytest.approx(0.7)]
    np.testing.assert_allclose(heights, steps.weights[2].numpy(), atol=1e-6)


def test_static_twin_of_the_playground_uses_its_numbers(playground):
    fig = playground.static_figure()
    assert isinstance(fig, Figure)
    assert "'sat'" in fig._suptitle.get_text()


def test_static_twin_unscaled_and_errors():
    q, k, v = _qkv()
    fig = plot_attention_steps(attention_steps(q, k, v, scale=False), TOKENS, -1)
    assert any("not scaled" in ax.get_title(loc="left") for ax in fig.axes)
    steps = attention_steps(q, k, v)
    with pytest.raises(ValueError, match="query_index=9 is out of range"):
        plot_attention_steps(steps, TOKENS, 9)
    with pytest.raises(ValueError, match="one sequence and one head"):
        plot_attention_steps(attention_steps(q[None].expand(2, 6, 4), k[None].expand(2, 6, 4),
                                             v[None].expand(2, 6, 3)), TOKENS)
    with pytest.raises(TypeError, match="AttentionSteps"):
        plot_attention_steps((steps.weights,), TOKENS)
    used = Figure()
    used.add_subplot()
    with pytest.raises(ValueError, match="empty Figure"):
        plot_attention_steps(steps, TOKENS, fig=used)


def test_mask_note_and_entropy_read_right_at_the_edges():
    q, k, v = _qkv()
    steps = attention_steps(q, k, v, mask=causal_mask(6))
    last = plot_attention_steps(steps, TOKENS, query_index=5)  # sees every key: nothing hidden
    panel3 = next(ax.get_title(loc="left") for ax in last.axes
                  if ax.get_title(loc="left").startswith("3 · masked"))
    assert "mask on, nothing hidden" in panel3 and "no mask" not in panel3
    unmasked = plot_attention_steps(attention_steps(q, k, v), TOKENS, query_index=5)
    assert any("no mask" in ax.get_title(loc="left") for ax in unmasked.axes)
    # Query 0 under a causal mask puts weight exactly 1 on itself: entropy 0, never "-0.00".
    pg = AttentionPlayground(TOKENS, *_qkv(), query_index=0, causal=True)
    assert "entropy 0.00 nats" in pg.summary.value and "-0.00" not in pg.summary.value
