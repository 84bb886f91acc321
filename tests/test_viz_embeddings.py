"""Tests for llmlab.viz.embeddings: static plots and the embedding explorer widget."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from llmlab.embeddings import UnknownWordError, WordVectors
from llmlab.viz import EmbeddingExplorer, plot_neighbours, plot_projection

# Three clusters of words around three directions, so neighbours are predictable.
CLUSTERS = {
    "family": ["mother", "father", "sister", "brother", "aunt", "uncle"],
    "time": ["morning", "evening", "monday", "tuesday", "night", "day"],
    "number": ["two", "three", "four", "five", "six", "seven"],
}


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")  # tests/conftest.py


@pytest.fixture(scope="module")
def vectors() -> WordVectors:
    """Hand-made vectors: each cluster's words are small perturbations of one direction."""
    rng = np.random.default_rng(0)
    words, rows = [], []
    for i, members in enumerate(CLUSTERS.values()):
        centre = np.zeros(8)
        centre[i] = 1.0
        for w in members:
            words.append(w)
            rows.append(centre + 0.2 * rng.standard_normal(8))
    return WordVectors(words, np.array(rows))


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def test_plot_projection_labels_every_word_and_highlights(vectors):
    words = CLUSTERS["family"] + CLUSTERS["time"]
    fig = plot_projection(vectors, words, highlight="sister")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert sorted(_texts(ax)) == sorted(words)
    assert len(ax.collections[0].get_offsets()) == len(words)
    colours = ax.collections[0].get_facecolors()
    assert len({tuple(c) for c in colours}) == 2  # the highlighted word stands out
    assert "PCA" in ax.get_title()


def test_plot_projection_uses_given_ax_and_rejects_one_word(vectors):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_projection(vectors, ["two", "three", "two"], ax=ax) is fig
    assert sorted(_texts(ax)) == ["three", "two"]  # repeats are drawn once
    with pytest.raises(ValueError, match="at least 2 distinct words"):
        plot_projection(vectors, ["two"])
    with pytest.raises(UnknownWordError, match="Did you mean: two"):
        plot_projection(vectors, ["twoo", "three"])


def test_plot_neighbours_bars_match_similarities(vectors):
    fig = plot_neighbours(vectors, "monday", k=4)
    ax = fig.axes[0]
    expected = vectors.neighbours("monday", k=4)
    assert [t.get_text() for t in ax.get_yticklabels()] == [w for w, _ in expected]
    np.testing.assert_allclose([bar.get_width() for bar in ax.patches], [s for _, s in expected])
    assert "monday" in ax.get_title() and ax.get_xlabel() == "cosine similarity"
    # Neighbours of a "time" word are time words.
    assert {w for w, _ in expected} <= set(CLUSTERS["time"])


def test_plot_neighbours_given_ax(vectors):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_neighbours(vectors, "two", k=3, ax=ax) is fig
    assert len(ax.patches) == 3


def test_explorer_follows_the_word(vectors):
    explorer = EmbeddingExplorer(vectors, word="mother", k=3)
    assert explorer.current_word == "mother"
    assert [w for w, _ in explorer.current_neighbours] == [w for w, _ in vectors.neighbours("mother", 3)]
    first_png = explorer.image.value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"
    assert "mother" in explorer.table.value

    explorer.word.value = "three"
    assert explorer.current_word == "three"
    assert {w for w, _ in explorer.current_neighbours} <= set(CLUSTERS["number"])
    assert explorer.image.value != first_png
    assert "four" in explorer.table.value or "two" in explorer.table.value

    explorer.k.value = 5
    assert len(explorer.current_neighbours) == 5


def test_explorer_unknown_word_is_a_message_not_an_exception(vectors):
    explorer = EmbeddingExplorer(vectors, word="sister", k=3)
    png = explorer.image.value
    explorer.word.value = "sistr"  # must not raise
    assert explorer.current_neighbours == [] and explorer.current_word is None
    assert "not in the vocabulary" in explorer.table.value
    assert "sister" in explorer.table.value  # the suggestion
    assert explorer.image.value == png  # the last good picture stays up
    explorer.word.value = " Sister "  # forgiving about case and spaces
    assert explorer.current_word == "sister"


def test_explorer_defaults_and_display(vectors):
    explorer = EmbeddingExplorer(vectors, max_options=5)
    assert explorer.word.value == "mother"  # a friendly starting word
    assert len(explorer.word.options) == 5
    assert explorer.widget.children  # a container the notebook can display
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "image/png" in bundle and bundle["text/plain"].startswith("[EmbeddingExplorer")


def test_crowded_word_maps_keep_their_labels_apart():
    """Lesson 01's map once piled labels on each other (eldest/mother/brother, jane/weston/...)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from _figure_audit import audit

    rng = np.random.default_rng(1)
    for n, spread in ((11, 0.05), (31, 0.3)):
        # A tight clump of n words around the picked one, as the nearest neighbours are.
        words = ["woodhouse", "jane", "weston", "fairfax", "eldest", "mother", "brother",
                 "sister"] + [f"word{i}" for i in range(n - 8)]
        rows = np.zeros((n, 8))
        rows[:, 0] = 1.0
        rows[:, 1:] = spread * rng.standard_normal((n, 7))
        crowded = WordVectors(words, rows)
        fig = plot_projection(crowded, words, highlight="sister")
        overlaps = [p for p in audit(fig, fig.dpi) if "overlap" in p]
        assert not overlaps, (n, overlaps)
        assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(words)  # all labelled
