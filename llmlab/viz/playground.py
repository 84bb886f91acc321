"""The attention playground: edit one query, toggle scaling and the causal mask, see every step."""
from __future__ import annotations

import html
import math

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from llmlab.attention import AttentionSteps, attention_steps, causal_mask
from llmlab.viz._render import LiveWidget, figure_to_png, new_figure, picture
from llmlab.viz.attention import plot_attention
from llmlab.viz.sampling import readable_token

__all__ = ["plot_attention_steps", "AttentionPlayground"]

MAX_TOKENS = 32  # more bars than this per panel cannot be read; the playground is for short examples
MAX_SLIDERS = 8  # one slider per query component, for the first few components
_MASK_GREY, _HATCH_GREY = "#e4e4e4", "#9a9a9a"  # the heatmap's colours for hidden cells
_SCORE_COLOUR = "#6a8caf"
_FIGSIZE = (10.0, 6.2)  # at 100 dpi: 1000 px, the notebook's output width
_PANEL_TITLES = ("1 · scores  q·k", "2 · scaled scores", "3 · masked scores", "4 · weights = softmax")


def _tokens(tokens, n: int, what: str) -> list[str]:
    """Check there is one token per position and return readable labels."""
    if isinstance(tokens, str):
        raise TypeError(f"{what} is one string ({tokens[:30]!r}); pass a list with one token per "
                        "position, e.g. text.split()")
    labels = [readable_token(t) for t in tokens]
    if len(labels) != n:
        raise ValueError(f"{what} has {len(labels)} entries but q has {n} rows: pass one token per "
                         "row of q (one query per token), in the same order")
    return labels


def _one_sequence(steps) -> AttentionSteps:
    """Return the steps of one sequence and one head as float64 NumPy arrays (T_q, T_k)."""
    if not isinstance(steps, AttentionSteps):
        raise TypeError(f"steps must be an AttentionSteps (from llmlab.attention.attention_steps), "
                        f"got {type(steps).__name__}")
    arrays = [t.detach().to("cpu", torch.float64).numpy() if isinstance(t, torch.Tensor)
              else np.asarray(t, dtype=np.float64) for t in steps]
    shape = arrays[3].shape
    if len(shape) < 2 or any(n != 1 for n in shape[:-2]):
        raise ValueError(f"steps.weights has shape {shape}: pass one sequence and one head "
                         "(T_q, T_k), e.g. AttentionSteps(*(t[0] for t in steps)) for the first")
    return AttentionSteps(*(a.reshape(a.shape[-2:]) for a in arrays))


def _scale_note(scores: np.ndarray, scaled: np.ndarray) -> str:
    """Describe how the scaled scores relate to the scores: '÷ √d_k = ÷ 2' or 'not scaled'."""
    use = np.isfinite(scores) & (np.abs(scaled) > 1e-12)
    factor = float(np.median(scores[use] / scaled[use])) if use.any() else 1.0
    if abs(factor - 1.0) < 1e-9:
        return "not scaled: = scores"
    d_k = factor ** 2
    if abs(d_k - round(d_k)) < 1e-6:
        return f"scores ÷ √d_k = ÷ √{round(d_k)} = ÷ {factor:.3g}"
    return f"scores ÷ {factor:.3g}"


def _bars(ax, values, hidden, labels, annotate: bool, colours=None) -> None:
    """Signed bars for one query row; hidden keys get a hatched band marked −∞."""
    x = np.arange(len(values))
    shown = np.where(hidden, 0.0, values)
    ax.bar(x, shown, width=0.7, color=_SCORE_COLOUR if colours is None else colours)
    ax.axhline(0.0, color="black", lw=0.6)
    for j in np.flatnonzero(hidden):
        ax.axvspan(j - 0.42, j + 0.42, facecolor=_MASK_GREY, edgecolor=_HATCH_GREY, hatch="////",
                   lw=0)
        if not np.isfinite(values[j]):  # a masked score: say what the mask put there
            ax.text(j, 0.5, "−∞", transform=ax.get_xaxis_transform(), ha="center", va="center",
                    fontsize=9, bbox={"fc": "white", "ec": "none", "pad": 1.0})
    if annotate:
        for j in np.flatnonzero(np.isfinite(values)):
            v = values[j]
            text = "0" if v == 0 and hidden[j] else f"{v:.2f}"  # a masked weight is exactly 0
            ax.annotate(text, (j, v), xytext=(0, 2 if v >= 0 else -2), textcoords="offset points",
                        ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
    ax.set_xticks(x, labels, rotation=90 if max(map(len, labels)) > 3 else 0, fontsize=8)
    ax.set_xlim(-0.6, len(values) - 0.4)


def plot_attention_steps(steps, tokens, query_index: int = -1, fig=None, *, key_tokens=None,
                         cmap="viridis"):
    """Draw one query's way through attention (scores, scaled, masked, weights) beside all weights."""
    s = _one_sequence(steps)
    T_q, T_k = s.weights.shape
    if max(T_q, T_k) > MAX_TOKENS:
        raise ValueError(f"{max(T_q, T_k)} tokens are too many bars to read (at most {MAX_TOKENS}): "
                         "slice the sequence first, or use AttentionExplorer for long sequences")
    q_labels = _tokens(tokens, T_q, "tokens")
    k_labels = q_labels if key_tokens is None else _tokens(key_tokens, T_k, "key_tokens")
    if isinstance(query_index, bool) or not isinstance(query_index, (int, np.integer)) \
            or not -T_q <= query_index < T_q:
        raise ValueError(f"query_index={query_index!r} is out of range: there are {T_q} queries, "
                         f"so pass an int from 0 to {T_q - 1}")
    i = int(query_index) % T_q
    # Hidden = the mask put -inf there (a score that was already -inf is not a mask's doing).
    hidden = np.isneginf(s.masked_scores) & ~np.isneginf(s.scaled_scores)  # (T_q, T_k)
    if fig is None:
        fig = new_figure(_FIGSIZE)
    elif fig.axes:
        raise ValueError("fig already has axes: pass a new, empty Figure (or leave fig=None)")
    grid = fig.add_gridspec(4, 2, width_ratios=[1.0, 1.25])
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[r, 0], sharex=axes[0]) for r in (1, 2, 3)]
    heat_ax = fig.add_subplot(grid[:, 1])

    annotate = T_k <= 12
    row_hidden = hidden[i]
    no_hidden = np.zeros(T_k, dtype=bool)
    _bars(axes[0], s.scores[i], no_hidden, k_labels, annotate)
    _bars(axes[1], s.scaled_scores[i], no_hidden, k_labels, annotate)
    _bars(axes[2], s.masked_scores[i], row_hidden, k_labels, annotate)
    colours = [matplotlib.colormaps[cmap](w) for w in s.weights[i]]  # as in the heatmap
    _bars(axes[3], s.weights[i], row_hidden, k_labels, annotate, colours)
    # Panels 1-3 share one y-range, so the shrinking done by the scaling is visible.
    finite = np.concatenate([s.scores[i], s.scaled_scores[i][np.isfinite(s.scaled_scores[i])]])
    lo, hi = min(0.0, float(finite.min())), max(0.0, float(finite.max()))
    pad = 0.2 * (hi - lo or 1.0)
    for ax in axes[:3]:
        ax.set_ylim(lo - (pad if lo < 0 else 0), hi + pad)
    axes[3].set_ylim(0, 1.15)
    n_hidden = int(row_hidden.sum())
    notes = ("", _scale_note(s.scores, s.scaled_scores),
             f"{n_hidden} hidden key{'s' if n_hidden != 1 else ''} → −∞" if n_hidden
             # The mask is on but hides nothing from this query (e.g. the last one under a causal
             # mask): say so, rather than "no mask", which reads as if the mask were off.
             else "mask on, nothing hidden from this query" if hidden.any() else "no mask",
             f"sum = {s.weights[i].sum():.2f}")
    for ax, title, note in zip(axes, _PANEL_TITLES, notes):
        ax.set_title(f"{title}   {note}".rstrip(), loc="left", fontsize=9, pad=3)
        ax.tick_params(axis="y", labelsize=8)
        if ax is not axes[3]:
            ax.tick_params(axis="x", labelbottom=False)
    axes[3].set_xlabel("key (attended to)")

    plot_attention(s.weights, q_labels, k_labels, ax=heat_ax, masked=hidden if hidden.any() else None,
                   annotate=annotate, cmap=cmap)
    # plot_attention's x label already says "hatched = masked" when something is hidden.
    heat_ax.set_title("all queries (each row sums to 1)", loc="left", fontsize=9)
    # The chosen query's row, outlined black under white so it shows on any colour.
    for colour, width in (("black", 3.0), ("white", 1.3)):
        heat_ax.add_patch(Rectangle((-0.5, i - 0.5), T_k, 1, fill=False, ec=colour, lw=width,
                                    clip_on=False))
    fig.suptitle(f"where query {i} {q_labels[i]!r} looks", fontsize=11)
    return fig


def _matrix(x, name: str) -> torch.Tensor:
    """Return x as a float64 (T, d) tensor, or raise a clear error."""
    t = torch.as_tensor(x.detach() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float),
                        dtype=torch.float64)
    if t.dim() != 2:
        raise ValueError(f"{name} has shape {tuple(t.shape)} but the playground takes one sequence "
                         f"(T, d): pick one with {name}[0] (and one head) first")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf: pass finite numbers")
    return t


class AttentionPlayground(LiveWidget):
    """Pick a query token, edit its vector, toggle scaling and the causal mask; see each step."""

    # Static twin: plot_attention_steps(playground.current_steps, tokens, query_index).

    def __init__(self, tokens, q, k, v, *, query_index: int = -1, scale: bool = True,
                 causal: bool = False, sharpness: float = 1.0, slider_range: float | None = None,
                 dpi: int = 100):
        import ipywidgets as W  # only the widget needs it; plot_attention_steps works without

        q, k, v = _matrix(q, "q"), _matrix(k, "k"), _matrix(v, "v")  # (T, d_k), (T, d_k), (T, d_v)
        T = q.shape[0]
        self.tokens = _tokens(tokens, T, "tokens")
        if k.shape[0] != T or v.shape[0] != T:
            raise ValueError(f"q has {T} rows but k has {k.shape[0]} and v has {v.shape[0]}: the "
                             "playground shows self-attention, one q, k and v row per token")
        if T > MAX_TOKENS:
            raise ValueError(f"{T} tokens are too many to read (at most {MAX_TOKENS}): pass a slice, "
                             "e.g. tokens[:16], q[:16], k[:16], v[:16]")
        attention_steps(q, k, v)  # raises a clear error for mismatched widths
        if isinstance(query_index, bool) or not isinstance(query_index, int) or not -T <= query_index < T:
            raise ValueError(f"query_index={query_index!r} must be an int from 0 to {T - 1}")
        self.k, self.v, self.dpi = k, v, dpi
        self._q0, self._q = q.clone(), q.clone()  # the given queries, and the edited ones
        self._syncing, self._positions = False, None

        d_k = q.shape[1]
        lim = slider_range or max(2.0, math.ceil(2 * float(q.abs().max())))
        self.query = W.Dropdown(options=[(f"{j}: {t}", j) for j, t in enumerate(self.tokens)],
                                value=query_index % T, description="query")
        self.components = tuple(
            W.FloatSlider(value=0.0, min=-lim, max=lim, step=0.05, description=f"q[{j}]",
                          continuous_update=False, readout_format=".2f")
            for j in range(min(d_k, MAX_SLIDERS)))
        self.reset = W.Button(description="reset this query", icon="undo")
        self.scale = W.Checkbox(value=scale, description="divide by √d_k", indent=False)
        self.causal = W.Checkbox(value=causal, description="causal mask", indent=False)
        self.sharpness = W.FloatLogSlider(value=sharpness, base=10, min=-1, max=1, step=0.05,
                                          description="× every q", continuous_update=False)
        self.image = picture()
        self.summary = W.HTML()
        self.query.observe(self._on_query, names="value")
        for control in (*self.components, self.scale, self.causal, self.sharpness):
            control.observe(self._on_change, names="value")
        self.reset.on_click(self._on_reset)
        edited = "" if d_k <= MAX_SLIDERS else f" (the first {MAX_SLIDERS} of its {d_k} components)"
        self.widget = W.VBox([
            W.HBox([self.query, self.scale, self.causal, self.sharpness],
                   layout=W.Layout(flex_flow="row wrap")),  # wraps on narrow screens
            W.HTML(f"<small>edit the chosen query vector{edited}:</small>"),
            W.GridBox(list(self.components) + [self.reset],
                      layout=W.Layout(grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))")),
            self.image, self.summary])
        self.current_steps: AttentionSteps | None = None
        self._load_sliders()
        self.redraw()

    @classmethod
    def from_embeddings(cls, tokens, x, W_q, W_k, W_v, **kwargs) -> "AttentionPlayground":
        """Build the playground from embeddings x (T, d_model) and projections (d_model, d_k / d_v)."""
        x = _matrix(x, "x")
        mats = {"W_q": _matrix(W_q, "W_q"), "W_k": _matrix(W_k, "W_k"), "W_v": _matrix(W_v, "W_v")}
        for name, W_ in mats.items():
            if W_.shape[0] != x.shape[1]:
                raise ValueError(f"x has width d_model={x.shape[1]} but {name} has shape "
                                 f"{tuple(W_.shape)}: {name} must be (d_model, d) so that x @ {name} works")
        return cls(tokens, x @ mats["W_q"], x @ mats["W_k"], x @ mats["W_v"], **kwargs)

    @property
    def query_vector(self) -> torch.Tensor:
        """The chosen query's vector as edited (before the sharpness factor), shape (d_k,)."""
        return self._q[self.query.value].clone()

    def _load_sliders(self) -> None:
        """Show the chosen query's components on the sliders without triggering redraws."""
        self._syncing = True
        try:
            for j, slider in enumerate(self.components):
                slider.value = float(self._q[self.query.value, j])
        finally:
            self._syncing = False

    def _on_query(self, change) -> None:
        """Another query was picked: show its vector on the sliders and redraw."""
        self._load_sliders()
        self.redraw()

    def _on_change(self, change) -> None:
        """A slider or toggle moved: store an edited component, then redraw."""
        if self._syncing:
            return
        if change["owner"] in self.components:
            j = self.components.index(change["owner"])
            self._q[self.query.value, j] = float(change["new"])
        self.redraw()

    def _on_reset(self, _button=None) -> None:
        """Give the chosen query its original vector back."""
        self._q[self.query.value] = self._q0[self.query.value]
        self._load_sliders()
        self.redraw()

    def redraw(self) -> None:
        """Recompute every step with llmlab.attention.attention_steps and send a new picture."""
        q = self._q * self.sharpness.value  # (T, d_k)
        T = q.shape[0]
        mask = causal_mask(T) if self.causal.value else None  # (T, T)
        self.current_q = q
        self.current_steps = attention_steps(q, self.k, self.v, mask=mask, scale=self.scale.value)
        self.image.value = self._render()  # new bytes: the browser swaps the image, no flicker
        self.summary.value = self._summary()

    def _render(self) -> bytes:
        """Draw the current view as PNG bytes, reusing the first view's layout (twice as fast)."""
        # Constrained layout measures every label, which costs as much as drawing. The tokens and
        # panels never change, so the positions found for the first picture fit every later one.
        fig = new_figure(_FIGSIZE, layout=None if self._positions else "constrained")
        plot_attention_steps(self.current_steps, self.tokens, self.query.value, fig=fig)
        if self._positions and len(self._positions) == len(fig.axes):
            for ax, position in zip(fig.axes, self._positions):
                ax.set_position(position)
        png = figure_to_png(fig, dpi=self.dpi)
        if not self._positions:
            self._positions = [ax.get_position() for ax in fig.axes]  # fixed by that first draw
        self.current_figure = fig
        return png

    def static_figure(self):
        """A fresh static figure of the current view (the widget's static twin, same numbers)."""
        return plot_attention_steps(self.current_steps, self.tokens, self.query.value)

    def _summary(self) -> str:
        """One line of numbers: the query, where its weight goes, and its output as a mix of values."""
        i, steps = self.query.value, self.current_steps
        w = steps.weights[i]  # (T,)
        top = torch.argsort(w, descending=True, stable=True)[:3].tolist()
        mix = " + ".join(f"{float(w[j]):.2f}·v({html.escape(self.tokens[j])})" for j in top)
        rest = " + …" if len(w) > 3 else ""
        positive = w[w > 0]
        # max(0.0, ...): one weight of exactly 1 gives -(1 log 1) = -0.0, which would print "-0.00".
        entropy = max(0.0, float(-(positive * positive.log()).sum()))
        visible = int(torch.isfinite(steps.masked_scores[i]).sum())
        vec = ", ".join(f"{float(x):.2f}" for x in self.current_q[i][:MAX_SLIDERS])
        more = ", …" if self.current_q.shape[1] > MAX_SLIDERS else ""
        return (f"query <b>{html.escape(self.tokens[i])}</b> uses q = [{vec}{more}] &middot; "
                f"largest weight <b>{float(w.max()):.2f}</b> &middot; entropy {entropy:.2f} nats "
                f"(uniform over the keys it sees: {math.log(max(1, visible)):.2f})<br>"
                f"output = {mix}{rest}")
