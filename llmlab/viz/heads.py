"""Head scores as a picture: one (layer x head) table per score, with its chance level."""
from __future__ import annotations

import math

import torch

from llmlab.viz._render import new_figure

__all__ = ["plot_head_scores"]


def plot_head_scores(scores: dict, chance: dict | None = None, axes=None):
    """One heatmap per score (layers down, heads across, 0 to 1), each cell labelled with its value.

    scores is llmlab.heads.head_scores' output {name: (L, H)}; chance, optionally, chance_scores'.
    Pass `axes` (one per score) to draw into your own figure.
    """
    if not scores:
        raise ValueError("scores is empty: pass llmlab.heads.head_scores(attention, ids)")
    tables = {name: torch.as_tensor(t).detach().float().cpu() for name, t in scores.items()}
    for name, table in tables.items():
        if table.dim() != 2:
            raise ValueError(f"scores[{name!r}] has shape {tuple(table.shape)}; pass head_scores' "
                             "output, one (L, H) table per score")
    if axes is None:
        # At most three tables a row: five side by side (15 in) would be shrunk to unreadable.
        ncols = min(3, len(tables))
        nrows = math.ceil(len(tables) / ncols)
        fig = new_figure(figsize=(3.0 * ncols + 0.6, 3.2 * nrows))
        grid = fig.subplots(nrows, ncols, squeeze=False).flat
        axes = list(grid)[:len(tables)]
        for ax in list(grid)[len(tables):]:
            ax.set_visible(False)  # the last row's leftover cells
    else:
        axes = list(axes) if not hasattr(axes, "flat") else list(axes.flat)
        if len(axes) < len(tables):
            raise ValueError(f"{len(tables)} scores need {len(tables)} axes, got {len(axes)}")
        fig = axes[0].figure
    for ax, (name, table) in zip(axes, tables.items()):
        image = ax.imshow(table.numpy(), vmin=0, vmax=1, cmap="viridis")  # fixed scale: tables compare
        L, H = table.shape
        for layer in range(L):
            for head in range(H):
                v = float(table[layer, head])
                # Dark cells get white text; viridis is light above about 0.6.
                ax.text(head, layer, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < 0.6 else "black")
        title = name if chance is None or name not in chance else \
            f"{name}\n(chance {chance[name]:.2f})"
        ax.set(title=title, xlabel="head", ylabel="layer", xticks=range(H), yticks=range(L))
    fig.colorbar(image, ax=list(axes)[:len(tables)], shrink=0.8, label="score")
    return fig
