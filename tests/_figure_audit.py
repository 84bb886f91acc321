"""Is a figure readable where the notebook shows it? Text size, colliding labels, legends on data.

audit(fig, dpi, width_px) measures a drawn matplotlib figure as a learner sees it: an image
wider than the notebook's output area is scaled down to fit (JupyterLab: max-width 100 %), so a
label's size on screen is fontsize (pt) / 72 * dpi * scale. It returns a list of problems, each
a short sentence naming the text involved.

tests/conftest.py installs this into every notebook kernel the suite starts (an IPython startup
file), so each figure a lesson draws, static or a widget's picture, is audited as it is rendered;
notebooks/test_figure_readability.py then reads the report.
"""
from __future__ import annotations

import itertools

import numpy as np
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Text

# The notebook's output area in JupyterLab 4 at a 1400 px wide window with the file browser open
# (measured in Chromium: about 1000 px); an image wider than this is shrunk to fit.
OUTPUT_WIDTH_PX = 1000
MIN_TEXT_PX = 10          # the smallest text a learner (or a projector) can read
OVERLAP_SHARE = 0.2       # two labels collide when their boxes share this much of the smaller one


def _texts(fig, renderer):
    """(text, its box in pixels) of every non-empty text the last draw actually drew."""
    found = []
    for t in _drawn_texts(fig):
        if not t.get_text().strip() or t.get_alpha() == 0:
            continue
        box = t.get_window_extent(renderer)
        if box.width < 1 or box.height < 1 or not box.overlaps(fig.bbox):
            continue
        if t.get_clip_on() and t.get_clip_box() is not None and not box.overlaps(t.get_clip_box()):
            continue  # clipped away
        found.append((t, box))
    return found


def _drawn_texts(fig) -> list[Text]:
    """Draw fig, noting each Text drawn (axes keep labels for ticks outside the view, undrawn)."""
    drawn, draw = [], Text.draw

    def noting(self, renderer):
        if self.get_visible():
            drawn.append(self)
        return draw(self, renderer)

    Text.draw = noting
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    return list(dict.fromkeys(drawn))  # once each, in drawing order


def _name(t: Text) -> str:
    return repr(t.get_text().strip().replace("\n", " ")[:30])


def _share(a, b) -> float:
    """The intersection of two boxes as a share of the smaller one's area."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / max(1.0, min(a.width * a.height, b.width * b.height))


def _in_legend(t: Text) -> Legend | None:
    """The legend a text belongs to, if any."""
    for legend in t.figure.findobj(Legend):
        if t in legend.get_texts() or t is legend.get_title():
            return legend
    return None


def audit(fig, dpi: float, width_px: float | None = None) -> list[str]:
    """Problems a learner would see in fig rendered at dpi and shown width_px wide (None: natural)."""
    texts = _texts(fig, fig.canvas.get_renderer())  # draws the figure
    renderer = fig.canvas.get_renderer()
    natural = fig.get_figwidth() * dpi
    scale = min(1.0, OUTPUT_WIDTH_PX / (width_px or natural))
    problems = []
    small = [(t.get_fontsize() / 72 * dpi * scale, t) for t, _ in texts]
    small = sorted(((px, t) for px, t in small if px < MIN_TEXT_PX - 0.05), key=lambda pair: pair[0])
    if small:
        px, t = small[0]
        problems.append(f"text {_name(t)} is {px:.1f} px on screen ({len(small)} texts under "
                        f"{MIN_TEXT_PX} px; figure {natural:.0f} px wide, shown at {scale:.0%})")
    legends = {id(t): _in_legend(t) for t, _ in texts}
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        if legends[id(a)] is not None and legends[id(a)] is legends[id(b)]:
            continue  # a legend lays out its own entries
        if _share(box_a, box_b) > OVERLAP_SHARE:
            problems.append(f"texts {_name(a)} and {_name(b)} overlap")
    for legend in fig.findobj(Legend):
        box = legend.get_window_extent(renderer)
        for t, tbox in texts:
            if legends[id(t)] is None and _share(box, tbox) > OVERLAP_SHARE:
                problems.append(f"the legend covers the text {_name(t)}")
        ax = legend.axes
        if ax is None or not box.overlaps(ax.bbox):
            continue  # a legend outside the plot covers nothing
        inner = box.padded(-2)
        for line in ax.get_lines():
            xy = line.get_xydata()
            if len(xy) == 0 or not line.get_visible():
                continue
            pts = ax.transData.transform(np.asarray(xy, dtype=float))
            inside = ((pts[:, 0] > inner.x0) & (pts[:, 0] < inner.x1)
                      & (pts[:, 1] > inner.y0) & (pts[:, 1] < inner.y1))
            if inside.any() and not _is_reference_line(line):
                problems.append(f"the legend covers data of the line {line.get_label()!r}")
                break
        for image in ax.findobj(AxesImage):
            if _share(box, image.get_window_extent(renderer)) > 0:
                problems.append("the legend covers the image's cells")
                break
    return problems


def _is_reference_line(line: Line2D) -> bool:
    """A horizontal or vertical guide (axhline, axvline), which a legend may cross."""
    xy = line.get_xydata()
    return len(xy) == 2 and (xy[0][0] == xy[1][0] or xy[0][1] == xy[1][1])
