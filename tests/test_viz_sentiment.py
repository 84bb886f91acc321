"""Tests for llmlab.viz.sentiment: the static twin draws what the classifier computes, and the
explorer follows its controls and reports bad input without raising."""
import pytest
import torch
from matplotlib.figure import Figure

from llmlab.classifier import GPTClassifier, occlusion, predict_proba, sentence_attention
from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import CharTokenizer
from llmlab.viz import SentimentExplorer, plot_sentiment

pytestmark = pytest.mark.usefixtures("no_pyplot_figures", "one_thread")
TOK = CharTokenizer.train("abcdefghijklmnopqrstuvwxyz .")


def classifier():
    torch.manual_seed(0)
    return GPTClassifier(GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=48, n_layer=2,
                                       n_head=2, n_embd=16)))


def test_plot_sentiment_draws_the_attention_and_the_occlusion_it_computes():
    model, sentence = classifier(), "a good day"
    fig = plot_sentiment(model, TOK, sentence)
    assert isinstance(fig, Figure)
    ax_att, ax_occ = fig.axes[:2]
    tokens, weights = sentence_attention(model, TOK, sentence)
    assert len(tokens) == len(sentence) and weights.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert [b.get_height() for b in ax_att.patches] == pytest.approx(weights.tolist())
    assert [b.get_height() for b in ax_occ.patches] == pytest.approx([d for _, d in
                                                                      occlusion(model, TOK, sentence)])
    p = predict_proba(model, TOK, [sentence])[0, 1].item()
    assert f"P(positive) = {p:.2f}" in fig._suptitle.get_text()
    first = sentence_attention(model, TOK, sentence, layer=0)[1]
    assert not torch.allclose(first, weights)  # the layer matters
    with pytest.raises(ValueError, match="layer must be an int from -2 to 1"):
        sentence_attention(model, TOK, sentence, layer=2)


def test_the_explorer_follows_its_controls_and_reports_an_empty_sentence():
    model = classifier()
    explorer = SentimentExplorer(model, TOK, "a good day")
    first_png, first_p = explorer.image.value, explorer.probability
    assert first_p == pytest.approx(predict_proba(model, TOK, ["a good day"])[0, 1].item())
    explorer.layer.value = 0
    assert explorer.image.value != first_png
    explorer.sentence.value = "a bad day"
    assert explorer.probability == pytest.approx(predict_proba(model, TOK, ["a bad day"])[0, 1].item())
    explorer.sentence.value = ""
    assert explorer.probability is None and "empty" in explorer.message
    assert "Cannot read this" in explorer.verdict.value
