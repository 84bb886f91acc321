"""Generated text to read: a widget with sampling controls, and its static twin render_generation.

The continuation is shown after the prompt (in bold). Optionally each generated token is shaded by
how likely the model itself found it (its probability at temperature 1, before top-k / top-p):
the darker the shade, the more surprising the token. Hover over a token to read the number.
"""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import ipywidgets as W
import torch
import torch.nn.functional as F

from llmlab.viz._render import LiveWidget

__all__ = ["Generation", "render_generation", "GenerationExplorer"]

_SURPRISE_RGB = "230, 85, 13"  # one hue (orange), so the shading reads without colour vision
_CONTINUATION = "#08519c"      # the continuation's text colour (dark blue on white)
_BOX = ("font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; "
        "line-height: 1.45; background: #ffffff; color: #222222; padding: 8px 10px; "
        "border: 1px solid #d9d9d9; border-radius: 4px; max-height: 28em; overflow-y: auto")
_WINDOWS_PER_PASS = 128        # windows scored per forward pass beyond the context length


def _shade(p: float) -> float:
    """Opacity of a token's shade: 0 for p = 1, 0.4 for p = 0.1, 0.8 (the darkest) for p <= 0.01."""
    # Capped below 1 so that the blue text stays readable on the darkest shade.
    return 0.8 * min(1.0, max(0.0, -math.log10(max(p, 1e-12)) / 2.0))


@dataclass(frozen=True, eq=False)
class Generation:
    """A prompt and its generated continuation, token by token, with the model's probabilities."""

    prompt: str
    pieces: tuple[str, ...]      # the continuation, one decoded token per entry
    probs: tuple[float, ...]     # the model's probability of each piece (temperature 1, unfiltered)
    settings: dict = field(default_factory=dict)  # how it was sampled

    @property
    def continuation(self) -> str:
        """The generated text, without the prompt."""
        return "".join(self.pieces)

    @property
    def text(self) -> str:
        """Prompt plus continuation."""
        return self.prompt + self.continuation

    def summary(self) -> str:
        """The sampling settings in one line, e.g. 'temperature 0.8 · top-k off · top-p 0.9 · seed 0'."""
        s = self.settings
        if s.get("greedy"):
            how = "greedy (always the likeliest token)"
        else:
            how = (f"temperature {s.get('temperature', 1.0):g} · top-k {s.get('top_k') or 'off'} · "
                   f"top-p {s.get('top_p') or 'off'} · seed {s.get('seed', 0)}")
        return f"{how} · {len(self.pieces)} new tokens"

    def to_html(self, shade: bool = True) -> str:
        """The text as HTML: prompt in bold, continuation in blue, optionally shaded by surprise."""
        parts = [f'<b>{html.escape(self.prompt)}</b><span style="color: {_CONTINUATION}">']
        for piece, p in zip(self.pieces, self.probs):
            text = html.escape(piece)
            if shade:
                parts.append(f'<span title="p = {p:.3f}" style="background: rgba({_SURPRISE_RGB}, '
                             f'{_shade(p):.2f})">{text}</span>')
            else:
                parts.append(text)
        parts.append("</span>")
        legend = ""
        if shade:
            swatches = "".join(
                f'<span style="background: rgba({_SURPRISE_RGB}, {_shade(p):.2f}); '
                f'padding: 0 4px">{p:g}</span>' for p in (1.0, 0.3, 0.1, 0.03, 0.01))
            legend = (f'<div style="font-size: 85%; color: #555555; margin-top: 4px">shade: the '
                      f"model's probability of each generated token at temperature 1 (hover to "
                      f"read it): {swatches}</div>")
        info = f'<div style="font-size: 85%; color: #555555">{html.escape(self.summary())}</div>'
        return f'<div style="{_BOX}">{"".join(parts)}</div>{legend}{info}'

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer, cycle) -> None:
        """Plain-text display (where HTML cannot be shown): the text itself."""
        printer.text(self.text)


def _encode_prompt(tokenizer, prompt) -> list[int]:
    """The prompt's token ids, or a ValueError saying in plain words what is wrong with it."""
    if not isinstance(prompt, str):
        raise ValueError(f"the prompt must be text (a str), got {type(prompt).__name__}")
    if prompt == "":
        raise ValueError("the prompt is empty: type at least one character to start from "
                         "(a newline works too)")
    vocab = getattr(tokenizer, "vocab", None)
    if isinstance(vocab, tuple) and getattr(tokenizer, "unk_token", None) is None \
            and all(isinstance(t, str) and len(t) == 1 for t in vocab):
        unknown = sorted(set(prompt) - set(vocab))
        if unknown:  # a character-level model can only read characters it was trained on
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise ValueError(f"the prompt contains {shown}, which the model never saw in training "
                             f"(its vocabulary has {len(vocab)} characters): remove or replace "
                             "them")
    return list(tokenizer.encode(prompt))


@torch.no_grad()
def _token_probs(model, ids: torch.Tensor, start: int) -> list[float]:
    """P(ids[t] | the context the model read) at temperature 1, for t = start .. len(ids) - 1."""
    block = model.config.block_size
    was_training = model.training
    model.eval()
    try:
        first = ids[:block]                                          # (T1,) read in one pass
        probs = F.softmax(model(first[None]).logits[0].float(), dim=-1)  # (T1, V)
        # row t - 1 predicts token t
        out = probs[:-1].gather(1, first[1:, None])[:, 0].tolist()   # tokens 1 .. T1 - 1
        if len(ids) > block:
            # Beyond the context length each token was predicted from the block tokens before it.
            windows = ids[:-1].unfold(0, block, 1)                   # (N - block, block)
            for chunk in windows.split(_WINDOWS_PER_PASS):
                last = model(chunk).logits[:, -1].float()            # (n, V)
                k = len(out) + 1                                     # position of chunk's first target
                targets = ids[k:k + len(chunk)]                      # (n,)
                out += F.softmax(last, dim=-1).gather(1, targets[:, None])[:, 0].tolist()
    finally:
        model.train(was_training)
    return out[start - 1:]  # out[t - 1] belongs to token t


def render_generation(model, tokenizer, prompt: str = "ROMEO:", max_new_tokens: int = 200,
                      temperature: float = 1.0, top_k: int | None = None,
                      top_p: float | None = None, greedy: bool = False,
                      seed: int = 0) -> Generation:
    """Generate from a prompt with these settings and return it (shows as HTML in Jupyter).

    The static twin of GenerationExplorer: the same settings and seed give the same text.
    """
    if not hasattr(model, "generate") or not hasattr(model, "config"):
        raise TypeError(f"model must be an llmlab GPT (with .generate and .config), got "
                        f"{type(model).__name__}")
    ids = _encode_prompt(tokenizer, prompt)
    device = next(model.parameters()).device
    idx = torch.tensor([ids], dtype=torch.long, device=device)      # (1, T)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                         greedy=greedy, generator=gen)[0]             # (T + max_new_tokens,)
    new = out[len(ids):].tolist()
    pieces = tuple(tokenizer.decode([i]) for i in new)
    probs = tuple(_token_probs(model, out, len(ids)))
    settings = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_k=top_k,
                    top_p=top_p, greedy=greedy, seed=seed)
    return Generation(prompt, pieces, probs, settings)


class GenerationExplorer(LiveWidget):
    """Type a prompt, set temperature / top-k / top-p / length / seed, press Generate, read.

    Static twin: render_generation(model, tokenizer, prompt, ...) with the same settings.
    """

    def __init__(self, model, tokenizer, prompt: str = "ROMEO:", max_new_tokens: int = 200,
                 temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                 seed: int = 0, greedy: bool = False, shade: bool = True,
                 max_length: int = 1000):
        if not hasattr(model, "generate") or not hasattr(model, "config"):
            raise TypeError(f"model must be an llmlab GPT (with .generate and .config), got "
                            f"{type(model).__name__}")
        if not 1 <= max_new_tokens <= max_length:
            raise ValueError(f"max_new_tokens={max_new_tokens} must be between 1 and "
                             f"max_length={max_length}")
        self.model, self.tokenizer = model, tokenizer
        V = model.config.vocab_size
        wide = {"description_width": "95px"}
        self.prompt = W.Textarea(value=prompt, description="prompt", rows=2, style=wide,
                                 layout=W.Layout(width="98%"))
        self.temperature = W.FloatLogSlider(value=temperature, base=10, min=-1,
                                            max=math.log10(3.0), step=0.02,
                                            description="temperature", style=wide,
                                            continuous_update=False)
        self.top_k = W.IntSlider(value=top_k or 0, min=0, max=V, description="top-k (0 off)",
                                 style=wide, continuous_update=False)
        self.top_p = W.FloatSlider(value=top_p or 1.0, min=0.01, max=1.0, step=0.01,
                                   description="top-p (1 off)", style=wide,
                                   continuous_update=False)
        self.length = W.IntSlider(value=max_new_tokens, min=1, max=max_length,
                                  description="new tokens", style=wide, continuous_update=False)
        self.seed = W.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed",
                                     style=wide, layout=W.Layout(width="200px"))
        self.greedy = W.Checkbox(value=greedy, description="greedy (always the likeliest)",
                                 indent=False)
        self.shade = W.Checkbox(value=shade, description="shade by probability", indent=False)
        self.button = W.Button(description="Generate", button_style="primary", icon="play",
                               tooltip="sample with these settings (the same seed gives the same text)")
        # Generate repeats a sample exactly; this one moves to the next seed, so every press gives
        # new text and each sample can still be reproduced from the seed it shows.
        self.resample = W.Button(description="New sample", icon="refresh",
                                 tooltip="seed + 1, then generate")
        self.output = W.HTML()
        self.button.on_click(lambda _: self.generate())
        self.resample.on_click(lambda _: self.new_sample())
        self.shade.observe(lambda _: self._show(), names="value")  # no need to sample again
        self.greedy.observe(lambda _: self._sync_controls(), names="value")
        self.widget = W.VBox([
            self.prompt,
            W.HBox([self.temperature, self.top_k, self.top_p]),
            W.HBox([self.length, self.seed]),
            W.HBox([self.button, self.resample, self.greedy, self.shade]),
            # Said next to the buttons: pressing Generate twice and seeing the same text is by
            # design (the seed fixes the sample), not a frozen widget.
            W.HTML('<span style="color: #555; font-size: 0.9em;">Generate with unchanged settings '
                   "and seed repeats the same text; New sample moves to the next seed.</span>"),
            self.output])
        self.current_generation: Generation | None = None  # what is shown now (tests read it)
        self.current_text = ""                              # its text ("" after a bad prompt)
        self.message = ""                                   # the last problem reported, if any
        self._sync_controls()
        self.generate()  # show a first sample straight away

    def settings(self) -> dict:
        """The controls as render_generation's keyword arguments (0 and 1.0 mean "off")."""
        return dict(prompt=self.prompt.value, max_new_tokens=self.length.value,
                    temperature=self.temperature.value, top_k=self.top_k.value or None,
                    top_p=self.top_p.value if self.top_p.value < 1.0 else None,
                    greedy=self.greedy.value, seed=self.seed.value)

    def _sync_controls(self) -> None:
        """Greedy decoding ignores temperature, top-k, top-p and the seed: grey them out."""
        for control in (self.temperature, self.top_k, self.top_p, self.seed, self.resample):
            control.disabled = self.greedy.value

    def generate(self) -> None:
        """Generate with the current settings and show the result (or what is wrong) below."""
        self.button.disabled = self.resample.disabled = True
        try:
            self.current_generation = render_generation(self.model, self.tokenizer,
                                                        **self.settings())
            self.current_text, self.message = self.current_generation.text, ""
        except Exception as exc:  # a button must not raise where nobody sees it
            self.current_generation, self.current_text = None, ""
            self.message = str(exc) if isinstance(exc, ValueError) else \
                f"generation failed: {type(exc).__name__}: {exc}"
        finally:
            self.button.disabled = False
            self._sync_controls()
        self._show()

    def new_sample(self) -> None:
        """Move to the next seed (wrapping at the largest) and generate."""
        self.seed.value = (self.seed.value + 1) % (self.seed.max + 1)
        self.generate()

    def _show(self) -> None:
        """Put the current generation (or the message) into the HTML widget."""
        if self.current_generation is None:
            self.output.value = ('<div style="border-left: 4px solid #b35806; padding: 4px 10px;">'
                                 f"<b>Cannot generate:</b> {html.escape(self.message)}</div>")
        else:
            self.output.value = self.current_generation.to_html(shade=self.shade.value)

    def _fallback(self) -> dict:
        """The current text as HTML, for where the widget cannot run."""
        return {"text/html": self.output.value} if self.output.value else {}
