"""Training curves: a loss-history plot and LivePlot, a callback that redraws it while train() runs."""
from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from llmlab.viz._render import LiveWidget, figure_to_png, new_axes, picture

__all__ = ["plot_history", "plot_metric", "LivePlot"]


def plot_history(history, ax=None, step_losses=None, title: str | None = None):
    """Train and validation loss against step, from train()'s history (optionally every step's loss)."""
    rows = list(history)
    if not rows and not step_losses:
        raise ValueError("history is empty: train for at least one evaluation first "
                         "(train() evaluates at step 0, so pass result.history)")
    missing = [k for k in ("step", "train_loss", "val_loss") if rows and k not in rows[0]]
    if missing:
        raise ValueError(f"history rows need the keys step, train_loss and val_loss; missing "
                         f"{missing}: pass train(...).history")
    fig, ax = new_axes(ax)
    if step_losses:
        # Each step's loss is one batch: noisy, so it is drawn faint behind the estimates.
        ax.plot(np.arange(1, len(step_losses) + 1), step_losses, color="#9ecae1", lw=0.8,
                label="train (each step)")
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["train_loss"] for r in rows], "o-", color="#2c7fb8", ms=3, label="train")
    val = [(r["step"], r["val_loss"]) for r in rows if r["val_loss"] is not None]
    if val:
        ax.plot(*zip(*val), "o-", color="#e6550d", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    if rows:
        last = rows[-1]
        shown = last["val_loss"] if last["val_loss"] is not None else last["train_loss"]
        which = "val" if last["val_loss"] is not None else "train"
        ax.set_title(title or f"step {last['step']}: {which} loss {shown:.3f}")
    elif title:
        ax.set_title(title)
    ax.legend()
    return fig


def plot_metric(histories: dict, key: str, ax=None, ylabel: str | None = None):
    """One curve per run of a metric train() recorded (history rows' key) against step."""
    if not histories:
        raise ValueError("histories is empty: pass {run name: result.history}")
    fig, ax = new_axes(ax)
    for name, rows in histories.items():
        points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
        if not points:
            raise ValueError(f"run {name!r} has no {key!r} in its history: pass "
                             f"train(..., metrics={{{key!r}: fn}}) to record it")
        ax.plot(*zip(*points), "o-", ms=3, label=name)
    ax.set(xlabel="step", ylabel=ylabel or key)
    ax.legend()
    return fig


class LivePlot(LiveWidget):
    """A live loss plot: pass it as train(..., callback=LivePlot()) and it redraws after each eval.

    The picture is an ipywidgets.Image whose bytes are replaced, so it updates in place without
    flicker. Static twin: plot_history(result.history).
    """

    def __init__(self, title: str | None = None, width: int = 600):
        self.title = title
        self.image = picture(width=width)
        self.widget = widgets.VBox([self.image])
        self.history: list = []  # the rows shown now (tests read them)
        self._shown = False

    def __call__(self, history) -> None:
        """Redraw with the history so far (train() calls this after every evaluation)."""
        self.history = [dict(row) for row in history]
        if not self._shown:
            from IPython.display import display

            display(self)  # show on first use, so `callback=LivePlot()` is enough
        self.image.value = figure_to_png(plot_history(self.history, title=self.title))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        self._shown = True  # shown once: by the user's cell or by training's first call
        return super()._repr_mimebundle_(include, exclude)
