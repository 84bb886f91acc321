"""What a sentiment classifier reads: P(positive), its attention, and word occlusion side by side.

The two bar charts answer different questions. Attention says where the classification position
read from in one layer; occlusion says how much P(positive) moves when a word is removed. They
often disagree, which is the point: attention weights are not explanations (Jain & Wallace, 2019;
Wiegreffe & Pinter, 2019).
"""
from __future__ import annotations

import html

import ipywidgets as W

from llmlab.classifier import occlusion, predict_proba, sentence_attention
from llmlab.viz._render import LiveWidget, figure_to_png, new_axes, new_figure, picture
from llmlab.viz.sampling import readable_token

__all__ = ["plot_sentiment", "plot_accuracies", "SentimentExplorer"]

_POSITIVE, _NEGATIVE, _ATTENTION = "#1b7837", "#b35806", "#2c7fb8"  # green / orange / blue


def plot_sentiment(model, tokenizer, sentence: str, layer: int = -1, axes=None):
    """Two panels: the last token's attention over the tokens (one layer) and each word's occlusion."""
    p = float(predict_proba(model, tokenizer, [sentence])[0, 1])
    tokens, weights = sentence_attention(model, tokenizer, sentence, layer)
    moves = occlusion(model, tokenizer, sentence) if len(sentence.split()) > 1 else []
    if axes is None:
        fig = new_figure(figsize=(10.0, 3.6))
        axes = fig.subplots(1, 2)
    fig = axes[0].figure
    ax_att, ax_occ = axes[0], axes[1]
    ax_att.bar(range(len(tokens)), weights.numpy(), color=_ATTENTION)
    ax_att.set_xticks(range(len(tokens)), [readable_token(t) for t in tokens], rotation=90,
                      fontsize=9)
    n_layer = model.gpt.config.n_layer
    ax_att.set(ylim=(0, 1), ylabel="attention weight",
               title=f"last token's attention, layer {layer % n_layer + 1}/{n_layer} (head mean)")
    if moves:
        words, deltas = zip(*moves)
        ax_occ.bar(range(len(words)), deltas,
                   color=[_POSITIVE if d >= 0 else _NEGATIVE for d in deltas])
        ax_occ.set_xticks(range(len(words)), words, rotation=90, fontsize=9)
        ax_occ.axhline(0, color="#555555", lw=0.8)
    ax_occ.set(ylabel="P(positive): with − without the word",
               title="occlusion: remove one word at a time (green: the word pushes positive)")
    fig.suptitle(f"P(positive) = {p:.2f}   ·   {sentence[:80]}{'…' if len(sentence) > 80 else ''}",
                 color=_POSITIVE if p >= 0.5 else _NEGATIVE)
    return fig


def plot_accuracies(results: dict, ax=None, chance: float = 0.5):
    """Horizontal bars of accuracy per method with 95 % intervals: results = {name: (acc, (lo, hi))}."""
    if not results:
        raise ValueError("results is empty: pass {method: (accuracy, (low, high))}")
    fig, ax = new_axes(ax)
    names = list(results)[::-1]  # the first method on top
    acc = [results[n][0] for n in names]
    err = [[a - results[n][1][0] for n, a in zip(names, acc)],
           [results[n][1][1] - a for n, a in zip(names, acc)]]
    ax.barh(range(len(names)), acc, xerr=err, color=_ATTENTION, capsize=3)
    ax.set_yticks(range(len(names)), names)
    ax.axvline(chance, color="#555555", lw=0.8, ls="--", label="chance")
    ax.set(xlim=(0, 1), xlabel="test accuracy (bars: 95 % Wilson interval)")
    ax.legend(loc="upper right")
    return fig


class SentimentExplorer(LiveWidget):
    """Type a sentence, press Read: P(positive), attention and occlusion. Twin: plot_sentiment."""

    def __init__(self, model, tokenizer, sentence: str = "The food was great but the service was slow.",
                 layer: int = -1):
        self.model, self.tokenizer = model, tokenizer
        n_layer = model.gpt.config.n_layer
        self.sentence = W.Text(value=sentence, description="sentence",
                               layout=W.Layout(width="70%"), continuous_update=False)
        self.layer = W.Dropdown(options=[(f"layer {i + 1}", i) for i in range(n_layer)],
                                value=layer % n_layer, description="attention of")
        self.button = W.Button(description="Read", button_style="primary", icon="play")
        self.verdict = W.HTML()
        self.image = picture()
        self.button.on_click(lambda _: self.update())
        self.sentence.observe(lambda _: self.update(), names="value")
        self.layer.observe(lambda _: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.sentence, self.button]), self.layer, self.verdict,
                              self.image])
        self.probability: float | None = None  # what is shown now (tests read it)
        self.message = ""
        self.update()

    def update(self) -> None:
        """Read the sentence with the current settings and redraw (a problem is shown, not raised)."""
        try:
            fig = plot_sentiment(self.model, self.tokenizer, self.sentence.value, self.layer.value)
            self.probability = float(predict_proba(self.model, self.tokenizer,
                                                   [self.sentence.value])[0, 1])
            self.message = ""
            self.image.value = figure_to_png(fig)
            label = "positive" if self.probability >= 0.5 else "negative"
            self.verdict.value = (f"<b>P(positive) = {self.probability:.3f}</b>: the model reads "
                                  f"this as <b>{label}</b>.")
        except (ValueError, TypeError) as exc:  # e.g. an empty sentence
            self.probability, self.message = None, str(exc)
            self.verdict.value = ('<div style="border-left: 4px solid #b35806; padding: 4px 10px">'
                                  f"<b>Cannot read this:</b> {html.escape(self.message)}</div>")
