"""Induction heads as pictures: the loss at each position of a repeat, and one number per head."""
from __future__ import annotations

import math

import numpy as np
import torch

from llmlab.viz._render import new_axes

__all__ = ["plot_position_loss", "plot_head_table"]


def plot_position_loss(curves: dict, vocab_size: int | None = None, ax=None):
    """Loss at each position of a segment shown twice, one line per model (or ablation).

    curves is {label: position_loss(...) (2L - 1,)}; the repeat starts at position L - 1.
    vocab_size, if given, draws chance (ln V): the loss of a guess that knows nothing.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: llmlab.induction.position_loss(model, x, y)}")
    lengths = {len(torch.as_tensor(c)) for c in curves.values()}
    if len(lengths) != 1 or min(lengths) < 3 or min(lengths) % 2 == 0:
        raise ValueError(f"every curve must be position_loss's (2L - 1,) losses, one length; got "
                         f"lengths {sorted(lengths)}")
    T = lengths.pop()
    L = (T + 1) // 2
    fig, ax = new_axes(ax, figsize=(7.0, 3.6))
    for label, losses in curves.items():
        ax.plot(np.arange(T), torch.as_tensor(losses).float().numpy(), "o-", ms=2.5, lw=1.2,
                label=label)
    ax.axvspan(L - 1.5, T - 0.5, color="#fdd49e", alpha=0.35, lw=0, label="the repeat")
    if vocab_size is not None:
        ax.axhline(math.log(vocab_size), color="grey", ls="--", lw=1,
                   label=f"chance, ln {vocab_size} = {math.log(vocab_size):.2f}")
    ax.set(xlabel="position of the predicted token", ylabel="loss (nats)",
           title=f"a random segment of {L} tokens, then the same {L} again")
    ax.set_ylim(bottom=0)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return fig


def plot_head_table(table, title: str, ax=None, fmt: str = "{:.2f}", cmap: str = "viridis"):
    """One (layers x heads) table as an annotated heatmap: ablation effects, norms, any score.

    Unlike plot_head_scores (fixed 0-1 scale), the colours span the table's own range, so use it
    for numbers that are not shares of attention, such as a loss in nats.
    """
    t = torch.as_tensor(table).detach().float().cpu()
    if t.dim() != 2:
        raise ValueError(f"table has shape {tuple(t.shape)}: pass one (layers, heads) table, "
                         "e.g. llmlab.induction.ablation_effects(model, x, y)")
    fig, ax = new_axes(ax, figsize=(1.0 + 0.9 * t.shape[1], 0.9 + 0.75 * t.shape[0]))
    lo, hi = float(t.min()), float(t.max())
    image = ax.imshow(t.numpy(), cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
    middle = (lo + hi) / 2
    for layer in range(t.shape[0]):
        for head in range(t.shape[1]):
            v = float(t[layer, head])
            ax.text(head, layer, fmt.format(v), ha="center", va="center", fontsize=10,
                    color="white" if v < middle else "black")  # viridis: dark low, light high
    ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(t.shape[1]),
           yticks=range(t.shape[0]))
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
