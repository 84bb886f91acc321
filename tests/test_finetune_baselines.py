"""Tests for what lesson 07 compares: length-bucketed sentence batches, cached features for a
linear probe, the bag-of-words baseline, zero-shot prompting, and their plots."""
import collections

import matplotlib
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.bag_of_words import BagOfWords, words
from llmlab.batches import TensorExamples
from llmlab.classifier import (ClassifierConfig, GPTClassifier, SentenceBatches, accuracy,
                               classification_loss, confusion_matrix, correct, frozen_features,
                               mcnemar_p)
from llmlab.gpt import GPT, GPTConfig
from llmlab.prompting import continuation_logprob, zero_shot_scores
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, train
from llmlab.viz import plot_accuracies, plot_metric

matplotlib.use("Agg")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TOK = CharTokenizer.train("abcdefghijklmnopqrstuvwxyz !.")
# Lengths from 1 to 40 characters, labels alternating: bucketing has something to group.
PAIRS = [("ab" * (1 + i % 20), i % 2) for i in range(200)]


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=16,
                         dropout=0.0))


# --- SentenceBatches: buckets of similar length ---------------------------------------------------

def test_bucketed_batches_hold_similar_lengths_and_draw_every_sentence_equally_often():
    data = SentenceBatches(TOK, PAIRS, 48)
    flat = SentenceBatches(TOK, PAIRS, 48, bucket=False)
    gen, gen_flat = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    counts = collections.Counter()
    spread, spread_flat = [], []
    for _ in range(3000):
        (ids, lengths), labels = data.sample(8, gen)
        spread.append(int(lengths.max() - lengths.min()))
        assert ids.shape == (8, int(lengths.max()))  # trimmed to the longest in the batch
        (_, lengths_flat), _ = flat.sample(8, gen_flat)
        spread_flat.append(int(lengths_flat.max() - lengths_flat.min()))
        for n in lengths.tolist():
            counts[n] += 1
    # A bucket of 4 batches = 32 of the 200 sentences, so lengths within a batch are close.
    assert sum(spread) / len(spread) < 0.3 * sum(spread_flat) / len(spread_flat)
    # Each of the 20 lengths is 10 sentences: each drawn ~1200 times out of 24000 (no bias to
    # the middle or the ends of the length order).
    per_length = [counts[n] for n in range(2, 41, 2)]
    assert min(per_length) > 0.85 * 1200 and max(per_length) < 1.15 * 1200, per_length


def test_evaluation_batches_cover_every_sentence_once_with_its_own_label():
    data = SentenceBatches(TOK, PAIRS, 48)
    seen = []
    for (ids, lengths), labels in data.batches(16):
        for row, n, y in zip(ids, lengths.tolist(), labels.tolist()):
            seen.append((TOK.decode(row[:n].tolist()), y))
    assert sorted(seen) == sorted(PAIRS)


def test_accuracy_and_confusion_match_the_predictions_in_data_order():
    model = GPTClassifier(tiny_gpt()).eval()
    data = SentenceBatches(TOK, PAIRS, 48)
    with torch.no_grad():
        pred = torch.stack([model(*_one(s)).argmax(-1)[0] for s, _ in PAIRS])
    true = torch.tensor([y for _, y in PAIRS])
    assert accuracy(model, data) == pytest.approx((pred == true).float().mean().item())
    m = confusion_matrix(model, data)
    assert m[1, 1] == int(((pred == 1) & (true == 1)).sum()) and m.sum() == len(PAIRS)


def test_correct_is_per_example_in_the_order_of_the_pairs():
    model = GPTClassifier(tiny_gpt()).eval()
    data = SentenceBatches(TOK, PAIRS, 48)
    assert not torch.equal(data.batch_order, torch.arange(len(PAIRS)))  # batches() does reorder
    with torch.no_grad():
        pred = torch.stack([model(*_one(s)).argmax(-1)[0] for s, _ in PAIRS])
    assert torch.equal(correct(model, data), pred == torch.tensor([y for _, y in PAIRS]))


def test_mcnemar_p_matches_the_binomial_tail():
    # 10 examples where only a is right, 2 where only b is: p = 2 * P(X <= 2), X ~ Bin(12, 1/2).
    a = torch.tensor([1] * 10 + [0] * 2 + [1] * 30 + [0] * 5).bool()
    b = torch.tensor([0] * 10 + [1] * 2 + [1] * 30 + [0] * 5).bool()
    assert mcnemar_p(a, b) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_p(a, b) == mcnemar_p(b, a)        # two-sided: symmetric
    assert mcnemar_p(a, a) == 1.0                    # identical answers: no evidence at all
    assert mcnemar_p([1, 0, 1, 0], [0, 1, 0, 1]) == 1.0  # 2 v 2: capped at 1
    with pytest.raises(ValueError, match="same length"):
        mcnemar_p(a, b[:-1])


def _one(sentence):
    ids = torch.tensor([TOK.encode(sentence)])
    return ids, torch.tensor([ids.shape[1]])


# --- frozen features and a probe trained on them -------------------------------------------------

@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_frozen_features_are_the_bodys_pooled_states_in_eval_mode(pooling):
    gpt = tiny_gpt()
    gpt.config.dropout = 0.5  # would change the states if features were taken in train mode
    model = GPTClassifier(gpt, ClassifierConfig(pooling=pooling)).train()
    feats = frozen_features(model, SentenceBatches(TOK, PAIRS, 48))
    assert model.training  # the mode is restored
    assert feats.inputs.shape == (len(PAIRS), 16) and not feats.inputs.requires_grad
    model.eval()
    with torch.no_grad():  # row i is sentence i of PAIRS: the data's order, not the batches' order
        for (s, label), x, y in zip(PAIRS, feats.inputs, feats.labels):
            torch.testing.assert_close(model.pooled(*_one(s))[0], x, atol=1e-5, rtol=1e-4)
            assert y == label


def test_a_probe_on_tensor_examples_trains_through_the_one_loop():
    # Separable features: the label is the sign of the first feature.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=gen)
    examples = TensorExamples(x, (x[:, 0] > 0).long())
    torch.manual_seed(0)
    probe = nn.Linear(5, 2)
    before = accuracy(probe, examples)
    result = train(probe, examples, examples, TrainConfig(max_steps=150, batch_size=32, lr=5e-2,
                   warmup_steps=5, eval_interval=50, eval_steps=2, device="cpu"),
                   loss_fn=classification_loss, progress=False,
                   metrics={"acc": lambda m: accuracy(m, examples)})
    assert accuracy(probe, examples) > 0.95 > before
    assert [row["step"] for row in result.history] == [0, 50, 100, 150]
    assert result.history[-1]["acc"] > 0.95


def test_tensor_examples_refuse_ids_and_mismatched_labels():
    with pytest.raises(TypeError, match="float tensor of features"):
        TensorExamples(torch.tensor([[1, 2]]), [0])
    with pytest.raises(ValueError, match="same N"):
        TensorExamples(torch.zeros(3, 2), [0, 1])
    with pytest.raises(ValueError, match="integer"):
        TensorExamples(torch.zeros(2, 2), [0.5, 1.0])


# --- bag of words --------------------------------------------------------------------------------

def test_words_lowercase_and_keep_contractions():
    assert words("I didn't LIKE it, 10/10!") == ["i", "didn't", "like", "it", "10", "10"]


def test_bag_of_words_vocabulary_and_vectors():
    bow = BagOfWords.fit(["good good food", "bad food", "good"], min_count=2)
    assert bow.vocab == ["good", "food"]  # most frequent first; "bad" occurs once
    x = bow.transform(["Good FOOD, good!", "bad", "unknown words"])
    assert x.tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]  # 0/1, unknown words ignored
    with pytest.raises(TypeError, match="wrap it"):
        bow.transform("good food")
    with pytest.raises(ValueError, match="min_count"):
        BagOfWords.fit(["a b"], min_count=5)


def test_bag_of_words_logistic_regression_learns_the_sentiment_words():
    pairs = [(f"the {w} {n}", y) for n in ("food", "film", "phone", "staff", "plot")
             for w, y in (("great", 1), ("awful", 0), ("lovely", 1), ("poor", 0))] * 5
    bow = BagOfWords.fit([s for s, _ in pairs])
    data = TensorExamples(bow.transform([s for s, _ in pairs]), [y for _, y in pairs])
    torch.manual_seed(0)
    model = nn.Linear(len(bow), 2)
    train(model, data, None, TrainConfig(max_steps=100, batch_size=16, lr=5e-2, warmup_steps=5,
          eval_interval=100, eval_steps=1, device="cpu"), loss_fn=classification_loss,
          progress=False)
    assert accuracy(model, data) == 1.0
    push = model.weight[1] - model.weight[0]
    assert push[bow.index["great"]] > 0 > push[bow.index["awful"]]
    assert abs(push[bow.index["food"]]) < push[bow.index["great"]]


# --- zero-shot prompting -------------------------------------------------------------------------

def test_continuation_logprob_sums_the_tokens_of_the_continuation():
    gpt = tiny_gpt().eval()
    prompts, cont = ["ab", "a longer prompt"], " bad."
    got = continuation_logprob(gpt, TOK, prompts, cont, batch_size=1)
    batched = continuation_logprob(gpt, TOK, prompts, cont)
    for prompt, value, value_b in zip(prompts, got, batched):
        p, c = TOK.encode(prompt), TOK.encode(cont)
        with torch.no_grad():
            logp = F.log_softmax(gpt(torch.tensor([p + c])).logits[0], -1)
        want = sum(logp[len(p) - 1 + i, t] for i, t in enumerate(c))
        torch.testing.assert_close(value, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(value_b, want, rtol=0, atol=1e-5)  # right padding changes nothing


def test_zero_shot_scores_compare_the_two_label_words():
    gpt = tiny_gpt()
    s = zero_shot_scores(gpt, TOK, ["good stuff", "bad stuff"], "{} it was", " good", " bad")
    want = continuation_logprob(gpt, TOK, ["good stuff it was", "bad stuff it was"], " good") - \
        continuation_logprob(gpt, TOK, ["good stuff it was", "bad stuff it was"], " bad")
    torch.testing.assert_close(s, want)
    with pytest.raises(ValueError, match="must contain"):
        zero_shot_scores(gpt, TOK, ["x"], "no slot")
    with pytest.raises(TypeError, match="llmlab GPT"):
        zero_shot_scores(GPTClassifier(gpt), TOK, ["x"])


# --- plots ---------------------------------------------------------------------------------------

def test_plot_metric_and_plot_accuracies_draw_what_they_are_given():
    fig = plot_metric({"a": [{"step": 0, "acc": 0.5}, {"step": 10, "acc": 0.8}],
                       "b": [{"step": 0, "acc": 0.4}]}, "acc")
    lines = fig.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[0.5, 0.8], [0.4]]
    with pytest.raises(ValueError, match="metrics="):
        plot_metric({"a": [{"step": 0}]}, "acc")
    fig = plot_accuracies({"bow": (0.8, (0.75, 0.85)), "gpt": (0.7, (0.6, 0.79))})
    ax = fig.axes[0]
    widths = sorted(round(p.get_width(), 3) for p in ax.patches)
    assert widths == [0.7, 0.8]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["gpt", "bow"]  # first on top
