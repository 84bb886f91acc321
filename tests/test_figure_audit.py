"""The figure audit (tests/_figure_audit.py) finds what a learner cannot read, and only that."""
import numpy as np
import pytest

from _figure_audit import OUTPUT_WIDTH_PX, audit
from llmlab.viz._render import new_axes, new_figure


def test_a_plain_plot_has_no_problems():
    fig, ax = new_axes()
    ax.plot([0, 1, 2], [3, 1, 2], label="loss")
    ax.set(title="a title", xlabel="step", ylabel="loss")
    ax.legend(loc="upper right")
    assert audit(fig, dpi=100) == []


def test_small_text_is_found_and_scaling_down_counts():
    fig, ax = new_axes()
    ax.text(0.5, 0.5, "tiny", fontsize=6)  # 6 pt at 100 dpi: 8.3 px
    problems = audit(fig, dpi=100)
    assert len(problems) == 1 and "'tiny' is 8.3 px" in problems[0]
    wide = new_figure(figsize=(20, 3))  # 2000 px, shown at half size: 10 pt becomes 6.9 px
    wide.add_subplot().set_title("a title")
    problems = audit(wide, dpi=100)
    assert problems and f"shown at {OUTPUT_WIDTH_PX / 2000:.0%}" in problems[0]


def test_overlapping_labels_are_found():
    fig, ax = new_axes()
    ax.text(0.5, 0.5, "brother", fontsize=12)
    ax.text(0.51, 0.5, "mother", fontsize=12)
    ax.text(0.1, 0.1, "far away", fontsize=12)
    problems = audit(fig, dpi=100)
    assert problems == ["texts 'brother' and 'mother' overlap"]


def test_a_legend_on_data_or_on_a_title_is_found():
    fig, ax = new_axes()
    x = np.linspace(0, 1, 50)
    for y in np.linspace(0.05, 0.95, 10):  # lines everywhere: the legend must sit on one
        ax.plot(x, np.full_like(x, y), color="C0", label="curves" if y < 0.1 else None)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right")
    assert any("covers data of the line" in p for p in audit(fig, dpi=100))

    fig = new_figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.set_title("title")
    fig.legend(handles=ax.plot([0, 1], label="a long legend entry"), loc="upper center")
    assert any("the legend covers the text 'title'" in p for p in audit(fig, dpi=100))


def test_guide_lines_may_cross_a_legend():
    fig, ax = new_axes()
    ax.axhline(0.9, label="chance")
    ax.plot([0, 1], [0.1, 0.2], label="curve")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper right")
    assert audit(fig, dpi=100) == []


def test_a_legend_outside_the_axes_covers_nothing():
    fig, ax = new_axes(figsize=(7, 3.5))
    ax.plot(np.linspace(0, 1, 20), np.linspace(0, 1, 20), label="everywhere")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    assert audit(fig, dpi=100) == []


@pytest.mark.parametrize("fontsize", [7, 8])
def test_the_limit_is_ten_pixels(fontsize):
    fig, ax = new_axes()
    ax.text(0.5, 0.5, "label", fontsize=fontsize)  # 7 pt = 9.7 px, 8 pt = 11.1 px at 100 dpi
    assert bool(audit(fig, dpi=100)) == (fontsize == 7)
