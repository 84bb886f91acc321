"""Pictures of word vectors: a 2-D PCA map, a neighbour bar chart, and an explorer widget."""
from __future__ import annotations

import html

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from llmlab.embeddings import UnknownWordError, WordVectors
from llmlab.viz._render import LiveWidget, figure_to_png, new_axes, new_figure, picture

__all__ = ["plot_projection", "plot_neighbours", "EmbeddingExplorer"]

_PLAIN, _ACCENT = "#1f77b4", "#d62728"  # matplotlib's tab:blue and tab:red, valid in HTML too
# Where the explorer starts when no word is given: the first of these the vocabulary knows.
_STARTING_WORDS = ("mother", "morning", "king", "two")


def _draw_projection(ax, vectors: WordVectors, words: list[str], highlight: set[str]) -> None:
    """Scatter the words' 2-D PCA coordinates on ax, labelling every point."""
    coords = vectors.project_2d(words)  # (N, 2)
    colours = [_ACCENT if w in highlight else _PLAIN for w in words]
    ax.scatter(coords[:, 0], coords[:, 1], c=colours, s=25)
    # Only directions of spread matter in PCA, so the axes carry no units.
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(f"{len(words)} word vectors projected to 2-D (PCA)")
    ax.margins(0.15)  # room for the labels of the outermost points
    _place_labels(ax, coords, words, highlight)


# Where a label may sit around its point (offsets in points), tried in this order.
_SPOTS = ((4, 3, "left", "bottom"), (4, -3, "left", "top"), (-4, 3, "right", "bottom"),
          (-4, -3, "right", "top"), (0, 6, "center", "bottom"), (0, -6, "center", "top"),
          (7, 0, "left", "center"), (-7, 0, "right", "center"))


def _place_labels(ax, coords, words: list[str], highlight: set[str]) -> None:
    """Label every point, each at the first spot around it that no earlier label covers.

    The layout is settled first (one draw), so the pixel positions measured here are final; the
    labels are left out of the layout, so placing them cannot move the axes again.
    """
    ax.set(xlim=ax.get_xlim(), ylim=ax.get_ylim())  # freeze the limits the margins gave
    canvas = ax.figure.canvas
    if not hasattr(canvas, "get_renderer"):  # a bare Figure(): measuring needs a real canvas
        canvas = FigureCanvasAgg(ax.figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    taken = []  # boxes (pixels) of the labels placed so far
    for (x, y), word in zip(coords, words):
        label = ax.annotate(word, (x, y), xytext=_SPOTS[0][:2], textcoords="offset points",
                            fontsize=9, annotation_clip=False,
                            color=_ACCENT if word in highlight else "black",
                            fontweight="bold" if word in highlight else "normal")
        label.set_in_layout(False)
        best = None  # (area covered, spot, box): the least covered spot so far
        for dx, dy, ha, va in _SPOTS:
            label.xyann = (dx, dy)
            label.set(ha=ha, va=va)
            box = label.get_window_extent(renderer).padded(1)
            clash = sum(_area(Bbox.intersection(box, other)) for other in taken)
            if best is None or clash < best[0]:
                best = (clash, (dx, dy, ha, va), box)
            if clash == 0:
                break
        dx, dy, ha, va = best[1]
        label.xyann = (dx, dy)
        label.set(ha=ha, va=va)
        taken.append(best[2])


def _area(box) -> float:
    """Area (px²) of a box, 0 for None (what Bbox.intersection returns for disjoint boxes)."""
    return 0.0 if box is None else box.width * box.height


def _draw_neighbours(ax, word: str, neighbours: list[tuple[str, float]]) -> None:
    """Horizontal bars of neighbour similarities on ax, the most similar at the top."""
    names = [w for w, _ in neighbours]
    sims = [s for _, s in neighbours]
    ax.barh(range(len(names)), sims, color=_PLAIN)
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()  # rank 1 at the top, as in the HTML list
    ax.set_xlim(min(0.0, min(sims, default=0.0)) - 0.05, 1.0)  # cosine similarity is at most 1
    ax.set_xlabel("cosine similarity")
    ax.set_title(f"nearest neighbours of {word!r}")


def plot_projection(vectors: WordVectors, words, highlight=None, ax=None) -> Figure:
    """Scatter plot of the given words' vectors projected to 2-D by PCA, with labels."""
    words = list(dict.fromkeys(words))  # drop repeats, keep the order
    if len(words) < 2:
        raise ValueError(f"plot_projection needs at least 2 distinct words, got {words}")
    highlight = {highlight} if isinstance(highlight, str) else set(highlight or ())
    fig, ax = new_axes(ax, figsize=(6.0, 5.0))
    _draw_projection(ax, vectors, words, highlight)
    return fig


def plot_neighbours(vectors: WordVectors, word: str, k: int = 10, ax=None) -> Figure:
    """Horizontal bar chart of the k nearest neighbours of word and their cosine similarities."""
    neighbours = vectors.neighbours(word, k)  # raises UnknownWordError with suggestions
    fig, ax = new_axes(ax, figsize=(5.0, 0.3 * k + 1.2))
    _draw_neighbours(ax, word, neighbours)
    return fig


def _neighbour_table(word: str, neighbours: list[tuple[str, float]]) -> str:
    """HTML list of neighbours, each with its similarity and a bar whose length shows it."""
    rows = "".join(
        f"<tr><td style='text-align:right'>{rank}</td><td>{html.escape(w)}</td>"
        f"<td style='text-align:right'>{s:.3f}</td><td><div style='width:{max(s, 0.0) * 120:.0f}px;"
        f"height:10px;background:{_PLAIN}'></div></td></tr>"
        for rank, (w, s) in enumerate(neighbours, start=1))
    return (f"<b>Nearest neighbours of <i>{html.escape(word)}</i></b>"
            f"<table><tr><th>#</th><th>word</th><th>cosine</th><th></th></tr>{rows}</table>")


class EmbeddingExplorer(LiveWidget):
    """Pick or type a word; see its nearest neighbours as a list, a bar chart and a 2-D map."""

    def __init__(self, vectors: WordVectors, word: str | None = None, k: int = 10,
                 max_options: int = 3000):
        self.vectors = vectors
        if word is None:
            word = next((w for w in _STARTING_WORDS if w in vectors), vectors.words[0])
        # vectors.words is most frequent first: offer the common words only, which keeps the
        # payload sent to the browser small; any other vocabulary word can still be typed.
        self.word = widgets.Combobox(value=word, options=tuple(vectors.words[:max_options]),
                                     description="word", placeholder="type a word",
                                     ensure_option=False, continuous_update=False)
        self.k = widgets.IntSlider(value=k, min=2, max=min(30, len(vectors) - 1),
                                   description="neighbours", continuous_update=False,
                                   layout=widgets.Layout(width="460px"))  # ~11 px per step
        self.image = picture()
        self.table = widgets.HTML()
        self.widget = widgets.VBox([widgets.HBox([self.word, self.k]),
                                    self.image, self.table])  # stacked: fits a laptop-width notebook
        self.current_word = None
        self.current_neighbours: list[tuple[str, float]] = []
        self.word.observe(self._update, names="value")
        self.k.observe(self._update, names="value")
        self._update()

    def _update(self, change=None) -> None:
        """Recompute the neighbours of the chosen word and redraw the picture and the list."""
        word = self.word.value.strip().lower()  # forgive "Emma " typed with a capital and a space
        if not word:
            self.table.value = "Type a word (lower-case) and press Enter."
            return
        try:
            neighbours = self.vectors.neighbours(word, self.k.value)
        except UnknownWordError as err:
            # A friendly message instead of a traceback; the last good picture stays up.
            self.current_word, self.current_neighbours = None, []
            self.table.value = f"<span style='color:{_ACCENT}'>{html.escape(str(err))}</span>"
            return
        self.current_word, self.current_neighbours = word, neighbours
        fig = new_figure((10.0, 4.5))
        ax_map, ax_bars = fig.subplots(1, 2, width_ratios=(3, 2))
        _draw_projection(ax_map, self.vectors, [word] + [w for w, _ in neighbours], {word})
        _draw_neighbours(ax_bars, word, neighbours)
        self.image.value = figure_to_png(fig)  # replacing the bytes in place: no flicker
        self.table.value = _neighbour_table(word, neighbours)
