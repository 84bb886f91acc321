"""What an encoder–decoder reads: its output for a source, and the cross-attention behind each token.

Rows are the output tokens the decoder wrote (each row is the step that wrote it); columns are the
source tokens the encoder read. A row is a distribution over the source: where that step looked.
"""
from __future__ import annotations

import html

import ipywidgets as W

from llmlab.beam_search import alignment, translate
from llmlab.viz._render import LiveWidget, figure_to_png, new_figure, picture
from llmlab.viz.attention import plot_attention, plot_query_attention
from llmlab.viz.sampling import readable_token

__all__ = ["plot_alignment", "AlignmentExplorer"]


def _draw(found, layer: int, head, query: int, fig):
    """The heatmap of one layer's cross-attention and the bars of one output token's row."""
    L = found.cross_attention.shape[0]
    ax_heat, ax_bar = fig.subplots(1, 2, width_ratios=[1.3, 1])
    keys, queries = found.source_tokens, found.output_tokens
    plot_attention(found.cross_attention, queries, keys, layer=layer % L, head=head, ax=ax_heat,
                   colorbar=False)
    ax_heat.set(xlabel="source token (key, from the encoder)",
                ylabel="output token being written (query)")
    ax_heat.axhline(query - 0.5, color="#d95f02", lw=1.5)  # frame the chosen row
    ax_heat.axhline(query + 0.5, color="#d95f02", lw=1.5)
    plot_query_attention(found.cross_attention, layer=layer % L, head=head, query_index=query,
                         ax=ax_bar, query_tokens=queries, key_tokens=keys)
    ax_bar.set(xlabel="source token")
    fig.suptitle(f"{''.join(keys[:-1])}  →  {found.output or '(nothing)'}")
    return fig


def plot_alignment(model, src_vocab, tgt_vocab, text: str, layer: int = -1, head="mean",
                   query: int = 0, beam_size: int = 1, fig=None):
    """Static twin of AlignmentExplorer: the cross-attention heatmap and one output token's bars."""
    found = alignment(model, src_vocab, tgt_vocab, text, beam_size=beam_size)
    n_out = len(found.output_tokens)
    if not -n_out <= query < n_out:
        raise ValueError(f"query={query} but the output has {n_out} tokens: pick 0..{n_out - 1}")
    fig = new_figure(figsize=(10.0, 5.0)) if fig is None else fig
    return _draw(found, layer, head, query % n_out, fig)


class AlignmentExplorer(LiveWidget):
    """Pick an example or type a source: see the output and where each output token read from.

    examples are source strings, or (source, expected output) pairs: then each example is marked
    ✓ or ✗ by the model's own answer, and the wrong ones are listed first.
    """

    def __init__(self, model, src_vocab, tgt_vocab, examples, beam_size: int = 1, dpi: int = 100):
        self.model, self.src_vocab, self.tgt_vocab = model, src_vocab, tgt_vocab
        examples = list(examples)
        if not examples:
            raise ValueError("AlignmentExplorer needs at least one example source")
        self.targets = {} if isinstance(examples[0], str) else {s: t for s, t in examples}
        sources = [e if isinstance(e, str) else e[0] for e in examples]
        self.beam_size, self.dpi = beam_size, dpi
        options = [(s, s) for s in sources]
        if self.targets:  # mark the model's answers, mistakes first: they are the interesting ones
            outputs = translate(model, src_vocab, tgt_vocab, sources, beam_size=beam_size)
            marked = [(out == self.targets[s], s) for s, out in zip(sources, outputs)]
            options = [(("✓ " if ok else "✗ ") + s, s) for ok, s in sorted(marked, key=lambda m: m[0])]
        L, H = model.config.n_layer_dec, model.config.n_head
        self.example = W.Dropdown(options=options, value=options[0][1], description="example")
        self.source = W.Text(value=options[0][1], description="source", continuous_update=False,
                             layout=W.Layout(width="60%"))
        self.layer = W.Dropdown(options=[(f"layer {i}", i) for i in range(L)], value=L - 1,
                                description="layer")
        self.head = W.Dropdown(options=[("mean of heads", "mean")] + [(f"head {h}", h) for h in range(H)],
                               value="mean", description="head")
        self.query = W.Dropdown(description="output token", style={"description_width": "initial"})
        self.verdict = W.HTML()
        self.image = picture()
        self.found = None  # the Alignment shown now (tests read it)
        self.message, self._syncing = "", False
        self.example.observe(self._on_example, names="value")
        self.source.observe(lambda _: self.update(), names="value")
        for control in (self.layer, self.head, self.query):
            control.observe(lambda _: self.redraw(), names="value")
        self.widget = W.VBox([self.example, self.source, self.verdict,
                              W.HBox([self.layer, self.head, self.query]), self.image])
        self.update()

    def _on_example(self, change) -> None:
        """Put the chosen example into the source box (which translates it)."""
        if change["new"] is not None:
            self.source.value = change["new"]

    def update(self) -> None:
        """Translate the source and show it (a problem is shown in the verdict, not raised)."""
        if self.source.value != self.example.value:
            self.example.value = None  # a typed source: no example is selected, any can be picked
        try:
            found = alignment(self.model, self.src_vocab, self.tgt_vocab, self.source.value,
                              beam_size=self.beam_size)
        except (ValueError, TypeError) as exc:  # e.g. an unknown character or an empty source
            self.message = str(exc)
            self.verdict.value = ('<div style="border-left: 4px solid #b35806; padding: 4px 10px">'
                                  f"<b>Cannot translate this:</b> {html.escape(self.message)}</div>")
            self.image.layout.visibility = "hidden"  # the old picture belongs to another source
            return
        self.image.layout.visibility = "visible"
        self.found, self.message = found, ""
        expected = self.targets.get(self.source.value.strip())
        note = "" if expected is None else (" ✓ correct" if found.output == expected
                                            else f" ✗ expected {html.escape(expected)}")
        self.verdict.value = f"<b>→ {html.escape(found.output) or '(nothing)'}</b>{note}"
        old = self.query.value
        options = [(f"{t}: {readable_token(tok)}", t) for t, tok in enumerate(found.output_tokens)]
        self._syncing = True  # one redraw below, not one per control that changes
        try:
            self.query.options = options
            self.query.value = old if old is not None and old < len(options) else 0
        finally:
            self._syncing = False
        self.redraw()

    def redraw(self) -> None:
        """Draw the current alignment with the chosen layer, head and output token."""
        if self._syncing or self.found is None or self.query.value is None:
            return
        fig = _draw(self.found, self.layer.value, self.head.value, self.query.value,
                    new_figure(figsize=(10.0, 5.0), dpi=self.dpi))
        self.image.value = figure_to_png(fig, dpi=self.dpi)

    def static_figure(self):
        """A fresh static figure of what the explorer shows now."""
        return plot_alignment(self.model, self.src_vocab, self.tgt_vocab, self.source.value,
                              self.layer.value, self.head.value, self.query.value or 0,
                              self.beam_size)
