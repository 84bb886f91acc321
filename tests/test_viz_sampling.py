"""Tests for llmlab.viz.sampling: next-token plots, loss curves, bigram maps, the sampling explorer."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from llmlab.lm import next_token_probs
from llmlab.viz import (
    SamplingExplorer,
    plot_bigram_matrix,
    plot_loss,
    plot_next_token_distribution,
    readable_token,
)

TOKENS = ["a", "b", " ", "\n", "the", "\t"]
LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -1.0])


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")  # tests/conftest.py


def _tick_labels(ax, axis="x"):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_readable_token():
    assert readable_token("\n") == "⏎"
    assert readable_token(" the") == "␣the"
    assert readable_token("\t") == "⇥"
    assert readable_token("\x00") == "\\x00"
    assert readable_token("") == "∅"
    assert readable_token(7) == "7"


def test_next_token_distribution_bars_labels_and_exclusions():
    probs = next_token_probs(LOGITS)
    kept = torch.tensor([True, True, False, False, False, False])
    fig = plot_next_token_distribution(TOKENS, probs, kept)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    # Bars sorted by probability, with invisible characters made readable.
    assert _tick_labels(ax) == ["a", "b", "␣", "⏎", "the", "⇥"]
    containers = {c.get_label(): c for c in ax.containers}
    assert len(containers["sampled from (renormalised)"]) == 2
    assert len(containers["excluded (probability 0)"]) == 4
    assert all(bar.get_hatch() for bar in containers["excluded (probability 0)"])
    # The dark bars are the renormalised distribution, and are annotated with it.
    heights = [bar.get_height() for bar in containers["sampled from (renormalised)"]]
    expected = (probs[:2] / probs[:2].sum()).tolist()
    np.testing.assert_allclose(heights, expected, rtol=1e-6)
    notes = [t.get_text() for t in ax.texts]
    assert notes == [f"{v:.2f}" for v in expected]
    assert "2 of 6" in ax.get_title()


def test_next_token_distribution_top_and_given_ax():
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_next_token_distribution(TOKENS, next_token_probs(LOGITS), ax=ax, top=3)
    assert out is fig and len(_tick_labels(ax)) == 3
    assert "top 3" in ax.get_title()
    # Without kept, nothing is excluded.
    labels = [c.get_label() for c in ax.containers]
    assert labels == ["sampled from (renormalised)"]


def test_next_token_distribution_errors():
    probs = next_token_probs(LOGITS)
    with pytest.raises(ValueError, match="6 tokens"):
        plot_next_token_distribution(TOKENS, probs[:4])
    with pytest.raises(ValueError, match="not logits"):
        plot_next_token_distribution(TOKENS, LOGITS - 5)
    with pytest.raises(ValueError, match="excludes every token"):
        plot_next_token_distribution(TOKENS, probs, kept=torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="top"):
        plot_next_token_distribution(TOKENS, probs, top=0)
    with pytest.raises(ValueError, match="empty"):
        plot_next_token_distribution([], [])


def test_plot_loss():
    fig = plot_loss([3.0, 2.0, 1.5], label="train")
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [0, 1, 2] and list(line.get_ydata()) == [3.0, 2.0, 1.5]
    assert ax.get_xlabel() == "step" and ax.get_legend() is not None
    fig2 = Figure()
    ax2 = fig2.add_subplot()
    assert plot_loss(torch.tensor([1.0, 0.5]), ax=ax2) is fig2
    with pytest.raises(ValueError, match="empty"):
        plot_loss([])


def test_plot_bigram_matrix():
    probs = torch.softmax(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)), -1)
    fig = plot_bigram_matrix(probs, TOKENS)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "next token" and ax.get_ylabel() == "previous token"
    assert _tick_labels(ax, "x") == _tick_labels(ax, "y") == ["a", "b", "␣", "⏎", "the", "⇥"]
    np.testing.assert_allclose(ax.images[0].get_array(), probs.numpy(), rtol=1e-6)
    assert len(fig.axes) == 2  # the heat map and its colour bar
    with pytest.raises(ValueError, match=r"\(6, 6\)"):
        plot_bigram_matrix(probs[:, :5], TOKENS)


def test_explorer_controls_change_the_distribution_and_the_image():
    explorer = SamplingExplorer(TOKENS, LOGITS)
    torch.testing.assert_close(explorer.current_probs.float(), next_token_probs(LOGITS))
    assert "6</b> of 6" in explorer.summary.value

    seen = {bytes(explorer.image.value)}
    previous = explorer.current_probs

    explorer.temperature.value = 0.5  # sharper: the favourite gains
    assert explorer.current_probs[0] > previous[0]
    seen.add(bytes(explorer.image.value))

    explorer.top_k.value = 2
    assert (explorer.current_probs[2:] == 0).all() and explorer.current_kept.sum() == 2
    assert float(explorer.current_probs.sum()) == pytest.approx(1.0)
    assert "2</b> of 6" in explorer.summary.value
    seen.add(bytes(explorer.image.value))

    explorer.top_p.value = 0.5
    assert explorer.current_probs.tolist() == [1.0, 0, 0, 0, 0, 0]  # 0.5-nucleus is the favourite
    seen.add(bytes(explorer.image.value))
    assert len(seen) == 4  # every change redrew the picture
    assert bytes(explorer.image.value).startswith(b"\x89PNG")

    # Turning the filters off again restores every token.
    explorer.top_k.value, explorer.top_p.value = 0, 1.0
    assert bool(explorer.current_kept.all()) and (explorer.current_probs > 0).all()


def test_explorer_accepts_numpy_and_a_string_vocabulary():
    explorer = SamplingExplorer("abc", np.array([0.0, 1.0, float("-inf")]))
    assert explorer.current_probs[2] == 0
    assert explorer.widget.children  # a container to display


def test_explorer_errors():
    with pytest.raises(ValueError, match="6 tokens"):
        SamplingExplorer(TOKENS, LOGITS[:3])
    with pytest.raises(ValueError, match="1-D"):
        SamplingExplorer(TOKENS, LOGITS.view(2, 3))
    with pytest.raises(ValueError, match="NaN"):
        SamplingExplorer(["a", "b"], [0.0, float("nan")])
    with pytest.raises(ValueError, match="empty"):
        SamplingExplorer([], [])
