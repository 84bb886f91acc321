"""Shared drawing plumbing: figures without pyplot, and figures as PNG bytes for widgets."""
from __future__ import annotations

import base64
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


def picture(**kwargs):
    """An image widget for PNG frames, shown at its own size (shrunk to fit, never stretched)."""
    import ipywidgets as W  # the plotting functions work without it

    # A VBox stretches its children to its width (flex align-items: stretch): a 576 px frame was
    # drawn 964 px wide, blurred. flex-start keeps the frame's own width; max-width shrinks it to
    # fit a narrow notebook, and height auto keeps its proportions.
    layout = W.Layout(align_self="flex-start", max_width="100%", height="auto")
    return W.Image(format="png", layout=layout, **kwargs)


def figure_to_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (what a widget sends to the browser)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class LiveWidget:
    """Mixin for explorers: show self.widget, with a picture and a note where it cannot run.

    Jupyter picks the richest output it may show. A live, trusted notebook shows the widget; a
    notebook just opened from disk is untrusted, so JupyterLab skips the widget and falls back to
    the next type: the explorer's current view (_fallback), else the note, never the widget's
    repr ("VBox(children=...").
    """

    def _fallback(self) -> dict:
        """The current view as plain output: the picture in self.image, if there is one."""
        png = getattr(getattr(self, "image", None), "value", b"")
        return {"image/png": base64.b64encode(png).decode("ascii")} if png else {}

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        data = dict(self.widget._repr_mimebundle_())
        name = type(self).__name__
        data["text/plain"] = f"[{name}: run this cell to use it; it needs a running kernel]"
        data.update(self._fallback())
        return data
