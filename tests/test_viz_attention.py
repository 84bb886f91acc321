"""Tests for the attention viewer: the data contract, the static plots, CJK labels and the explorer."""
import io
import re
import shutil

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

import llmlab.viz as viz
from llmlab import data
from llmlab.viz import _attention_draw
from llmlab.viz._render import figure_to_png
from llmlab.viz._attention_draw import (display_label, find_cjk_font, has_cjk, png_bytes,
                                        tick_families)
from llmlab.viz.attention import (AttentionData, AttentionExplorer, as_attention, plot_attention,
                                  plot_attention_grid, plot_query_attention)

TOKENS = ["The", "cat", "sat", "on", "the", "mat"]


def causal_weights(*lead, T=6, seed=0) -> torch.Tensor:
    """Softmaxed random causal attention of shape (*lead, T, T)."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(*lead, T, T, generator=g) * 2
    hidden = torch.ones(T, T, dtype=torch.bool).triu(1)
    return scores.masked_fill(hidden, float("-inf")).softmax(-1)  # (*lead, T, T)


pytestmark = pytest.mark.usefixtures("no_pyplot_figures")  # tests/conftest.py


@pytest.fixture
def no_cjk_font(monkeypatch):
    """Pretend the machine has no CJK font, whatever is installed."""
    monkeypatch.setattr(_attention_draw, "find_cjk_font", lambda: None)


# --- the data contract ----------------------------------------------------------------------

@pytest.mark.parametrize("shape, layers, heads", [((6, 6), 1, 1), ((4, 6, 6), 1, 4),
                                                  ((3, 4, 6, 6), 3, 4)])
def test_accepts_2d_3d_4d(shape, layers, heads):
    w = causal_weights(*shape[:-2])
    data = as_attention(w.numpy(), TOKENS)
    assert data.weights.shape == (layers, heads, 6, 6)
    assert data.weights.dtype == np.float32
    np.testing.assert_allclose(data.weights.reshape(w.shape), w.numpy(), atol=1e-7)
    assert data.query_tokens == data.key_tokens == tuple(TOKENS) and data.is_self_attention


def test_accepts_bfloat16_with_grad_and_float16():
    w = causal_weights(2).to(torch.bfloat16).requires_grad_()
    data = as_attention(w * 1, TOKENS)  # a non-leaf tensor with grad_fn, as a model returns
    assert data.weights.shape == (1, 2, 6, 6)
    as_attention(causal_weights(2).half(), TOKENS)  # float16 rounding is within tolerance


def test_relabelling_checked_data_keeps_what_was_not_replaced():
    data = as_attention(causal_weights(2), TOKENS)
    masked = as_attention(data, masked="causal")
    assert masked.query_tokens == tuple(TOKENS) and masked.masked is not None
    renamed = as_attention(masked, list("abcdef"))
    assert renamed.key_tokens == tuple("abcdef") and renamed.masked is not None


def test_token_labels_are_readable_and_safe():
    assert display_label(" the") == "␣the" and display_label("\n") == "⏎"
    assert display_label("$5") + display_label("$6") == r"\$5\$6"  # no accidental mathtext
    assert display_label("internationalisation") == "internationa"[:11] + "…"


def test_weights_are_read_only_and_repr_is_short():
    data = as_attention(causal_weights(2), TOKENS)
    with pytest.raises(ValueError):
        data.weights[0, 0, 0, 0] = 1.0
    assert repr(data) == "AttentionData(layers=1, heads=2, T_q=6, T_k=6, self-attention)"
    assert as_attention(data) is data


def test_nn_multihead_attention_needs_batch_index():
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True)
    x = torch.randn(3, 6, 8)  # (B, T, C)
    _, w = mha(x, x, x, need_weights=True, average_attn_weights=False)  # (B, H, T, T)
    data = as_attention(w, TOKENS, batch_index=1)
    assert data.weights.shape == (1, 2, 6, 6)
    np.testing.assert_allclose(data.weights[0], w[1].detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"weights has shape \(1, 3, 2, 6, 6\): a batch of 3 "
                                         r"sequences\. Choose the one to show with batch_index=0"):
        as_attention(w.unsqueeze(0), TOKENS)  # (1, B, H, T, T): a stack needs a batch_index
    with pytest.raises(ValueError, match=r"batch_index=3 is not valid for a batch of 3"):
        as_attention(w, TOKENS, batch_index=3)


def test_hugging_face_style_tuple_of_layers():
    layers = tuple(causal_weights(2, 4, seed=i) for i in range(3))  # 3 x (B, H, T, T)
    data = as_attention(layers, TOKENS, batch_index=1)
    assert data.weights.shape == (3, 4, 6, 6)
    np.testing.assert_allclose(data.weights[2], layers[2][1].numpy(), atol=1e-7)
    single = as_attention([l[:1] for l in layers], TOKENS)  # batch of one: no index needed
    assert single.weights.shape == (3, 4, 6, 6)
    per_layer = as_attention([l[0] for l in layers], TOKENS)  # list of (H, T, T)
    assert per_layer.weights.shape == (3, 4, 6, 6)
    with pytest.raises(ValueError, match=r"layer 0 has shape \(2, 4, 6, 6\): a batch of 2"):
        as_attention(layers, TOKENS)
    with pytest.raises(ValueError, match="layer 1 is None.*attn_implementation='eager'"):
        as_attention([layers[0], None], TOKENS, batch_index=0)
    with pytest.raises(ValueError, match=r"layer 1 has shape \(2, 6, 6\) but layer 0 has "
                                         r"\(4, 6, 6\)"):
        as_attention([layers[0][0], layers[1][0, :2]], TOKENS)
    with pytest.raises(ValueError, match="have no batch dimension.*drop batch_index"):
        as_attention([l[0] for l in layers], TOKENS, batch_index=0)


def test_cross_attention_has_its_own_key_tokens():
    w = torch.rand(2, 3, 5).softmax(-1)  # (H, T_q, T_k)
    data = as_attention(w, ["le", "chat", "dort"], ["the", "cat", "is", "asleep", "."])
    assert data.weights.shape == (1, 2, 3, 5) and not data.is_self_attention
    with pytest.raises(ValueError, match="T_q=3 query positions but T_k=5 key positions, and "
                                         "key_tokens was not given"):
        as_attention(w, ["le", "chat", "dort"])
    with pytest.raises(ValueError, match="weights have T_k=5 key positions but 4 key_tokens"):
        as_attention(w, ["le", "chat", "dort"], ["the", "cat", "is", "."])


@pytest.mark.parametrize("weights, tokens, error, message", [
    (causal_weights(T=7), TOKENS, ValueError,
     "weights have T_q=7 query positions but 6 query_tokens were given"),
    (causal_weights(), "The cat sat on the mat", TypeError, "query_tokens is one string"),
    (torch.rand(6).softmax(-1), TOKENS, ValueError, r"weights have 1 dimensions \(shape \(6,\)\)"),
    (torch.rand(1, 1, 1, 1, 1, 6, 6), TOKENS, ValueError, "weights have 7 dimensions"),
    (np.zeros((0, 6, 6)), TOKENS, ValueError, "are empty"),
    (np.array([["a", "b"]]), None, TypeError, "real numbers"),
])
def test_shape_and_type_errors(weights, tokens, error, message):
    with pytest.raises(error, match=message):
        as_attention(weights, tokens)


def test_nan_and_inf_are_located():
    w = causal_weights(2, 3).clone()
    w[1, 2, 3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"the first is NaN at layer 1, head 2, query row 3 "
                                         r"\('on'\), key 1 \('cat'\)\. A query whose keys are all "
                                         "masked"):
        as_attention(w, TOKENS)
    w[1, 2, 3, 1] = float("inf")
    with pytest.raises(ValueError, match="the first is inf at layer 1, head 2"):
        as_attention(w, TOKENS)


def test_negative_weights_suggest_softmax():
    scores = torch.randn(6, 6)
    with pytest.raises(ValueError, match="negative values.*Did you pass the scores before softmax"):
        as_attention(scores, TOKENS)


def test_rows_must_sum_to_one_unless_told_otherwise():
    w = causal_weights(3).clone()
    w[1, 2] *= 0.5
    with pytest.raises(ValueError, match=r"layer 0, head 1, query row 2 \('sat'\) sums to 0\.5000 "
                                         r"\(1 rows are off\).*check_rows=False.*all zero"):
        as_attention(w, TOKENS)
    assert as_attention(w, TOKENS, check_rows=False).weights.shape == (1, 3, 6, 6)
    w = causal_weights(3).clone()
    w[0, 5] = 0.0  # a fully masked (padding) query row is legitimately all zero
    as_attention(w, TOKENS)


def test_swapped_axes_get_a_hint():
    w = causal_weights().T.contiguous()  # columns sum to 1
    with pytest.raises(ValueError, match=r"axes swapped\? .*transpose\(-1, -2\)"):
        as_attention(w, TOKENS)


def test_masked_cells():
    w = causal_weights(2)
    data = as_attention(w, TOKENS, masked="causal")
    np.testing.assert_array_equal(data.masked, np.triu(np.ones((6, 6), bool), 1))
    keys = np.array([False] * 5 + [True])  # (T_k,): hide the last key from every query
    assert as_attention(w[..., :5, :], TOKENS[:5], TOKENS, masked=keys).masked.shape == (5, 6)
    with pytest.raises(TypeError, match=r"masked must be a boolean array.*attention_mask\[0\] == 0"):
        as_attention(w, TOKENS, masked=np.ones((6, 6)))
    with pytest.raises(ValueError, match=r"masked has shape \(5,\), which does not broadcast to "
                                         r"\(T_q, T_k\) = \(6, 6\)"):
        as_attention(w, TOKENS, masked=np.zeros(5, bool))
    keep = torch.ones(6, 6, dtype=torch.bool).tril()  # llmlab.attention.causal_mask's convention
    with pytest.raises(ValueError, match="as hidden but its weight is .*pass ~mask"):
        as_attention(w, TOKENS, masked=keep)
    as_attention(w, TOKENS, masked=~keep)


def test_queries_that_see_no_key_are_shown_masked_whatever_they_hold():
    pad = np.array([True, True, False, False, False, False])  # left padding: two tokens
    hidden = np.triu(np.ones((6, 6), bool), 1) | pad[None, :]
    scores = torch.randn(2, 6, 6, generator=torch.Generator().manual_seed(0))
    w = scores.masked_fill(torch.from_numpy(hidden), float("-inf")).softmax(-1)  # (2, 6, 6)
    assert torch.isnan(w[:, :2]).all()  # what a -inf mask gives a query that sees no key
    w[0, :2] = 1 / 6  # what Hugging Face writes there: even weights on every key
    data = as_attention(w, TOKENS, masked=hidden)
    assert (data.weights[:, :, :2] == 0).all()  # drawn masked, stored as no attention at all
    np.testing.assert_array_equal(data.weights[0, :, 2:], w[:, 2:].numpy())
    assert torch.isnan(w[1, 0]).all()  # the caller's tensor is left as it was
    with pytest.raises(ValueError, match="hides every key from every query.*pass ~mask"):
        as_attention(w, TOKENS, masked=np.ones(6, bool))


def test_a_left_padded_hugging_face_batch_follows_the_documented_recipe(tmp_path):
    import transformers  # in the tested set (requirements.txt): a missing one fails
    from llmlab.gpt import GPT, GPTConfig
    from llmlab.hf import save_hf
    from llmlab.tokenizers import BPETokenizer

    tok = BPETokenizer.train("the cat sat on the mat " * 20, 265, special_tokens=["<|endoftext|>"])
    torch.manual_seed(0)
    folder = save_hf(GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=16)),
                     tok, tmp_path / "tiny")
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    hf_tok.padding_side, hf_tok.pad_token = "left", hf_tok.eos_token
    model = transformers.GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager",
                                                         local_files_only=True).eval()
    enc = hf_tok(["The cat sat on the mat", "the cat"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    i = 1
    pad = (enc["attention_mask"][i] == 0).numpy()
    T, n_pad = len(pad), int(pad.sum())
    assert n_pad >= 2 and len(out.attentions) == 2 and out.attentions[0].shape == (2, 2, T, T)
    assert out.attentions[0][i, 0, 0, -1] > 0.01  # a padding query's row: weight even on the future
    tokens = hf_tok.convert_ids_to_tokens(enc["input_ids"][i])
    with pytest.raises(ValueError, match=r"causal part added the mask fits.*np\.triu.*pad\[None, :\]"):
        as_attention(out.attentions, tokens, batch_index=i, masked=pad)  # padding keys only
    masked = np.triu(np.ones((T, T), bool), 1) | pad[None, :]  # the recipe in the docs
    data = as_attention(out.attentions, tokens, batch_index=i, masked=masked)
    assert (data.weights[:, :, :n_pad] == 0).all()
    np.testing.assert_allclose(data.weights[:, :, n_pad:],
                               torch.stack(out.attentions)[:, i, :, n_pad:].numpy())
    fig = plot_attention([a[i] for a in out.attentions], tokens, layer=1, head=0, masked=masked)
    shown = fig.axes[0].images[0].get_array()
    assert np.ma.getmaskarray(shown)[:n_pad].all()  # padding query rows: grey, hatched
    ex = AttentionExplorer(out.attentions, tokens, batch_index=i, masked=masked)
    ex.query.value = 0
    assert (ex.current_query_weights == 0).all()


# --- static plots ---------------------------------------------------------------------------

def test_plot_attention_draws_one_labelled_head():
    w = causal_weights(2, 3)
    fig = plot_attention(w, TOKENS, layer=1, head=2, masked="causal")
    ax = fig.axes[0]
    image = ax.images[0]
    assert image.get_clim() == (0.0, 1.0)  # fixed scale, so heads compare
    assert "query" in ax.get_ylabel() and "key" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
    assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
    assert "layer 1 · head 2" in ax.get_title(loc="left")
    shown = image.get_array()
    np.testing.assert_allclose(shown.data, w[1, 2].numpy(), atol=1e-6)
    # Masked cells are not drawn as zero: they are masked in the image and hatched on top.
    np.testing.assert_array_equal(np.ma.getmaskarray(shown), np.triu(np.ones((6, 6), bool), 1))
    assert tuple(image.cmap.get_bad()) != tuple(image.cmap(0.0))
    (hatch,) = [p for p in ax.patches if p.get_hatch()]
    assert hatch.get_visible()
    hidden = np.triu(np.ones((6, 6), bool), 1)
    for (i, j), is_hidden in np.ndenumerate(hidden):  # (x, y) = (key j, query i) at cell centres
        assert hatch.get_path().contains_point((j, i)) == is_hidden
    assert "masked" in fig.legends[0].get_texts()[0].get_text()
    assert len(fig.axes) == 2  # the heatmap and its colourbar
    assert fig.canvas.get_width_height()  # renders without pyplot


def test_plot_attention_into_a_given_ax_and_mean_of_heads():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    w = causal_weights(4)
    assert plot_attention(w, TOKENS, head="mean", ax=ax, colorbar=False) is fig
    np.testing.assert_allclose(ax.images[0].get_array().data, w.mean(0).numpy(), atol=1e-6)
    assert "mean of 4 heads" in ax.get_title(loc="left")
    assert not any(p.get_visible() for p in ax.patches if p.get_hatch())  # nothing masked


def test_annotations_and_their_limit():
    fig = plot_attention(causal_weights(), TOKENS, annotate=True)
    assert len(fig.axes[0].texts) == 36
    with pytest.raises(ValueError, match="annotate=True would print 4096 numbers"):
        plot_attention(causal_weights(T=64), None, annotate=True)
    with pytest.raises(ValueError, match="at most 12 tokens"):
        plot_attention(causal_weights(T=13), None, annotate=True)


@pytest.mark.parametrize("T", [3, 8, 12])
def test_annotated_heatmaps_are_readable(T):
    from _figure_audit import audit  # tests/_figure_audit.py

    fig = plot_attention(causal_weights(T=T), [f"w{i}" for i in range(T)], annotate=True)
    assert audit(fig, dpi=100) == []


def test_long_sequences_are_cropped_and_the_title_says_so():
    w = causal_weights(T=300)
    ax = plot_attention(w).axes[0]
    assert ax.get_title(loc="left").endswith("tokens 0–63 of 300")
    assert ax.images[0].get_array().shape == (64, 64)
    ax = plot_attention(w, start=100).axes[0]
    assert "tokens 100–163 of 300" in ax.get_title(loc="left")
    assert ax.get_yticklabels()[0].get_text() == "100"
    ax = plot_attention(w, start=1000).axes[0]  # clamped so the window stays full
    assert "tokens 236–299 of 300" in ax.get_title(loc="left")
    ax = plot_attention(w, max_tokens=None).axes[0]
    assert ax.images[0].get_array().shape == (300, 300) and len(ax.get_xticks()) <= 64


def test_bad_crop_is_named():
    with pytest.raises(ValueError, match="max_tokens='64' must be a positive int"):
        plot_attention(causal_weights(), TOKENS, max_tokens="64")


def test_bad_layer_and_head_are_named():
    with pytest.raises(ValueError, match=r"layer=5 is out of range: the weights have 1 layer"):
        plot_attention(causal_weights(2), TOKENS, layer=5)
    with pytest.raises(ValueError, match=r'head=2 is out of range.*from 0 to 1 or "mean"'):
        plot_attention(causal_weights(2), TOKENS, head=2)


def test_plot_query_attention_shows_one_row():
    w = causal_weights(2)
    fig = plot_query_attention(w, head=1, query_index=3, query_tokens=TOKENS, masked="causal")
    ax = fig.axes[0]
    (bars,) = [c for c in ax.collections if not c.get_hatch()]
    heights = [path.get_extents().y1 for path in bars.get_paths()]
    np.testing.assert_allclose(heights, w[1, 3].numpy(), atol=1e-6)
    (ghost,) = [c for c in ax.collections if c.get_hatch()]  # the keys after "on" are hidden
    np.testing.assert_allclose(ghost.get_paths()[0].get_extents().intervalx, (3.5, 5.5))
    assert "query 3 'on'" in ax.get_title(loc="left") and ax.get_ylim() == (0.0, 1.0)
    with pytest.raises(ValueError, match="query_index=6 is out of range: there are 6 queries"):
        plot_query_attention(w, query_index=6)


def test_grid_of_heads_and_of_layers():
    w = causal_weights(2, 3)
    fig = plot_attention_grid(w, TOKENS, layer=1, masked="causal")
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 3 and all(ax.images[0].get_clim() == (0, 1) for ax in heat)
    assert len([ax for ax in fig.axes if not ax.images]) == 1  # one shared colourbar
    np.testing.assert_allclose(heat[2].images[0].get_array().data, w[1, 2].numpy(), atol=1e-6)
    assert "layer 1, all 3 heads" in fig.get_suptitle()
    assert "key" in fig.get_supxlabel() and "query" in fig.get_supylabel()
    fig = plot_attention_grid(causal_weights(2, 3, T=40), layer=None)
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == 6 and "every layer and head" in fig.get_suptitle()
    assert all(len(ax.get_xticks()) == 0 for ax in heat)  # 40 tokens per panel: no tick labels


# --- CJK labels ------------------------------------------------------------------------------

def test_has_cjk():
    assert has_cjk(["床", "前"]) and has_cjk(["ひらがな"]) and has_cjk(["한국어"])
    assert not has_cjk(["The", "café", "naïve", "Ġthe"])


def test_find_cjk_font_prefers_simplified_chinese_and_can_find_none():
    known = ["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei"]
    assert find_cjk_font(known=known, system_files=[]) == "Noto Sans CJK SC"
    assert find_cjk_font(known=["DejaVu Sans", "Microsoft YaHei"], system_files=[]) == "Microsoft YaHei"
    assert find_cjk_font(known=["DejaVu Sans"], system_files=[], shipped="/nowhere/x.otf") is None


def test_without_a_system_cjk_font_the_course_font_is_registered_and_named():
    shipped = data.data_dir() / _attention_draw.SHIPPED_CJK_FONT
    name = find_cjk_font(known=["DejaVu Sans"], system_files=[])
    assert name == "LLMLab Sans SC"
    assert sum(f.fname == str(shipped) for f in font_manager.fontManager.ttflist) == 1
    find_cjk_font(known=["DejaVu Sans"], system_files=[])  # a second call adds no second entry
    assert sum(f.fname == str(shipped) for f in font_manager.fontManager.ttflist) == 1


def _glyph_image(text: str, families) -> np.ndarray:
    """text drawn in black on white at 40 pt with these font families, as a (H, W) grey array."""
    fig = matplotlib.figure.Figure(figsize=(1.2, 1.2), dpi=50)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, family=families, size=40, ha="center", va="center")
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., 0].astype(int)  # (H, W)


def test_the_course_font_draws_real_glyphs_where_dejavu_draws_empty_boxes():
    name = find_cjk_font(known=["DejaVu Sans"], system_files=[])
    families = [*matplotlib.rcParams["font.family"], name]
    with pytest.warns(UserWarning, match="missing from font"):  # DejaVu alone: boxes ("tofu")
        boxes = [_glyph_image(ch, ["DejaVu Sans"]) for ch in "床月"]
    assert (boxes[0] == boxes[1]).all()  # every missing glyph is the same box
    glyphs = [_glyph_image(ch, families) for ch in "床月"]
    assert (glyphs[0] != glyphs[1]).sum() > 100  # two characters, two different shapes
    for glyph, box in zip(glyphs, boxes):
        assert (glyph < 128).sum() > 50 and (glyph != box).sum() > 100  # ink, and not the box


def test_find_cjk_font_registers_a_font_file_missing_from_the_cache(tmp_path, monkeypatch):
    # A font installed after matplotlib cached its list is found on disk and registered.
    source = font_manager.findfont("DejaVu Sans")
    fake = tmp_path / "wqy-microhei.ttc"
    shutil.copy(source, fake)
    added = []
    monkeypatch.setattr(font_manager.fontManager, "addfont", added.append)
    assert find_cjk_font(known=[], system_files=["/fonts/DejaVuSans.ttf", str(fake)]) == "DejaVu Sans"
    assert added == [str(fake)]


def test_tick_families_add_a_cjk_fallback_or_warn_once():
    assert tick_families(["The", "cat"], finder=lambda: pytest.fail("no lookup needed")) is None
    families = tick_families(["床", "cat"], finder=lambda: "Noto Sans CJK SC")
    assert families == [*matplotlib.rcParams["font.family"], "Noto Sans CJK SC"]
    with pytest.warns(UserWarning, match="no font for them.*apt-get install fonts-noto-cjk") as rec:
        assert tick_families(["床", "前"], finder=lambda: None) is None
    assert len(rec) == 1


def test_cjk_labels_get_the_font_only_on_tick_labels(monkeypatch):
    monkeypatch.setattr(_attention_draw, "find_cjk_font", lambda: "Noto Sans CJK SC")
    ax = plot_attention(causal_weights(T=4), list("床前明月")).axes[0]
    assert ax.get_xticklabels()[0].get_fontfamily()[-1] == "Noto Sans CJK SC"
    assert ax.get_yticklabels()[0].get_fontfamily()[-1] == "Noto Sans CJK SC"
    assert "Noto Sans CJK SC" not in ax.xaxis.label.get_fontfamily()


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_cjk_without_a_font_still_draws(no_cjk_font):
    with pytest.warns(UserWarning, match="fonts-noto-cjk"):
        fig = plot_attention(causal_weights(T=4), list("床前明月"))
    assert figure_to_png(fig).startswith(b"\x89PNG")  # glyph boxes are fine; a crash is not


# --- the explorer ----------------------------------------------------------------------------

def png_pixels(data: bytes) -> np.ndarray:
    """Decode PNG bytes (checking they are a PNG) into an array."""
    assert bytes(data[:8]) == b"\x89PNG\r\n\x1a\n"
    return np.asarray(Image.open(io.BytesIO(bytes(data))))


@pytest.fixture(scope="module")
def explorer():
    """One explorer shared by the read-mostly tests (building one costs a full draw)."""
    tokens = [f"w{i}" for i in range(80)]
    return AttentionExplorer(causal_weights(2, 3, T=80), tokens, masked="causal")


def test_explorer_controls_change_the_view(explorer):
    e = explorer
    e.view.value, e.layer.value, e.head.value, e.start.value = "head", 0, 0, 0
    before, png = e.current_weights.copy(), bytes(e.image.value)
    assert "tokens 0–63 of 80" in e.current_title and e.start.layout.display != "none"
    e.layer.value = 1
    assert not np.allclose(e.current_weights, before) and "layer 1 · head 0" in e.current_title
    assert bytes(e.image.value) != png
    e.head.value = "mean"
    np.testing.assert_allclose(e.current_weights, e.data.weights[1, :, :64, :64].mean(0), atol=1e-6)
    png = bytes(e.image.value)
    e.query.value = 10
    np.testing.assert_allclose(e.current_query_weights, e.data.head(1, "mean")[10, :64], atol=1e-6)
    assert bytes(e.image.value) != png
    e.start.value = 16
    assert "tokens 16–79 of 80" in e.current_title and e.query.value == 16  # kept in the window
    np.testing.assert_allclose(e.current_weights, e.data.head(1, "mean")[16:, 16:], atol=1e-6)
    e.query.value = 3  # outside the window: the window follows the query
    assert e.start.value == 0 and "tokens 0–63" in e.current_title


def test_explorer_grid_views(explorer):
    e = explorer
    e.view.value, e.start.value = "layer", 0
    assert e.current_weights.shape == (3, 64, 64) and e.head.disabled
    assert "layer" in e.current_title and "all 3 heads" in e.current_title
    e.view.value = "all"
    assert e.current_weights.shape == (6, 64, 64) and e.layer.disabled
    e.view.value = "head"
    assert not e.head.disabled


def test_explorer_fast_redraw_matches_a_full_redraw(explorer):
    e = explorer
    e.view.value, e.layer.value, e.head.value, e.query.value = "head", 0, 1, 20
    e.head.value = 2  # drawn by blitting over the kept background
    fast = png_pixels(e.image.value).astype(int)
    e._backgrounds.clear()
    e.redraw()
    full = png_pixels(e.image.value).astype(int)
    assert fast.shape == full.shape
    assert (np.abs(fast - full).max(axis=-1) > 60).mean() < 0.02  # at most a pixel of layout drift


def test_png_bytes_round_trip():
    rgba = np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    np.testing.assert_array_equal(png_pixels(png_bytes(rgba)), rgba[..., :3])


def test_free_colour_scale_when_asked():
    w = causal_weights(2) * 0.5  # rows sum to 0.5: needs check_rows=False
    e = AttentionExplorer(w, TOKENS, check_rows=False, vmax=None)
    image = e.current_figure.axes[0].images[0]
    assert image.get_clim()[1] == pytest.approx(float(w[0].max()))
    e.head.value = 1
    assert image.get_clim()[1] == pytest.approx(float(w[1].max()))


def test_explorers_are_independent():
    a = AttentionExplorer(causal_weights(2, 2), TOKENS)
    b = AttentionExplorer(causal_weights(2, 2, seed=1), TOKENS)
    b_weights, b_png, b_title = b.current_weights.copy(), bytes(b.image.value), b.current_title
    a.layer.value, a.head.value = 1, 1
    assert "layer 1 · head 1" in a.current_title
    assert b.current_title == b_title and bytes(b.image.value) == b_png
    np.testing.assert_array_equal(b.current_weights, b_weights)
    assert a.current_figure is not b.current_figure


def test_explorer_saves_png_and_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    e = AttentionExplorer(causal_weights(2, 2), TOKENS, masked="causal", export_dpi=120)
    e.head.value = 1
    assert e.path.value == "attention_L0_H1.png"  # follows the view until the user types
    e.save_button.click()
    assert (tmp_path / "attention_L0_H1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "saved attention_L0_H1.png" in e.status.value
    e.save_svg_button.click()
    svg = (tmp_path / "attention_L0_H1.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    e.path.value = str(tmp_path / "mine.png")
    e.head.value = 0
    assert e.path.value == str(tmp_path / "mine.png")  # a typed name is kept
    e.save_button.click()
    assert png_pixels((tmp_path / "mine.png").read_bytes()).shape[1] == 10 * 120  # export dpi
    e.path.value = str(tmp_path / "missing" / "x.png")
    e.save_button.click()
    assert e.status.value.startswith("could not save") and "folder exists" in e.status.value
    # Saving turns every artist back on for the file and leaves the widget view intact.
    e.head.value = 1
    assert re.search("layer 0 · head 1", e.current_title)


def test_explorer_cross_attention_and_static_twin():
    w = torch.rand(2, 3, 5).softmax(-1)  # (H, T_q, T_k)
    e = AttentionExplorer(w, ["le", "chat", "dort"], ["the", "cat", "is", "asleep", "."])
    assert e.current_weights.shape == (3, 5) and e.start.layout.display == "none"
    fig = e.static_figure()
    assert fig.axes[0].images[0].get_array().shape == (3, 5)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["the", "cat", "is", "asleep", "."]


def test_public_names_are_exported():
    for name in ("as_attention", "AttentionData", "plot_attention", "plot_attention_grid",
                 "plot_query_attention", "AttentionExplorer"):
        assert hasattr(viz, name)
    assert isinstance(as_attention(causal_weights(), TOKENS), AttentionData)


@pytest.mark.parametrize("empty", [None, (), [], (None, None)])
def test_missing_weights_from_a_fused_kernel_name_the_eager_fix(empty):
    with pytest.raises(ValueError, match='attn_implementation="eager".*output_attentions=True'):
        AttentionExplorer(empty, ["a", "b"])


@pytest.mark.parametrize("H", [2, 4])
def test_a_masked_grid_keeps_its_legend_off_the_title(H):
    """Lesson 04's two-head grid: the "masked" legend once sat on the centred title."""
    from _figure_audit import audit  # tests/_figure_audit.py

    scores = torch.randn(1, H, 6, 6, generator=torch.Generator().manual_seed(H))
    w = torch.softmax(scores.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), -1e9), -1)
    fig = plot_attention_grid(w, list("abcdef"), layer=0, masked="causal")
    assert audit(fig, dpi=100) == []


def test_characters_without_a_glyph_are_named_not_boxed():
    """An emoji in a token has no glyph in the course's fonts: its code point shows instead."""
    from llmlab.viz._attention_draw import drawable, tick_families

    labels = ["a", "ok🦜", "诗", "é"]  # DejaVu Sans draws 😀 but not 🦜
    families = tick_families(labels)  # the CJK fallback (the course ships a CJK font)
    assert drawable(labels, families) == ["a", "okU+1F99C", "诗", "é"]
    assert drawable(["plain"]) == ["plain"]
    w = torch.full((1, 1, 4, 4), 0.25)
    fig = plot_attention(w, labels)
    assert "okU+1F99C" in [t.get_text() for t in fig.axes[0].get_xticklabels()]
