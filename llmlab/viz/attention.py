"""Look at any model's attention: heatmaps, head grids, per-query bars and an explorer widget."""
from __future__ import annotations

import pathlib
import warnings

import ipywidgets as W
import numpy as np

from ._attention_data import AttentionData, as_attention, head_view, window
from ._attention_draw import (KEY_LABEL, QUERY_LABEL, Heatmap, HeadGrid, QueryBars, mask_handle,
                              png_bytes, readable_token, tick_families)
from ._render import LiveWidget, new_axes, new_figure, picture

__all__ = ["AttentionData", "as_attention", "plot_attention", "plot_attention_grid",
           "plot_query_attention", "AttentionExplorer"]


def plot_attention(weights, query_tokens=None, key_tokens=None, layer=0, head=0, ax=None, *,
                   masked=None, max_tokens=64, start=0, annotate=False, vmax=1.0,
                   cmap="viridis", colorbar=True):
    """Draw one head (or head="mean") as a heatmap: queries down the side, keys along the bottom."""
    data = as_attention(weights, query_tokens, key_tokens, masked=masked)
    matrix, hidden, q_labels, k_labels, _, title = head_view(data, layer, head, max_tokens, start)
    if annotate and max(matrix.shape) > 12:
        # Past 12 tokens a cell is narrower than "0.17" at a readable 8 points: numbers collide.
        raise ValueError(f"annotate=True would print {matrix.size} numbers, too small to read; "
                         "show at most 12 tokens (e.g. max_tokens=12) or leave annotate off")
    side = min(8.0, 2.5 + 0.1 * max(matrix.shape))
    own_figure = ax is None
    fig, ax = new_axes(ax, figsize=(side + (1.3 if colorbar else 0), side))
    heat = Heatmap(ax, cmap, vmax)
    heat.show(matrix, hidden, q_labels, k_labels, tick_families(q_labels + k_labels), title=title)
    ax.set(xlabel=KEY_LABEL, ylabel=QUERY_LABEL)
    if hidden is not None and hidden.any() and own_figure:
        fig.legend(handles=[mask_handle()], loc="outside lower right", frameon=False, fontsize=8)
    elif hidden is not None and hidden.any():
        # Someone else's figure: a legend inside the ax would cover cells, so the axis says it.
        ax.set_xlabel(f"{KEY_LABEL} · hatched = masked")
    if colorbar:
        ax.figure.colorbar(heat.image, ax=ax, label="attention weight", shrink=0.8)
    if annotate:
        top = vmax or float(matrix.max()) or 1.0
        for (i, j), v in np.ndenumerate(matrix):
            if hidden is None or not hidden[i, j]:
                # Light text on the dark low end of the map, dark text on the bright high end.
                ax.text(j, i, f"{v:.2f}", ha="center", va="center",
                        fontsize=9 if max(matrix.shape) <= 8 else 8,  # >= 10 px at 100 dpi
                        color="white" if v < 0.55 * top else "black")
    return fig


def plot_query_attention(weights, layer=0, head=0, query_index=-1, ax=None, *, query_tokens=None,
                         key_tokens=None, masked=None, max_tokens=64, start=0, vmax=1.0,
                         cmap="viridis"):
    """Bar chart of where one query token looks: its weight on every key."""
    data = as_attention(weights, query_tokens, key_tokens, masked=masked)
    fig, ax = new_axes(ax, figsize=(7.0, 3.4))
    QueryBars(ax, cmap, vmax).show(data, layer, head, query_index, max_tokens, start,
                                   tick_families(data.query_tokens + data.key_tokens))
    return fig


def plot_attention_grid(weights, query_tokens=None, key_tokens=None, layer=0, *, masked=None,
                        max_tokens=64, start=0, vmax=1.0, cmap="viridis", ncols=None):
    """Small multiples on one 0–1 scale: the heads of a layer, or layers × heads (layer=None)."""
    data = as_attention(weights, query_tokens, key_tokens, masked=masked)
    grid = HeadGrid(data, layer is None, cmap, vmax, max_tokens, ncols)
    grid.show(0 if layer is None else layer, start)
    return grid.fig


class AttentionExplorer(LiveWidget):
    """Pick a layer, head and query token and see where attention goes (rendered server-side)."""

    def __init__(self, weights, query_tokens=None, key_tokens=None, *, batch_index=None,
                 masked=None, check_rows=True, max_tokens=64, cmap="viridis", vmax=1.0,
                 dpi=100, export_dpi=200):
        self.data = as_attention(weights, query_tokens, key_tokens, batch_index=batch_index,
                                 masked=masked, check_rows=check_rows)
        L, H, T_q, T_k = self.data.weights.shape
        self.max_tokens, self.cmap, self.vmax = max_tokens, cmap, vmax
        self.dpi, self.export_dpi = dpi, export_dpi
        self.families = tick_families(self.data.query_tokens + self.data.key_tokens)
        # Everything lives on the instance, so explorers in one notebook never share state.
        self._views, self._backgrounds, self._syncing = {}, {}, False

        # Narrow controls and fixed-width view buttons: at the default widths the three did not fit
        # one row of a 1400 px window, and the buttons wrapped ("all layers" on a line of its own).
        narrow = W.Layout(width="220px")
        self.layer = W.Dropdown(options=[(f"layer {i}", i) for i in range(L)], description="layer",
                                layout=narrow)
        heads = [("mean of heads", "mean")] + [(f"head {h}", h) for h in range(H)]
        self.head = W.Dropdown(options=heads, value=0, description="head", layout=narrow)
        views = [("one head", "head"), ("all heads", "layer")]
        if 1 < L and L * H <= 64:
            views.append(("all layers", "all"))
        self.view = W.ToggleButtons(options=views, value="head", style={"button_width": "96px"},
                                    layout=W.Layout(flex="0 0 auto"))  # never squeezed to wrap
        self.query = W.Dropdown(options=[(f"{i}: {readable_token(t)}", i)
                                         for i, t in enumerate(self.data.query_tokens)],
                                value=window(T_q, max_tokens, 0)[1] - 1, description="query")
        span = max(T_q, T_k) - min(max(T_q, T_k), max_tokens or max(T_q, T_k))
        self.start = W.IntSlider(value=0, min=0, max=span, description="start",
                                 continuous_update=False,
                                 layout=W.Layout(display=None if span else "none"))
        self.path = W.Text(description="file")
        self.save_button = W.Button(description="Save PNG", icon="download")
        self.save_svg_button = W.Button(description="Save SVG", icon="download")
        self.status = W.Label()
        self.image = picture()
        self._auto_path = self.path.value = self._default_path()
        for control in (self.layer, self.head, self.view, self.query, self.start):
            control.observe(self._on_change, names="value")
        self.save_button.on_click(lambda _: self._on_save("png"))
        self.save_svg_button.on_click(lambda _: self._on_save("svg"))
        self.widget = W.VBox([W.HBox([self.layer, self.head, self.view]),
                              W.HBox([self.query, self.start]), self.image,
                              W.HBox([self.path, self.save_button, self.save_svg_button,
                                      self.status])])
        self.redraw()

    def _default_path(self) -> str:
        """A file name naming the current view, e.g. attention_L0_H3.png."""
        return {"head": f"attention_L{self.layer.value}_H{self.head.value}.png",
                "layer": f"attention_L{self.layer.value}_heads.png",
                "all": "attention_all_layers.png"}[self.view.value]

    def _on_change(self, change) -> None:
        """Keep the query inside the crop window (moving the window if needed), then redraw."""
        if self._syncing:
            return
        self._syncing = True
        try:
            lo, hi = window(self.data.weights.shape[2], self.max_tokens, self.start.value)
            if change["owner"] is self.query and not lo <= self.query.value < hi:
                self.start.value = max(0, self.query.value - self.max_tokens // 2)
            elif change["owner"] is self.start and not lo <= self.query.value < hi:
                self.query.value = min(max(self.query.value, lo), hi - 1)
        finally:
            self._syncing = False
        self.redraw()

    def _head_view(self):
        """The kept "one head" figure: heatmap on the left, the chosen query's bars on the right."""
        fig = new_figure(figsize=(10.0, 6.2), dpi=self.dpi)  # 1000 px: shown unshrunk
        ax_heat, ax_bar = fig.subplots(1, 2, width_ratios=[1.15, 1])
        heat, bars = Heatmap(ax_heat, self.cmap, self.vmax), QueryBars(ax_bar, self.cmap, self.vmax)
        fig.colorbar(heat.image, ax=ax_heat, label="attention weight", shrink=0.8)
        ax_heat.set(xlabel=KEY_LABEL, ylabel=QUERY_LABEL)
        if self.data.masked is not None and self.data.masked.any():
            fig.legend(handles=[mask_handle()], loc="outside upper right", frameon=False,
                       fontsize=8)
        return fig, heat, bars

    def _update(self):
        """Point the current view's kept figure at the controls: (figure, artists, relabelled)."""
        view, layer, start = self.view.value, self.layer.value, self.start.value
        if view == "head":
            if view not in self._views:
                self._views[view] = self._head_view()
            fig, heat, bars = self._views[view]
            matrix, hidden, q_labels, k_labels, qa, title = head_view(
                self.data, layer, self.head.value, self.max_tokens, start)
            changed = heat.show(matrix, hidden, q_labels, k_labels, self.families,
                                row=self.query.value - qa, title=title)
            changed |= bars.show(self.data, layer, self.head.value, self.query.value,
                                 self.max_tokens, start, self.families)
            self.current_query_weights = bars.values
            self.current_weights, self.current_title = matrix, title
            return fig, heat.artists() + bars.artists(), changed
        if view not in self._views:
            self._views[view] = HeadGrid(self.data, view == "all", self.cmap, self.vmax,
                                          self.max_tokens, dpi=self.dpi)
        grid = self._views[view]
        changed = grid.show(layer, start, row=self.query.value)
        self.current_weights, self.current_title = grid.weights, grid.title
        qa = window(self.data.weights.shape[2], self.max_tokens, start)[0]
        self.current_query_weights = grid.weights[:, self.query.value - qa]  # (panels, T_k')
        return grid.fig, grid.artists(), changed

    def redraw(self) -> None:
        """Redraw the current view and send it to the image widget as PNG bytes."""
        self.head.disabled = self.view.value != "head"
        self.layer.disabled = self.view.value == "all"
        fig, artists, changed = self._update()
        self.current_figure = fig
        if self.path.value == self._auto_path:  # follow the view until the user types a name
            self._auto_path = self.path.value = self._default_path()
        canvas = fig.canvas
        for artist in artists:
            artist.set_animated(True)  # left out of the kept background
        with warnings.catch_warnings():
            # A missing-glyph warning would repeat on every redraw; tick_families warned once.
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            # Blitting: draw axes, ticks and colourbar only when they change, then paint just
            # the changing artists over a copy of them (ten times faster than a full savefig).
            # With vmax=None the colourbar rescales each frame, so it cannot stay in the background.
            if changed or self.vmax is None or fig not in self._backgrounds:
                canvas.draw()
                self._backgrounds[fig] = canvas.copy_from_bbox(fig.bbox)
            else:
                canvas.restore_region(self._backgrounds[fig])
            for artist in artists:
                fig.draw_artist(artist)
        self.image.value = png_bytes(np.asarray(canvas.buffer_rgba()))

    def save(self, fmt: str = "png") -> pathlib.Path:
        """Write the current view to the file named in the path box, as PNG or SVG."""
        path = pathlib.Path(self.path.value.strip() or self._default_path()).with_suffix("." + fmt)
        fig, artists, _ = self._update()
        for artist in artists:
            artist.set_animated(False)  # a file needs every artist drawn
        try:
            fig.savefig(path, format=fmt, dpi=self.export_dpi)
        finally:
            for artist in artists:
                artist.set_animated(True)
            self._backgrounds.pop(fig, None)  # savefig drew at another dpi: redraw fully next time
        return path

    def _on_save(self, fmt: str) -> None:
        """Save from a button and report the path (or what went wrong) in the status label."""
        try:
            self.status.value = f"saved {self.save(fmt)}"
        except OSError as exc:  # a callback must not raise where nobody sees it
            self.status.value = f"could not save: {exc} (check that the folder exists)"

    def static_figure(self):
        """A fresh static figure of the current view, for where widgets cannot render."""
        if self.view.value == "head":
            return plot_attention(self.data, layer=self.layer.value, head=self.head.value,
                                  max_tokens=self.max_tokens, start=self.start.value,
                                  vmax=self.vmax, cmap=self.cmap)
        layer = None if self.view.value == "all" else self.layer.value
        return plot_attention_grid(self.data, layer=layer, max_tokens=self.max_tokens,
                                   start=self.start.value, vmax=self.vmax, cmap=self.cmap)
