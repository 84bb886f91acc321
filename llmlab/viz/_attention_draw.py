"""The drawing pieces of the attention viewer, kept alive so a widget can redraw them quickly.

Each piece draws once, then `show` updates its artists in place (set_data, set_verts) and
`artists()` lists what changes between frames, for blitting. Also: token labels and a font
that can draw them, and PNG encoding fast enough for a widget.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
import zlib

import matplotlib
import numpy as np
from matplotlib import font_manager, ft2font
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch, PathPatch, Rectangle
from matplotlib.path import Path

from llmlab.data import data_dir

from ._attention_data import AttentionData, crop_note, head_view, window
from ._render import new_figure
from .sampling import readable_token

# Ranges of Chinese, Japanese and Korean characters (the ones DejaVu Sans cannot draw).
_CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0x303F), (0x3040, 0x30FF), (0x3130, 0x318F),
               (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF), (0xF900, 0xFAFF),
               (0xFF00, 0xFFEF), (0x20000, 0x3134F))
# Fonts that draw Chinese, Japanese and Korean, best first (name prefixes as matplotlib lists
# them), and the file names they ship as (lower case, without '-' or '_').
_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK", "Source Han Sans", "Noto Sans SC",
                 "WenQuanYi", "Microsoft YaHei", "PingFang", "Hiragino", "SimHei", "Heiti",
                 "STHeiti", "Droid Sans Fallback", "AR PL", "Noto Serif CJK", "Source Han Serif",
                 "SimSun", "Songti", "Yu Gothic", "Malgun Gothic", "Apple SD Gothic",
                 "NanumGothic", "IPAGothic", "IPAexGothic", "Arial Unicode MS",
                 "LLMLab Sans SC")  # last: the course's own font (below), once registered
_CJK_FILES = ("notosanscjk", "sourcehansans", "wqy", "msyh", "pingfang", "hiragino", "simhei",
              "droidsansfallback", "uming", "ukai", "notoserifcjk", "sourcehanserif", "simsun",
              "yugoth", "malgun", "applesdgothic", "nanumgothic", "ipag", "ipaexg")
# The course's own font, a subset of Noto Sans CJK SC (scripts/make_cjk_font.py): the fallback when
# the system has no CJK font, so Chinese labels render on a fresh machine, offline.
SHIPPED_CJK_FONT = "fonts/LLMLabSansSC-Regular.otf"  # in data/
CJK_FONT_FIX = ("install a CJK font, then restart the kernel: "
                "`sudo apt-get install fonts-noto-cjk` (Debian, Ubuntu; in Colab "
                "`!apt-get install -y fonts-noto-cjk`), "
                "`sudo dnf install google-noto-sans-cjk-fonts` (Fedora) or "
                "`sudo pacman -S noto-fonts-cjk` (Arch); macOS and Windows ship one already. "
                "Any font file also works: matplotlib.font_manager.fontManager.addfont(path)")
QUERY_LABEL = "query (attending from)"
KEY_LABEL = "key (attended to)"
_MASK_GREY, _HATCH_GREY, _HATCH = "#e4e4e4", "#9a9a9a", "//////"
_MAX_TICKS = 40  # more labels than this would need text under 7.5 pt (10 px at 100 dpi)


def has_cjk(labels) -> bool:
    """True if any label contains a Chinese, Japanese or Korean character."""
    return any(lo <= ord(ch) <= hi for text in labels for ch in text for lo, hi in _CJK_RANGES)


def display_label(token: str, width: int = 12) -> str:
    """A token as a tick label: whitespace made visible, '$' kept literal, long ones shortened."""
    text = readable_token(token)  # the same stand-ins (␣, ⏎) as the course's other plots
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("$", r"\$")  # an even number of $ would switch on mathtext


def _best_cjk(names) -> str | None:
    """The most preferred CJK family among font names, or None."""
    for wanted in _CJK_FAMILIES:
        for name in names:
            if name.startswith(wanted):
                return name
    return None


def _shipped_cjk_font(path=None) -> str | None:
    """Register the course's CJK font (data/fonts/) with matplotlib and name it, or None if absent."""
    if path is None:
        try:
            path = data_dir() / SHIPPED_CJK_FONT
        except FileNotFoundError:  # llmlab installed without its data folder
            return None
    path = str(path)
    if not os.path.isfile(path):
        return None
    if not any(f.fname == path for f in font_manager.fontManager.ttflist):
        try:
            font_manager.fontManager.addfont(path)  # adding twice would list it twice
        except (OSError, RuntimeError, ValueError):
            return None  # a damaged file: verify() in the tests names it
    return font_manager.FontProperties(fname=path).get_name()


def find_cjk_font(known=None, system_files=None, shipped=None) -> str | None:
    """Name a font family matplotlib can use for CJK text: the system's, else the course's own.

    None only if the system has none and data/fonts/ is missing. shipped: the course font's path
    (tests); by default data/fonts/LLMLabSansSC-Regular.otf.
    """
    if known is None:
        known = [f.name for f in font_manager.fontManager.ttflist]
    if _best_cjk(known):
        return _best_cjk(known)
    # matplotlib caches its font list, so a font installed after that cache was built is
    # missing from it: look on disk too, and register what we find (adding, never replacing).
    files = font_manager.findSystemFonts() if system_files is None else system_files
    for wanted in _CJK_FILES:
        for path in files:
            if wanted in os.path.basename(path).lower().replace("-", "").replace("_", ""):
                try:
                    font_manager.fontManager.addfont(path)
                    # One .ttc file holds several faces (Noto: JP, KR, SC, TC): take the best.
                    faces = [f.name for f in font_manager.fontManager.ttflist if f.fname == path]
                    return _best_cjk(faces) or font_manager.FontProperties(fname=path).get_name()
                except (OSError, RuntimeError, ValueError):
                    continue  # an unreadable file: try the next candidate
    # The system's fonts cover Japanese and Korean too; the course's covers common Chinese only.
    return _shipped_cjk_font(shipped)


def tick_families(labels, finder=None) -> list[str] | None:
    """Font families for labels: None (the default) unless they hold CJK, then a CJK fallback."""
    if not has_cjk(labels):
        return None
    name = (finder or find_cjk_font)()
    if name is None:
        warnings.warn("token labels contain Chinese/Japanese/Korean characters but matplotlib "
                      "has no font for them, so they show as empty boxes. To fix it, "
                      + CJK_FONT_FIX, UserWarning, stacklevel=3)
        return None
    # The default family first keeps Latin text as it was; matplotlib falls back glyph by glyph.
    return [*matplotlib.rcParams["font.family"], name]


def glyphs(families=None) -> set[int]:
    """The code points the fonts of families (as tick_families returns; None: default) can draw."""
    covered = set()
    for family in families or matplotlib.rcParams["font.family"]:
        path = font_manager.findfont(font_manager.FontProperties(family=[family]))
        covered.update(ft2font.FT2Font(path).get_charmap())  # reads the font file: ~4 ms
    return covered


def drawable(texts, families=None, covered=None) -> list[str]:
    """texts with every character the fonts cannot draw written as its code point (U+1F600).

    Without a glyph matplotlib draws an empty box, which says nothing; the code point says what
    is there (an emoji, say) and can be looked up. covered: glyphs(families), if already known.
    """
    texts = list(texts)
    if all(text.isascii() for text in texts):
        return texts  # every font the course uses draws ASCII
    covered = glyphs(families) if covered is None else covered
    return ["".join(ch if ch.isascii() or ord(ch) in covered else f"U+{ord(ch):04X}"
                    for ch in text) for text in texts]


def runs(hidden: np.ndarray):
    """(row, first, stop) of every run of True along the last axis of a (T_q, T_k) bool array."""
    padded = np.pad(hidden.astype(np.int8), ((0, 0), (1, 1)))  # (T_q, T_k + 2)
    rows, cols = np.nonzero(np.diff(padded, axis=1))  # run edges, in row-major order
    return rows[::2], cols[::2], cols[1::2]


def hidden_path(hidden: np.ndarray) -> Path:
    """One compound path of rectangles covering the hidden cells (one per run in a row)."""
    row, lo, hi = runs(hidden)
    x0, x1, y0, y1 = lo - 0.5, hi - 0.5, row - 0.5, row + 0.5
    corners = np.stack([np.stack(c, axis=-1) for c in
                        [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]], axis=1)  # (runs, 5, 2)
    codes = np.tile([Path.MOVETO] + [Path.LINETO] * 3 + [Path.CLOSEPOLY], len(row))
    return Path(corners.reshape(-1, 2), codes)


def _cmap(cmap):
    """The colormap with masked cells drawn light grey instead of as a value."""
    base = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    return base.with_extremes(bad=_MASK_GREY)


def png_bytes(rgba: np.ndarray, level: int = 3) -> bytes:
    """Encode an (H, W, 4) uint8 canvas as an RGB PNG, quickly: no row filters, light zlib."""
    # Pillow's adaptive row filtering costs ~4x this whole function at widget sizes; heatmaps
    # and text compress well without it. The figure is opaque, so the alpha channel is dropped.
    h, w, _ = rgba.shape
    rows = np.zeros((h, 1 + 3 * w), dtype=np.uint8)  # (H, 1 + 3W): filter byte 0, then RGB
    rows[:, 1:] = rgba[..., :3].reshape(h, 3 * w)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + chunk(b"IEND", b""))


def mask_handle() -> Patch:
    """The legend entry explaining grey hatched cells."""
    return Patch(fc=_MASK_GREY, ec=_HATCH_GREY, hatch=_HATCH,
                 label="masked (hidden from the query)")


def _set_ticks(ax, axis: str, labels, families) -> None:
    """Label every position with its token (every k-th when there are too many)."""
    where = list(range(0, len(labels), max(1, math.ceil(len(labels) / _MAX_TICKS))))
    # Past 40 labels every k-th token is labelled, never smaller text: 5 pt cannot be read.
    kwargs = {"fontsize": 9 if len(where) <= 16 else 7.5}
    if families:
        kwargs["family"] = families
    texts = drawable([display_label(labels[i]) for i in where], families)
    if axis == "x":
        ax.set_xticks(where, texts, rotation=90, **kwargs)
    else:
        ax.set_yticks(where, texts, **kwargs)


class Heatmap:
    """One head drawn on an ax, kept so a widget can redraw it with set_data, not re-plot it."""

    def __init__(self, ax, cmap="viridis", vmax=1.0, title_size=10):
        self.ax, self.vmax = ax, vmax
        self.title = ax.set_title(" ", loc="left", fontsize=title_size, pad=3)
        self.image = ax.imshow(np.zeros((1, 1)), cmap=_cmap(cmap), vmin=0.0, vmax=vmax,
                               interpolation="nearest", aspect="auto")
        # Hatching is one vector path over all hidden cells: a second image would double the
        # cost of a frame, and a path stays crisp in SVG.
        self.hatch = ax.add_patch(PathPatch(Path(np.zeros((1, 2))), fc="none", ec=_HATCH_GREY,
                                            hatch=_HATCH, lw=0))
        # A white line over a black one shows on every colour of the map.
        self.rows = [ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec=c, lw=w, visible=False,
                                            clip_on=False))
                     for c, w in (("black", 3.0), ("white", 1.3))]
        self.labels = self.key = None

    def show(self, matrix, hidden=None, q_labels=(), k_labels=(), families=None, ticks=True,
             row=None, title="") -> bool:
        """Draw weights, hidden cells hatched and one query row outlined; True if relabelled."""
        T_q, T_k = matrix.shape
        extent = (-0.5, T_k - 0.5, T_q - 0.5, -0.5)
        self.title.set_text(title)
        self.image.set_data(np.ma.masked_array(matrix, mask=False if hidden is None else hidden))
        if self.vmax is None:  # scale to this head's largest weight (heads no longer compare)
            self.image.set_clim(0.0, float(matrix.max()) or 1.0)
        any_hidden = hidden is not None and bool(hidden.any())
        self.hatch.set_visible(any_hidden)
        # Extents and stripes change only with the crop window; redoing them is the slow part.
        key = (extent, hidden.tobytes() if any_hidden else None)
        if key != self.key:
            self.key = key
            self.image.set_extent(extent)
            if any_hidden:
                self.hatch.set_path(hidden_path(hidden))
        for rect in self.rows:
            rect.set_visible(row is not None and 0 <= row < T_q)
            rect.set_bounds(-0.5, (row or 0) - 0.5, T_k, 1)
        labels = (q_labels, k_labels) if ticks else ((), ())
        if labels == self.labels:  # setting ticks is slow: only when they change
            return False
        self.labels = labels
        _set_ticks(self.ax, "y", labels[0], families)
        _set_ticks(self.ax, "x", labels[1], families)
        return True

    def artists(self) -> list:
        """What changes between frames (redrawn on top of the kept background)."""
        # The spines too: the image would otherwise paint over their inner half.
        return [self.image, self.hatch, *self.ax.spines.values(), *self.rows, self.title]


class QueryBars:
    """The weights of one query row as bars coloured like the heatmap, kept for fast redraws."""

    def __init__(self, ax, cmap="viridis", vmax=1.0):
        self.ax, self.vmax = ax, vmax
        self.cmap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
        # All bars in one collection: one draw call instead of one per key.
        self.bars = ax.add_collection(PolyCollection([], linewidths=0))
        self.labels = self.values = None
        self.title = ax.set_title(" ", loc="left", fontsize=9, pad=3)
        self.ghost = None  # hatched spans over the keys this query may not see
        self._glyphs = None  # (families, what their fonts draw): the title changes every frame
        ax.set(ylabel="weight", xlabel=KEY_LABEL)

    def show(self, data, layer, head, query, max_tokens, start, families=None) -> bool:
        """Draw query row `query`'s weights over the keys in the crop window; True if relabelled."""
        T_q, T_k = data.weights.shape[2:]
        if isinstance(query, bool) or not -T_q <= query < T_q:
            raise ValueError(f"query_index={query!r} is out of range: there are {T_q} queries, "
                             f"so pass an int from 0 to {T_q - 1}")
        query %= T_q
        ka, kb = window(T_k, max_tokens, start)
        row = data.head(layer, head)[query]  # (T_k,)
        self.values = values = row[ka:kb]  # (T_k',)
        n, top = len(values), self.vmax or float(values.max()) or 1.0
        x, zero = np.arange(n), np.zeros(n)
        corners = [(x - 0.4, zero), (x - 0.4, values), (x + 0.4, values), (x + 0.4, zero)]
        self.bars.set_verts(np.stack([np.stack(c, axis=-1) for c in corners], axis=1))  # (n, 4, 2)
        self.bars.set_facecolor(self.cmap(np.clip(values / top, 0, 1)))
        self.ax.set(xlim=(-0.5, n - 0.5), ylim=(0, top))
        hidden = np.zeros(n, bool) if data.masked is None else data.masked[query, ka:kb]
        # One hatched span per run of hidden keys: far cheaper to draw than a patch per key.
        _, lo, hi = runs(hidden[None, :])
        if self.ghost is not None:
            self.ghost.remove()
        self.ghost = self.ax.broken_barh(list(zip(lo - 0.5, hi - lo)), (0, top), facecolor="none",
                                         edgecolor=_HATCH_GREY, hatch=_HATCH, linewidth=0, zorder=0)
        what = "mean of heads" if head == "mean" else f"head {head}"
        outside = "" if (ka, kb) == (0, T_k) else (
            f"\nkeys {ka}–{kb - 1} of {T_k}; {max(0.0, row.sum() - values.sum()):.2f} of its weight "
            "falls outside")
        shown = display_label(data.query_tokens[query])
        if not shown.isascii():
            if self._glyphs is None or self._glyphs[0] != families:
                self._glyphs = (families, glyphs(families))
            shown = drawable([shown], covered=self._glyphs[1])[0]
        self.title.set_text(f"where query {query} '{shown}' looks (layer {layer} · {what}){outside}")
        self.title.set_family(families or matplotlib.rcParams["font.family"])
        if data.key_tokens[ka:kb] == self.labels:
            return False
        self.labels = data.key_tokens[ka:kb]
        _set_ticks(self.ax, "x", self.labels, families)
        return True

    def artists(self) -> list:
        """What changes between frames."""
        return [self.ghost, self.bars, self.title]


class HeadGrid:
    """A figure of heatmaps on one scale (the heads of a layer, or layers × heads), kept alive."""

    def __init__(self, data: AttentionData, all_layers: bool, cmap="viridis", vmax=1.0,
                 max_tokens=64, ncols=None, dpi=100):
        L, H = data.n_layers, data.n_heads
        n = L * H if all_layers else H
        if n > 256:
            raise ValueError(f"layers × heads = {n} panels is too many to read; pick one layer "
                             "with layer=0")
        self.data, self.all_layers, self.max_tokens = data, all_layers, max_tokens
        ncols = H if all_layers else (ncols or min(H, 4))
        T = min(max(data.weights.shape[2:]), max_tokens or 10**9)
        # At most 10 in wide (1000 px at 100 dpi, the notebook's output width): wider is shrunk.
        panel = min(1.7 if T <= 16 else 2.1, (10.0 - 1.3) / ncols)
        self.fig = new_figure(figsize=(panel * ncols + 1.3, panel * math.ceil(n / ncols) + 0.9),
                              dpi=dpi)
        axes = self.fig.subplots(math.ceil(n / ncols), ncols, squeeze=False, sharex=True,
                                 sharey=True)
        for ax in axes.flat[n:]:
            ax.set_visible(False)  # leftover cells of the last row
        self.maps = [Heatmap(ax, cmap, vmax, title_size=8) for ax in axes.flat[:n]]
        self.families = tick_families(data.query_tokens + data.key_tokens)
        self.fig.colorbar(self.maps[0].image, ax=axes, label="attention weight", shrink=0.7)
        self.fig.supxlabel(KEY_LABEL, fontsize=9)
        self.fig.supylabel(QUERY_LABEL, fontsize=9)
        if data.masked is not None and data.masked.any():
            self.fig.legend(handles=[mask_handle()], loc="outside upper right", frameon=False,
                            fontsize=8)
        # Left-aligned, so a "masked" legend in the upper right never sits on it.
        self.suptitle = self.fig.suptitle(" ", fontsize=10, x=0.02, ha="left")

    def show(self, layer, start, row=None) -> bool:
        """Draw the heads of `layer` (or of every layer) for the window at `start`."""
        layers = range(self.data.n_layers) if self.all_layers else [layer]
        pairs = [(l, h) for l in layers for h in range(self.data.n_heads)]
        shown, changed = [], False
        for (l, h), heat in zip(pairs, self.maps):
            matrix, hidden, q_labels, k_labels, qa, title = head_view(self.data, l, h,
                                                                       self.max_tokens, start)
            # Token ticks only where a reader can read them: a few tokens per panel.
            changed |= heat.show(matrix, hidden, q_labels, k_labels, self.families,
                                 ticks=max(matrix.shape) <= 16, title=f"L{l} H{h}",
                                 row=None if row is None else row - qa)
            shown.append(matrix)
        T_q, T_k = self.data.weights.shape[2:]
        note = crop_note(window(T_q, self.max_tokens, start), window(T_k, self.max_tokens, start),
                         T_q, T_k)
        what = ("every layer and head" if self.all_layers
                else f"layer {layer}, all {len(shown)} heads")
        self.title = " · ".join(t for t in (what, note) if t)
        self.suptitle.set_text(self.title)
        self.weights = np.stack(shown)  # (panels, T_q', T_k')
        return changed

    def artists(self) -> list:
        """What changes between frames."""
        return [a for heat in self.maps for a in heat.artists()] + [self.suptitle]
