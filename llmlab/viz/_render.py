"""Shared drawing plumbing: figures without pyplot, and figures as PNG bytes for widgets."""
from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_axes(ax=None, figsize=(6.0, 4.0)):
    """Return (fig, ax): the given ax and its figure, or a fresh pyplot-free figure with one ax."""
    if ax is not None:
        return ax.figure, ax
    # A bare Figure (not plt.figure) touches no global state and is not auto-shown twice
    # by the inline backend; returning it from a cell displays it once.
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (what a widget sends to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
