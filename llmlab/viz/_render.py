"""Shared drawing plumbing: figures without pyplot, and figures as PNG bytes for widgets."""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


class CourseFigure(Figure):
    """A pyplot-free Figure that shows itself as a PNG in any Jupyter front end."""

    def _repr_png_(self) -> bytes:
        # IPython uses this when no matplotlib backend integration is active (no `%matplotlib
        # inline`, VS Code, nbconvert); when the inline backend is active its own formatter wins,
        # so a figure is never shown twice.
        return figure_to_png(self)


def new_figure(figsize=(6.0, 4.0), **kwargs) -> CourseFigure:
    """Return a fresh figure that touches no global state (no pyplot, no rcParams)."""
    kwargs.setdefault("layout", "constrained")
    fig = CourseFigure(figsize=figsize, **kwargs)
    FigureCanvasAgg(fig)  # attach a canvas so the figure can render without pyplot
    return fig


def new_axes(ax=None, figsize=(6.0, 4.0)):
    """Return (fig, ax): the given ax and its figure, or a fresh pyplot-free figure with one ax."""
    if ax is not None:
        return ax.figure, ax
    # A bare figure (not plt.figure) is not auto-shown by the inline backend, so returning it
    # from a cell displays it exactly once.
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (what a widget sends to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
