"""Tests for llmlab.lookup_task: the lookup task, the attention-only model, its training and head scores."""
import pytest
import torch

from llmlab.lookup_task import (IGNORE, AttentionOnlyConfig, AttentionOnlyModel, LookupTask,
                        lookup_accuracy, lookup_scores, train_lookup_model)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_targets_are_the_looked_up_letters():
    task = LookupTask(vocab_size=5, seq_len=6, lookups=("current", "previous", "two back", "first"))
    tokens, targets = task.batch(3, torch.Generator().manual_seed(0))
    assert tokens.shape == (3, 6) and targets.shape == (3, 6, 4)
    torch.testing.assert_close(targets[..., 0], tokens)
    torch.testing.assert_close(targets[:, 1:, 1], tokens[:, :-1])
    torch.testing.assert_close(targets[:, 2:, 2], tokens[:, :-2])
    torch.testing.assert_close(targets[..., 3], tokens[:, :1].expand(3, 6))
    assert (targets[:, 0, 1] == IGNORE).all() and (targets[:, :2, 2] == IGNORE).all()


def test_sources_and_decode():
    task = LookupTask(vocab_size=3, seq_len=4, lookups=("previous", "first"))
    assert task.sources().tolist() == [[-1, 0], [0, 0], [1, 0], [2, 0]]
    assert task.letters == ("a", "b", "c")
    assert task.decode(torch.tensor([2, 0, 1])) == ["c", "a", "b"]


def test_batches_repeat_with_the_same_generator():
    task = LookupTask()
    a = task.batch(4, torch.Generator().manual_seed(3))
    b = task.batch(4, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("kwargs, words", [
    ({"vocab_size": 30}, "vocab_size"),
    ({"seq_len": 1}, "seq_len"),
    ({"lookups": ("previous", "next")}, "lookups"),
    ({"lookups": "previous"}, "lookups"),
])
def test_bad_task_settings_say_what_to_fix(kwargs, words):
    with pytest.raises(ValueError, match=words):
        LookupTask(**kwargs)


def test_model_shapes_and_weights():
    model = AttentionOnlyModel(AttentionOnlyConfig(vocab_size=7, seq_len=9, n_outputs=2,
                                                   d_model=12, n_heads=3))
    logits, weights = model(torch.zeros(4, 9, dtype=torch.long), return_weights=True)
    assert logits.shape == (4, 9, 2, 7)
    assert weights.shape == (4, 3, 9, 9)
    assert (weights.triu(1) == 0).all(), "the layer is causal"
    assert model(torch.zeros(2, 5, dtype=torch.long))[1] is None  # shorter inputs are fine


def test_sinusoidal_model_has_no_position_parameters():
    learned = AttentionOnlyModel(AttentionOnlyConfig(positions="learned"))
    fixed = AttentionOnlyModel(AttentionOnlyConfig(positions="sinusoidal"))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(learned) - n(fixed) == 12 * 48
    assert fixed(torch.zeros(1, 12, dtype=torch.long))[0].shape == (1, 12, 3, 10)


def test_bad_model_inputs_raise_clearly():
    with pytest.raises(ValueError, match="positions"):
        AttentionOnlyConfig(positions="rotary")
    model = AttentionOnlyModel(AttentionOnlyConfig(seq_len=4))
    with pytest.raises(ValueError, match="seq_len=4"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="n_outputs"):
        train_lookup_model(model, LookupTask(lookups=("previous",)), steps=1)


def test_training_repeats_exactly():
    task = LookupTask(seq_len=6)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = AttentionOnlyModel(AttentionOnlyConfig(seq_len=6))
        runs.append(train_lookup_model(model, task, steps=5, seed=1))
    assert runs[0] == runs[1]


def test_three_heads_learn_three_lookups_and_specialise():
    task = LookupTask()
    torch.manual_seed(0)
    model = AttentionOnlyModel(AttentionOnlyConfig(n_heads=3))
    losses = train_lookup_model(model, task, steps=150, lr=3e-2)
    assert losses[-1] < 0.1 * losses[0]
    accuracy = lookup_accuracy(model, task, n=300)
    assert min(accuracy.values()) > 0.95, accuracy
    with torch.no_grad():
        _, weights = model(task.batch(100, torch.Generator().manual_seed(1))[0], return_weights=True)
    scores = lookup_scores(weights, task)  # (H, K)
    assert scores.shape == (3, 3)
    assert sorted(scores.argmax(dim=0).tolist()) == [0, 1, 2], "one head per lookup"
    assert scores.max(dim=0).values.min() > 0.8


def test_lookup_scores_of_hand_made_patterns():
    task = LookupTask(seq_len=6, lookups=("previous", "first"))
    previous = torch.eye(6).roll(-1, dims=1).tril()  # row t has a 1 at t - 1 (row 0 is empty)
    previous[0, 0] = 1.0
    first = torch.zeros(6, 6)
    first[:, 0] = 1.0
    scores = lookup_scores(torch.stack([previous, first])[None], task)  # (1, 2, 6, 6) -> (2, 2)
    torch.testing.assert_close(scores, torch.eye(2))


def test_lookup_scores_needs_a_position_where_lookups_differ():
    with pytest.raises(ValueError, match="longer seq_len"):
        lookup_scores(torch.ones(1, 2, 2) / 2, LookupTask(seq_len=2, lookups=("previous", "first")))


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_lookup_accuracy_needs_at_least_one_sequence(n):
    model = AttentionOnlyModel(AttentionOnlyConfig())
    with pytest.raises(ValueError, match="n \\(how many sequences to test on\\) must be an int >= 1"):
        lookup_accuracy(model, LookupTask(), n=n)


@pytest.mark.parametrize("kwargs, words", [
    ({"vocab_size": 10.0}, "vocab_size"), ({"vocab_size": True}, "vocab_size"),
    ({"seq_len": 12.0}, "seq_len"), ({"lookups": ["previous", ["first"]]}, "lookups"),
])
def test_task_sizes_of_the_wrong_kind_say_what_to_fix(kwargs, words):
    with pytest.raises(ValueError, match=words):
        LookupTask(**kwargs)


def test_batch_size_and_training_settings_must_be_ints():
    task = LookupTask()
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        task.batch(2.0)
    model = AttentionOnlyModel(AttentionOnlyConfig())
    with pytest.raises(ValueError, match="steps must be an int"):
        train_lookup_model(model, task, steps=1.5)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        train_lookup_model(model, task, steps=1, lr=float("nan"))
    with pytest.raises(ValueError, match="AttentionOnlyConfig.d_model must be an int"):
        AttentionOnlyConfig(d_model=48.0)


def test_model_and_decode_refuse_float_or_out_of_range_tokens():
    model = AttentionOnlyModel(AttentionOnlyConfig())
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="ids in \\[0, 10\\)"):
        model(torch.full((1, 4), 10))
    with pytest.raises(ValueError, match="token id 12 is not one of this task's 10 letters"):
        LookupTask().decode([1, 12])
    with pytest.raises(ValueError, match="must be attention weights"):
        lookup_scores(torch.ones(3, 5, 5), LookupTask())
