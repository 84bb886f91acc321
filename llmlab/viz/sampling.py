"""Pictures of next-token prediction: distributions, loss curves, bigram tables, a sampling explorer."""
from __future__ import annotations

import html
import math

import ipywidgets as widgets
import numpy as np
import torch

from llmlab.lm import next_token_probs, sampling_mask
from llmlab.viz._render import LiveWidget, figure_to_png, new_axes, picture

__all__ = [
    "readable_token",
    "plot_next_token_distribution",
    "plot_loss",
    "plot_bigram_matrix",
    "SamplingExplorer",
]

# Characters that would be invisible (or break a tick label) get a visible stand-in.
_VISIBLE = (("\n", "⏎"), ("\r", "␍"), ("\t", "⇥"), (" ", "␣"))
_KEPT_COLOUR = "#2c7fb8"
_BEFORE_COLOUR = "#a6cee3"
_EXCLUDED_COLOUR = "#bdbdbd"


def readable_token(token) -> str:
    """Show a token so it can be read on an axis: '\\n' -> '⏎', ' ' -> '␣', control chars escaped."""
    text = token if isinstance(token, str) else str(token)
    if text == "":
        return "∅"
    for raw, shown in _VISIBLE:
        text = text.replace(raw, shown)
    # Any other unprintable character (e.g. \x00) is shown as its escape code.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _as_vector(values, name: str, length: int | None = None) -> np.ndarray:
    """Return values as a 1-D float array (optionally of a given length), or raise."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one number per token), got shape {arr.shape}")
    if length is not None and len(arr) != length:
        raise ValueError(f"{name} has {len(arr)} entries but there are {length} tokens: "
                         "pass one entry per token, in the same order")
    return arr


def _as_tokens(tokens) -> list[str]:
    """Return tokens as a list of readable labels, or raise if there are none."""
    if isinstance(tokens, str):
        tokens = list(tokens)  # a string of characters is a character vocabulary
    labels = [readable_token(t) for t in tokens]
    if not labels:
        raise ValueError("tokens is empty: pass the vocabulary (one label per token)")
    return labels


def plot_next_token_distribution(tokens, probs, kept=None, ax=None, top: int = 30,
                                 original=None):
    """Bar chart of the likeliest next tokens: excluded ones grey and hatched, survivors renormalised.

    probs is the distribution before top-k / top-p (e.g. after temperature); kept is a boolean
    mask of the tokens that survive (None: all). Dark bars are the renormalised distribution that
    is actually sampled; when tokens are excluded, light bars behind them show probs. original
    (optional) marks a reference distribution, e.g. temperature 1, with black ticks.
    """
    labels = _as_tokens(tokens)
    V = len(labels)
    p = _as_vector(probs, "probs", V)
    if (p < 0).any() or not np.isfinite(p).all() or p.sum() <= 0:
        raise ValueError("probs must be finite, non-negative and not all zero; pass probabilities "
                         "(e.g. next_token_probs(logits)), not logits")
    keep = np.ones(V, dtype=bool) if kept is None else _as_vector(kept, "kept", V).astype(bool)
    if not keep.any():
        raise ValueError("kept excludes every token; at least one token must survive")
    ref = None if original is None else _as_vector(original, "original", V)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an int >= 1 (how many bars to show), got {top!r}")

    final = np.where(keep, p, 0.0)
    final = final / final.sum()                     # (V,) what sampling actually uses
    # Most likely first; a stable sort keeps equal probabilities in token-id order.
    order = np.argsort(-p, kind="stable")[:top]
    x = np.arange(len(order))
    fig, ax = new_axes(ax, figsize=(max(6.0, 0.26 * len(order) + 1.8), 4.0))  # 30 bars: 9.6 in

    k, o = keep[order], order
    if not keep.all():  # with nothing excluded, "before" and "after" are the same bars
        ax.bar(x[k], p[o][k], width=0.8, color=_BEFORE_COLOUR, label="before top-k / top-p")
    ax.bar(x[k], final[o][k], width=0.5, color=_KEPT_COLOUR, label="sampled from (renormalised)")
    if (~k).any():
        ax.bar(x[~k], p[o][~k], width=0.8, color=_EXCLUDED_COLOUR, hatch="///",
               edgecolor="#737373", label="excluded (probability 0)")
    if ref is not None:
        ax.scatter(x, ref[o], marker="_", s=200, color="black", zorder=3, label="original (T = 1)")
    for xi, value in zip(x[k], final[o][k]):
        if value < 0.005:
            continue  # a column of "0.00" labels would only hide the bars that matter
        ax.annotate(f"{value:.2f}", (xi, value), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, rotation=90)

    ax.set_xticks(x, [labels[i] for i in order], fontsize=8)
    # Excluded tokens also get a grey tick label and a cross, visible even when their bar is tiny.
    for tick, is_kept in zip(ax.get_xticklabels(), k):
        if not is_kept:
            tick.set_color("#969696")
    if (~k).any():
        ax.plot(x[~k], np.zeros((~k).sum()), "x", color="#636363", clip_on=False, zorder=4)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_ylabel("probability")
    ax.set_xlabel("next token")
    top_value = max(final.max(), p.max(), 0.0 if ref is None else ref.max())
    ax.set_ylim(0, min(1.0, top_value) * 1.2)
    shown = f" (showing the top {len(order)})" if len(order) < V else ""
    ax.set_title(f"{int(keep.sum())} of {V} tokens can be sampled{shown}")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def plot_loss(losses, ax=None, label: str | None = None):
    """Loss against training step (x = 0, 1, 2, ...)."""
    y = _as_vector(losses, "losses")
    if len(y) == 0:
        raise ValueError("losses is empty: train for at least one step first")
    fig, ax = new_axes(ax)
    ax.plot(np.arange(len(y)), y, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    if label is not None:
        ax.legend()
    return fig


def plot_bigram_matrix(probs, tokens, ax=None):
    """Heat map of a (V, V) bigram table: row = previous token, column = next token."""
    labels = _as_tokens(tokens)
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().double().numpy()
    table = np.asarray(probs, dtype=float)
    V = len(labels)
    if table.shape != (V, V):
        raise ValueError(f"probs has shape {table.shape} but there are {V} tokens: pass the "
                         f"(V, V) = ({V}, {V}) table whose rows are previous tokens")
    side = max(6.0, 0.14 * V + 1.0)  # keep tick labels legible up to ~80 tokens
    fig, ax = new_axes(ax, figsize=(side + 1.0, side))
    image = ax.imshow(table, cmap="Blues", vmin=0.0, interpolation="nearest")
    # Label every token while they fit; on big vocabularies label every step-th one.
    step = max(1, math.ceil(V / 80))
    ticks = np.arange(0, V, step)
    size = 8 if V <= 30 else 6
    ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=size)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=size)
    ax.set_xlabel("next token")
    ax.set_ylabel("previous token")
    note = "" if step == 1 else f" (every {step}th token labelled)"
    ax.set_title(f"P(next | previous){note}")
    fig.colorbar(image, ax=ax, label="probability")
    return fig


class SamplingExplorer(LiveWidget):
    """Sliders for temperature, top-k and top-p over one next-token distribution, with samples."""

    # Static twin: plot_next_token_distribution(tokens, probs, kept), drawn from the same numbers.

    def __init__(self, tokens, logits, top: int = 30, n_samples: int = 20, seed: int = 0):
        self.tokens = _as_tokens(tokens)
        V = len(self.tokens)
        self.logits = torch.as_tensor(_as_vector(logits, "logits", V))          # (V,)
        if torch.isnan(self.logits).any() or torch.isposinf(self.logits).any() \
                or torch.isneginf(self.logits).all():
            raise ValueError("logits must be real scores (no NaN or +inf, at least one finite): "
                             "pass the model's raw output for one position, not probabilities")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
        self.top, self.n_samples, self.seed = top, n_samples, seed

        self.temperature = widgets.FloatLogSlider(
            value=1.0, base=10, min=-1, max=math.log10(3.0), step=0.02,
            description="temperature", continuous_update=False)
        self.top_k = widgets.IntSlider(value=0, min=0, max=V, description="top-k (0 = off)",
                                       continuous_update=False)
        self.top_p = widgets.FloatSlider(value=1.0, min=0.01, max=1.0, step=0.01,
                                         description="top-p (1 = off)", continuous_update=False)
        for control in (self.temperature, self.top_k, self.top_p):
            control.style.description_width = "110px"
            # Long tracks, one above the other: side by side each was ~150 px, so a 60 px drag
            # took temperature from 1 to 3 and 30 px took top-k from 0 to 21.
            control.layout.width = "600px"
            control.observe(self._update, names="value")
        self.image = picture()
        self.summary = widgets.HTML()
        self.widget = widgets.VBox([self.temperature, self.top_k, self.top_p, self.image,
                                    self.summary])
        self.current_probs = None   # (V,) the distribution being shown and sampled
        self.current_kept = None    # (V,) bool, tokens that survive top-k / top-p
        self._update()

    def _settings(self):
        """The current control values as next_token_probs arguments (0 / 1.0 mean off)."""
        top_k = self.top_k.value or None
        top_p = self.top_p.value if self.top_p.value < 1.0 else None
        return self.temperature.value, top_k, top_p

    def _update(self, change=None):
        """Recompute the distribution and redraw the picture and the summary."""
        temperature, top_k, top_p = self._settings()
        before = next_token_probs(self.logits, temperature)                      # (V,)
        probs = next_token_probs(self.logits, temperature, top_k, top_p)         # (V,)
        kept = sampling_mask(self.logits, temperature, top_k, top_p)             # (V,)
        self.current_probs, self.current_kept = probs, kept

        original = next_token_probs(self.logits)                                 # (V,)
        fig = plot_next_token_distribution(self.tokens, before, kept, top=self.top,
                                           original=original)
        self.image.value = figure_to_png(fig)  # replacing the bytes redraws without flicker

        positive = probs[probs > 0].double()
        entropy = max(0.0, float(-(positive * positive.log()).sum()))  # no "-0.00" for one token
        gen = torch.Generator().manual_seed(self.seed)  # same seed: only the controls change samples
        draws = torch.multinomial(probs.double(), self.n_samples, replacement=True, generator=gen)
        sampled = " ".join(html.escape(self.tokens[i]) for i in draws.tolist())
        self.summary.value = (
            f"<b>{int(kept.sum())}</b> of {len(self.tokens)} tokens can be sampled &middot; "
            f"entropy {entropy:.2f} nats (as uncertain as a fair choice among "
            f"<b>{math.exp(entropy):.1f}</b> tokens)<br>"
            f"{self.n_samples} samples (seed {self.seed}): <code>{sampled}</code>")
