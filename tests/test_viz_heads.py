"""Tests for llmlab.viz.plot_head_scores: one labelled (layer x head) panel per score."""
import matplotlib
import pytest
import torch

from llmlab.viz import plot_head_scores
from llmlab.viz._render import new_figure

matplotlib.use("Agg")

SCORES = {"previous token": torch.tensor([[0.9, 0.1, 0.2], [0.05, 0.3, 0.4]]),  # (L=2, H=3)
          "self": torch.rand(2, 3)}


def test_one_panel_per_score_with_every_value_written():
    fig = plot_head_scores(SCORES, chance={"previous token": 0.07, "self": 0.07})
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2
    first = panels[0]
    assert first.get_title() == "previous token\n(chance 0.07)"
    labels = {t.get_text() for t in first.texts}
    assert {"0.90", "0.10", "0.20", "0.05", "0.30", "0.40"} == labels
    image = first.get_images()[0]
    assert image.get_clim() == (0, 1)                       # fixed scale: panels compare
    torch.testing.assert_close(torch.as_tensor(image.get_array()), SCORES["previous token"])
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"   # shows in Jupyter without pyplot


def test_draws_into_given_axes_and_titles_without_chance():
    fig = new_figure()
    axes = fig.subplots(1, 2)
    assert plot_head_scores(SCORES, axes=axes) is fig
    assert axes[1].get_title() == "self"


@pytest.mark.parametrize("scores, axes_needed, words", [
    ({}, 0, "scores is empty"),
    ({"self": torch.rand(2, 3, 4)}, 0, r"one \(L, H\) table"),
    (SCORES, 1, "2 scores need 2 axes"),
])
def test_bad_input_is_explained(scores, axes_needed, words):
    axes = new_figure().subplots(1, 2)[:axes_needed] if axes_needed else None
    with pytest.raises(ValueError, match=words):
        plot_head_scores(scores, axes=axes)
