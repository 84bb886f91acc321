"""Tests for llmlab.classifier: pooling under right padding, freezing and counts, fine-tuning
through the one training loop (Ctrl-C keeps the model), metrics, and bad input."""
import os
import signal
import sys

import pytest
import torch

from llmlab.checkpoint import load_checkpoint
from llmlab.classifier import (ClassifierConfig, GPTClassifier, SentenceBatches, accuracy,
                               classification_loss, confusion_matrix, count_trainable,
                               encode_batch, last_token_pool, mean_pool, set_trainable)
from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
TOK = CharTokenizer.train("abcdefghijklmnopqrstuvwxyz !")
# A toy sentiment task a tiny model learns in a few dozen steps: "good" vs "bad" somewhere inside.
PAIRS = [(f"{'xy ' * (i % 5)}{w} {'z' * (i % 3)}", y)
         for i in range(60) for w, y in (("good", 1), ("bad", 0))]


def tiny_classifier(pooling="last", seed=0):
    """A 2-layer GPT body with a 2-class head, fresh weights."""
    torch.manual_seed(seed)
    gpt = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=16,
                        dropout=0.0))
    return GPTClassifier(gpt, ClassifierConfig(pooling=pooling))


def test_encode_batch_right_pads_and_reports_lengths():
    ids, lengths = encode_batch(TOK, ["ab", "abcd", "a"], block_size=8, pad_id=0)
    assert ids.shape == (3, 4) and lengths.tolist() == [2, 4, 1]
    assert ids[0].tolist() == TOK.encode("ab") + [0, 0] and ids[2, 1:].tolist() == [0, 0, 0]


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_pooling_ignores_the_pads_under_right_padding(pooling):
    model = tiny_classifier(pooling).eval()
    ids, lengths = encode_batch(TOK, ["good day", "bad", "a good one indeed"], block_size=32)
    before = model(ids, lengths)
    noisy = ids.clone()
    pads = torch.arange(ids.shape[1])[None, :] >= lengths[:, None]  # (B, T)
    noisy[pads] = torch.randint(1, TOK.vocab_size, (int(pads.sum()),))  # any token in the pads
    torch.testing.assert_close(model(noisy, lengths), before, rtol=0, atol=1e-6)
    # Each sentence alone, unpadded, gives the same logits as inside the padded batch.
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(model(ids[row:row + 1, :n], lengths[row:row + 1]),
                                   before[row:row + 1], rtol=0, atol=1e-5)


def test_last_token_pool_takes_position_length_minus_one_and_mean_pool_the_real_mean():
    h = torch.randn(3, 5, 4)
    lengths = torch.tensor([1, 5, 3])
    torch.testing.assert_close(last_token_pool(h, lengths), torch.stack([h[0, 0], h[1, 4], h[2, 2]]))
    torch.testing.assert_close(mean_pool(h, lengths),
                               torch.stack([h[0, :1].mean(0), h[1].mean(0), h[2, :3].mean(0)]))
    with pytest.raises(ValueError, match="lengths must lie in 1..5"):
        last_token_pool(h, torch.tensor([0, 5, 3]))


@pytest.mark.parametrize("part", ["head", "last_block", "all_but_embeddings", "all"])
def test_frozen_parameters_do_not_move_and_the_count_is_right(part):
    model = set_trainable(tiny_classifier(), part)
    C, V, T = 16, TOK.vocab_size, 32
    block = sum(p.numel() for p in model.gpt.transformer.h[-1].parameters())
    head, ln_f = C * 2 + 2, 2 * C
    expected = {"head": head, "last_block": head + block + ln_f,
                "all_but_embeddings": head + 2 * block + ln_f,
                "all": head + 2 * block + ln_f + V * C + T * C}[part]
    trainable, total = count_trainable(model)
    assert trainable == expected and total == head + 2 * block + ln_f + V * C + T * C
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, SentenceBatches(TOK, PAIRS, 32), None,
          TrainConfig(max_steps=3, batch_size=8, warmup_steps=1, lr=1e-2, min_lr=1e-3,
                      eval_interval=3, eval_steps=1, device="cpu"),
          progress=False, loss_fn=classification_loss)
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]) != p.requires_grad, name  # moved iff trainable


def test_fine_tuning_goes_through_the_training_loop_and_ctrl_c_keeps_the_model(tmp_path):
    model = set_trainable(tiny_classifier(), "all")
    data = SentenceBatches(TOK, PAIRS, 32)
    config = TrainConfig(max_steps=80, batch_size=16, lr=3e-3, min_lr=3e-4, warmup_steps=5,
                         eval_interval=40, eval_steps=2, device="cpu")
    assert accuracy(model, data) < 0.75
    result = train(model, data, data, config, progress=False, loss_fn=classification_loss,
                   metrics={"accuracy": lambda m: accuracy(m, data)})
    assert result.history[-1]["accuracy"] > 0.95 and accuracy(model, data) > 0.95
    cm = confusion_matrix(model, data)
    assert cm.sum() == len(PAIRS) and cm.trace() / cm.sum() == pytest.approx(accuracy(model, data))
    assert cm[1].sum() == sum(y for _, y in PAIRS)  # rows are the true labels

    if sys.platform == "win32":
        return
    again = set_trainable(tiny_classifier(seed=1), "all")
    path = tmp_path / "clf.pt"
    stop = lambda step, loss: step == 5 and os.kill(os.getpid(), signal.SIGINT)  # noqa: E731
    cut = train(again, data, None, TrainConfig(**{**config.__dict__, "checkpoint_path": str(path)}),
                progress=False, loss_fn=classification_loss, step_callback=stop)
    assert cut.interrupted and cut.step == 5
    loaded = load_checkpoint(path, model=tiny_classifier(seed=2))
    for p, q in zip(again.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(p, q)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"sentences\[1\] is empty"):
        encode_batch(TOK, ["good", ""], 32)
    with pytest.raises(ValueError, match=r"sentences\[0\] has 40 tokens.*truncate=True"):
        encode_batch(TOK, ["a" * 40], 32)
    ids, lengths = encode_batch(TOK, ["a" * 40], 32, truncate=True)
    assert ids.shape == (1, 32) and lengths.tolist() == [32]
    with pytest.raises(TypeError, match=r"wrap it as \[sentence\]"):
        encode_batch(TOK, "good", 32)
    with pytest.raises(ValueError, match="labels must be ints from 0 to 1, got 2"):
        SentenceBatches(TOK, [("good", 1), ("meh", 2)], 32)
    with pytest.raises(ValueError, match="one of"):
        set_trainable(tiny_classifier(), "embeddings")
    with pytest.raises(ValueError, match="pooling must be one of"):
        ClassifierConfig(pooling="first")
    other = CharTokenizer.train("abc good bad")
    config = TrainConfig(max_steps=2, batch_size=4, warmup_steps=1, device="cpu")
    with pytest.raises(ValueError, match="tokenizer of .* tokens but the model reads 28"):
        train(tiny_classifier(), SentenceBatches(other, [("good", 1), ("bad", 0)], 32), None,
              config, progress=False, loss_fn=classification_loss)
    with pytest.raises(ValueError, match="up to 64 tokens per example but the model reads at most 32"):
        train(tiny_classifier(), SentenceBatches(TOK, PAIRS, 64), None, config, progress=False,
              loss_fn=classification_loss)


def test_probabilities_occlusion_and_the_wilson_interval():
    from llmlab.classifier import accuracy_interval, occlusion, predict_proba
    model = tiny_classifier()
    p = predict_proba(model, TOK, ["good day", "bad"])
    assert p.shape == (2, 2) and torch.allclose(p.sum(-1), torch.ones(2)) and model.training
    moves = occlusion(model, TOK, "a good day")
    full = predict_proba(model, TOK, ["a good day"])[0, 1]
    without_good = predict_proba(model, TOK, ["a day"])[0, 1]
    assert [w for w, _ in moves] == ["a", "good", "day"]
    assert moves[1][1] == pytest.approx((full - without_good).item(), abs=1e-6)
    lo, hi = accuracy_interval(80, 100)
    assert lo == pytest.approx(0.7112, abs=1e-4) and hi == pytest.approx(0.8666, abs=1e-4)
    assert accuracy_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="more than n"):
        accuracy_interval(11, 10)
