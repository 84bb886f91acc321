"""The alignment explorer and its static twin: what the decoder read for each output token."""
import numpy as np
import pytest
import torch

from llmlab.beam_search import alignment, translate
from llmlab.date_task import source_vocab, target_vocab
from llmlab.seq2seq import Seq2Seq, Seq2SeqConfig
from llmlab.viz import AlignmentExplorer, plot_alignment


@pytest.fixture(scope="module")
def setup():
    sv, tv = source_vocab(), target_vocab()
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(len(sv), len(tv), src_block_size=38, tgt_block_size=11,
                                  n_embd=16, n_head=2)).eval()
    return model, sv, tv


def test_alignment_rows_are_the_output_tokens_and_columns_the_source(setup):
    model, sv, tv = setup
    found = alignment(model, sv, tv, "5 Dec 2026")
    assert found.output == translate(model, sv, tv, "5 Dec 2026")
    assert found.source_tokens == list("5 Dec 2026") + ["</s>"]
    L, H, T, S = found.cross_attention.shape
    assert (L, H, S) == (2, 2, 11) and T == len(found.output_tokens)
    torch.testing.assert_close(found.cross_attention.sum(-1), torch.ones(L, H, T))


def test_explorer_follows_the_source_and_the_chosen_output_token(setup):
    model, sv, tv = setup
    e = AlignmentExplorer(model, sv, tv, [("5 Dec 2026", "2026-12-05"), ("June 1, 1999", "1999-06-01")])
    first = e.image.value
    assert first and ("expected 2026-12-05" in e.verdict.value or "✓ correct" in e.verdict.value)
    e.example.value = "June 1, 1999"  # picking an example fills the source box and translates it
    assert e.source.value == "June 1, 1999" and e.found.source_tokens[:4] == list("June")
    assert e.image.value != first
    shown = e.image.value
    e.query.value = len(e.query.options) - 1
    assert e.image.value != shown
    e.source.value = "the 5th of Décember 2026"  # a character the vocabulary lacks
    assert "Cannot translate" in e.verdict.value and "'é'" in e.message
    assert e.image.layout.visibility == "hidden"  # the old picture is not shown as its answer
    assert e.example.value is None  # a typed source selects no example, so any can be picked again
    e.example.value = "June 1, 1999"
    assert e.source.value == "June 1, 1999" and e.image.layout.visibility == "visible"


def test_examples_with_targets_are_marked_and_mistakes_come_first(setup):
    model, sv, tv = setup
    pairs = [("5 Dec 2026", "2026-12-05"), ("June 1, 1999", translate(model, sv, tv, "June 1, 1999"))]
    e = AlignmentExplorer(model, sv, tv, pairs)
    labels = [label for label, _ in e.example.options]
    assert labels[-1] == "✓ June 1, 1999"  # the untrained model's own answer counts as right
    assert labels[0] in ("✗ 5 Dec 2026", "✓ 5 Dec 2026") and len(labels) == 2


def test_static_twin_draws_the_non_square_map(setup):
    model, sv, tv = setup
    fig = plot_alignment(model, sv, tv, "5 Dec 2026", query=2)
    heat = fig.axes[0].images[0].get_array()
    found = alignment(model, sv, tv, "5 Dec 2026")
    assert heat.shape == (len(found.output_tokens), 11)
    np.testing.assert_allclose(np.asarray(heat), found.cross_attention[-1].mean(0).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="query=99"):
        plot_alignment(model, sv, tv, "5 Dec 2026", query=99)
