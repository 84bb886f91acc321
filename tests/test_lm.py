"""Tests for llmlab.lm: bigram models, cross-entropy, perplexity and the sampling helpers."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.lm import (
    CountBigram,
    NeuralBigram,
    cross_entropy,
    greedy_next,
    next_token_probs,
    perplexity,
    sample_next,
    sampling_mask,
    top_k_mask,
    top_p_mask,
    train_bigram,
)

# ---------------------------------------------------------------------------------------------
# Count model

# "abab" plus "ba" -> ids: a=0, b=1, c=2. Sequence 0 1 0 1 1 0 2: pairs (0,1) (1,0) (0,1)
# (1,1) (1,0) (0,2) -> row a: b twice, c once; row b: a twice, b once; row c: nothing.
TOY = [0, 1, 0, 1, 1, 0, 2]


def test_count_bigram_counts_and_probs_by_hand():
    model = CountBigram.fit(TOY, vocab_size=3, smoothing=0.0)
    expected_counts = torch.tensor([[0, 2, 1], [2, 1, 0], [0, 0, 0]])
    assert torch.equal(model.counts, expected_counts)
    expected = torch.tensor([[0, 2 / 3, 1 / 3], [2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3]])
    torch.testing.assert_close(model.probs, expected)  # row c was never seen: uniform
    torch.testing.assert_close(model.next_token_probs(1), expected[1])


def test_count_bigram_add_one_smoothing_by_hand():
    model = CountBigram.fit(TOY, vocab_size=3, smoothing=1.0)
    expected = torch.tensor([[1 / 6, 3 / 6, 2 / 6], [3 / 6, 2 / 6, 1 / 6], [1 / 3, 1 / 3, 1 / 3]])
    torch.testing.assert_close(model.probs, expected)
    assert (model.probs > 0).all()  # smoothing gives every pair some probability


def test_count_bigram_rows_sum_to_one_and_loss_matches_definition():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 7, (300,), generator=gen)
    for smoothing in (0.0, 0.5, 1.0):
        model = CountBigram.fit(ids, 7, smoothing=smoothing)
        torch.testing.assert_close(model.probs.sum(dim=1), torch.ones(7))
        expected = -torch.log(model.probs[ids[:-1], ids[1:]].double()).mean()
        assert model.loss(ids) == pytest.approx(float(expected))
    # Unsmoothed, a pair never seen in training has probability 0: infinite loss.
    unsmoothed = CountBigram.fit(TOY, 3, smoothing=0.0)
    assert unsmoothed.loss([0, 0]) == math.inf
    assert CountBigram.fit(TOY, 3, smoothing=1.0).loss([0, 0]) == pytest.approx(math.log(6))


def test_count_bigram_generate_is_seeded_and_respects_the_table():
    model = CountBigram.fit(TOY, 3, smoothing=0.0)
    a = model.generate(0, 50, generator=torch.Generator().manual_seed(3))
    b = model.generate(0, 50, generator=torch.Generator().manual_seed(3))
    assert a == b and len(a) == 51 and a[0] == 0
    for prev, nxt in zip(a[:-1], a[1:]):
        assert model.probs[prev, nxt] > 0  # never a transition the table forbids
    # top_k=1 is greedy: from a, always b (2/3); from b, always a (2/3).
    assert model.generate(0, 4, top_k=1) == [0, 1, 0, 1, 0]


def test_count_bigram_errors():
    with pytest.raises(ValueError, match="at least 2"):
        CountBigram.fit([1], 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        CountBigram.fit([0, 3], 3)
    with pytest.raises(ValueError, match="1-D"):
        CountBigram.fit([[0, 1], [1, 0]], 3)
    with pytest.raises(ValueError, match="integer token ids"):
        CountBigram.fit([0.0, 1.0], 3)
    with pytest.raises(ValueError, match="smoothing"):
        CountBigram.fit(TOY, 3, smoothing=-1)
    with pytest.raises(ValueError, match="vocab_size"):
        CountBigram.fit(TOY, 0)
    model = CountBigram.fit(TOY, 3)
    with pytest.raises(ValueError, match="prev_id"):
        model.next_token_probs(3)
    with pytest.raises(ValueError, match="start_id"):
        model.generate(-1, 5)
    with pytest.raises(ValueError, match="n "):
        model.generate(0, -1)
    with pytest.raises(ValueError, match="greedy_next"):
        model.generate(0, 5, temperature=0)


# ---------------------------------------------------------------------------------------------
# Neural model


def _markov_corpus(V=5, n=1500, seed=0):
    """A sequence drawn from a random bigram table, so the model has something to learn."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.softmax(2.0 * torch.randn(V, V, generator=gen), dim=-1)
    ids = [0]
    for u in torch.rand(n, generator=gen):
        ids.append(int(torch.searchsorted(table[ids[-1]].cumsum(0), u).clamp(max=V - 1)))
    return torch.tensor(ids)


def test_neural_bigram_starts_uniform_and_returns_logits_and_loss():
    model = NeuralBigram(4)
    idx = torch.tensor([[0, 1, 2], [3, 2, 1]])
    logits, loss = model(idx)
    assert logits.shape == (2, 3, 4) and loss is None
    _, loss = model(idx, torch.tensor([[1, 2, 3], [2, 1, 0]]))
    assert loss.item() == pytest.approx(math.log(4))  # zero init = uniform = ln V


def test_neural_bigram_learns_the_counted_probabilities():
    V = 5
    ids = _markov_corpus(V)
    counted = CountBigram.fit(ids, V, smoothing=0.0)
    model = NeuralBigram(V)
    losses = train_bigram(model, ids, steps=80, lr=15.0)
    assert len(losses) == 80
    assert losses[-1] < losses[0] - 0.3
    assert losses[-1] == pytest.approx(counted.loss(ids), abs=0.02)
    # KL(counted || neural) per row, weighted by the counted rows: small once trained.
    p, q = counted.probs.double(), model.probs.double()
    kl_rows = (p * (p.clamp_min(1e-30).log() - q.log())).sum(dim=1)
    assert kl_rows.max() < 0.02


def test_train_bigram_minibatches_are_seeded():
    ids = _markov_corpus(4, 400)
    runs = []
    for _ in range(2):
        model = NeuralBigram(4)
        runs.append(train_bigram(model, ids, steps=30, lr=5.0, batch_size=32,
                                 generator=torch.Generator().manual_seed(1)))
    assert runs[0] == runs[1]
    assert np.mean(runs[0][-5:]) < runs[0][0]


def test_neural_bigram_errors():
    with pytest.raises(ValueError, match="vocab_size"):
        NeuralBigram(0)
    model = NeuralBigram(3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model(torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="steps"):
        train_bigram(model, TOY, steps=0)
    with pytest.raises(ValueError, match="lr"):
        train_bigram(model, TOY, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        train_bigram(model, TOY, steps=1, batch_size=0)
    assert len(model.generate(1, 3, generator=torch.Generator().manual_seed(0))) == 4


# ---------------------------------------------------------------------------------------------
# Loss and perplexity


def test_cross_entropy_matches_torch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 9, generator=gen) * 5
    targets = torch.randint(0, 9, (6,), generator=gen)
    torch.testing.assert_close(cross_entropy(logits, targets), F.cross_entropy(logits, targets))
    logits3 = torch.randn(2, 4, 9, generator=gen)
    targets3 = torch.randint(0, 9, (2, 4), generator=gen)
    torch.testing.assert_close(cross_entropy(logits3, targets3),
                               F.cross_entropy(logits3.view(-1, 9), targets3.view(-1)))


def test_cross_entropy_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, 0.0, -1000.0]])
    assert cross_entropy(logits, torch.tensor([0])).item() == pytest.approx(0.0)
    assert cross_entropy(logits, torch.tensor([1])).item() == pytest.approx(1000.0)


def test_perplexity_of_uniform_model_is_vocab_size():
    V = 17
    loss = cross_entropy(torch.zeros(5, V), torch.arange(5))
    assert perplexity(loss).item() == pytest.approx(V)
    assert perplexity(math.log(V)) == pytest.approx(V)


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match="targets must match"):
        cross_entropy(torch.zeros(2, 3, 5), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        cross_entropy(torch.zeros(2, 5), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="integer"):
        cross_entropy(torch.zeros(2, 5), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        cross_entropy(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))


# ---------------------------------------------------------------------------------------------
# Sampling: examples


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([2.0, 1.0, 0.0])
    torch.testing.assert_close(next_token_probs(logits), torch.softmax(logits, -1))
    cold, hot = next_token_probs(logits, 0.5), next_token_probs(logits, 2.0)
    assert cold[0] > next_token_probs(logits)[0] > hot[0]
    torch.testing.assert_close(next_token_probs(logits, 0.5), torch.softmax(logits / 0.5, -1))
    # Tiny temperatures approach argmax without overflowing.
    torch.testing.assert_close(next_token_probs(logits, 1e-6), torch.tensor([1.0, 0.0, 0.0]))


def test_top_k_and_top_p_by_hand():
    logits = torch.log(torch.tensor([0.5, 0.1, 0.3, 0.1]))
    assert top_k_mask(logits, 2).tolist() == [True, False, True, False]
    assert top_k_mask(logits, 99).all()  # k > V keeps everything
    # Tie at the boundary (two 0.1s): the lower id wins.
    assert top_k_mask(logits, 3).tolist() == [True, True, True, False]
    assert top_p_mask(logits, 0.5).tolist() == [True, False, False, False]  # 0.5 already >= 0.5
    assert top_p_mask(logits, 0.6).tolist() == [True, False, True, False]
    assert top_p_mask(logits, 0.85).tolist() == [True, True, True, False]
    assert top_p_mask(logits, 0.01).tolist() == [True, False, False, False]  # best always survives
    assert top_p_mask(logits, 1.0).all()
    probs = next_token_probs(logits, top_k=2)
    torch.testing.assert_close(probs, torch.tensor([0.625, 0.0, 0.375, 0.0]))
    # top_p applies to what top_k left: of {0.625, 0.375}, p=0.6 keeps only the first.
    assert sampling_mask(logits, top_k=2, top_p=0.6).tolist() == [True, False, False, False]


def test_batched_logits_and_greedy():
    logits = torch.tensor([[[0.0, 3.0, 1.0], [5.0, 5.0, 0.0]]])  # (1, 2, 3)
    assert next_token_probs(logits, top_k=1).shape == (1, 2, 3)
    assert greedy_next(logits).tolist() == [[1, 0]]  # tie -> lower id
    ids = sample_next(logits, generator=torch.Generator().manual_seed(0))
    assert ids.shape == (1, 2) and ids.dtype == torch.long
    assert sample_next(torch.zeros(4)).shape == ()


def test_sampling_is_seeded():
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    a = sample_next(logits, generator=torch.Generator().manual_seed(7))
    b = sample_next(logits, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_empirical_frequencies_match_probabilities():
    probs = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05])
    n = 20_000
    draws = sample_next(probs.log().expand(n, 5), generator=torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=5).double()
    expected = n * probs.double()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 18.47  # the 99.9% point of chi-square with 4 degrees of freedom


def test_extreme_logits_stay_finite():
    logits = torch.tensor([3e38, -3e38, 0.0, float("-inf")])
    probs = next_token_probs(logits, temperature=0.01, top_p=0.9)
    assert torch.isfinite(probs).all() and probs.tolist() == [1.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0}, "greedy_next"),
    ({"temperature": -1.0}, "greedy_next"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": -3}, "top_k"),
    ({"top_k": 1.5}, "top_k"),
    ({"top_k": True}, "top_k"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"top_p": -0.1}, "top_p"),
])
def test_sampling_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        next_token_probs(torch.zeros(4), **kwargs)
    with pytest.raises(ValueError, match=match):
        sample_next(torch.zeros(4), **kwargs)


@pytest.mark.parametrize("logits, match", [
    (torch.tensor([0.0, float("nan")]), "NaN"),
    (torch.tensor([0.0, float("inf")]), r"\+inf"),
    (torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]]), "-inf"),
    (torch.tensor(1.0), "last dimension"),
    (torch.zeros(3, 0), "last dimension"),
])
def test_bad_logits_errors(logits, match):
    for fn in (next_token_probs, sample_next, greedy_next):
        with pytest.raises(ValueError, match=match):
            fn(logits)


# ---------------------------------------------------------------------------------------------
# Sampling: properties over random logits

_logits = st.integers(1, 50).flatmap(lambda V: st.lists(
    st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32), min_size=V, max_size=V))
_temperature = st.floats(0.05, 5.0)
_fast = settings(max_examples=60, deadline=None)


@_fast
@given(_logits, _temperature)
def test_probs_are_a_distribution(values, temperature):
    probs = next_token_probs(torch.tensor(values), temperature)
    assert (probs >= 0).all()
    assert float(probs.double().sum()) == pytest.approx(1.0, abs=1e-5)


@_fast
@given(_logits, _temperature, st.integers(1, 60))
def test_top_k_property(values, temperature, k):
    logits = torch.tensor(values)
    probs = next_token_probs(logits, temperature, top_k=k)
    mask = sampling_mask(logits, temperature, top_k=k)
    assert int((probs > 0).sum()) <= k and int(mask.sum()) == min(k, len(values))
    assert float(probs.double().sum()) == pytest.approx(1.0, abs=1e-5)
    assert (probs[~mask] == 0).all()  # exactly zero, not merely small
    if (~mask).any():
        assert logits[mask].min() >= logits[~mask].max()  # kept ones beat every excluded one


@_fast
@given(_logits, _temperature, st.floats(0.01, 1.0))
def test_top_p_property(values, temperature, p):
    logits = torch.tensor(values)
    before = next_token_probs(logits, temperature).double()
    mask = sampling_mask(logits, temperature, top_p=p)
    kept_mass = float(before[mask].sum())
    assert kept_mass >= p - 1e-5                               # the nucleus carries at least p
    assert kept_mass - float(before[mask].min()) < p + 1e-5   # ...and no kept token is spare
    assert mask[before.argmax()]                                # the most likely token survives
    after = next_token_probs(logits, temperature, top_p=p)
    assert (after[~mask] == 0).all()
    assert float(after.double().sum()) == pytest.approx(1.0, abs=1e-5)


@_fast
@given(_logits, _temperature, st.one_of(st.none(), st.integers(1, 10)),
       st.one_of(st.none(), st.floats(0.05, 1.0)), st.integers(0, 2**31 - 1))
def test_samples_never_come_from_excluded_tokens(values, temperature, k, p, seed):
    logits = torch.tensor(values)
    mask = sampling_mask(logits, temperature, top_k=k, top_p=p)
    many = logits.expand(200, len(values))                     # (200, V): 200 draws in one call
    draws = sample_next(many, temperature, top_k=k, top_p=p,
                        generator=torch.Generator().manual_seed(seed))
    assert mask[draws].all()


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error instead of NaN or a raw torch error


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_count_bigram_refuses_nan_or_inf_counts(value):
    with pytest.raises(ValueError, match="counts contain NaN or inf"):
        CountBigram(torch.tensor([[value, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="dtype torch.bool"):
        CountBigram(torch.ones(2, 2, dtype=torch.bool))


def test_softmax_of_plus_inf_is_named_not_nan():
    for fn in (next_token_probs, sample_next, greedy_next):
        with pytest.raises(ValueError, match=r"\+inf, which makes softmax undefined"):
            fn([float("inf"), 1.0])


@pytest.mark.parametrize("temperature", [1e-50, 1e-300, 5e-39])
def test_a_temperature_below_float32_range_suggests_greedy(temperature):
    for fn in (next_token_probs, sample_next, sampling_mask):
        with pytest.raises(ValueError, match="too small to divide by in float32.*greedy"):
            fn(torch.tensor([1.0, 2.0]), temperature=temperature)
    with pytest.raises(ValueError, match="too small"):
        CountBigram.fit(TOY, 3).generate(0, 3, temperature=temperature)


def test_the_smallest_usable_temperature_still_gives_a_distribution():
    probs = next_token_probs(torch.tensor([1.0, 2.0]), temperature=2e-38)
    assert torch.equal(probs, torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("logits", ["abc", None, b"ab", ["a", "b"]])
def test_greedy_next_and_sampling_refuse_text_as_logits(logits):
    for fn in (greedy_next, next_token_probs):
        with pytest.raises(TypeError, match="logits must be a tensor of scores"):
            fn(logits)


@pytest.mark.parametrize("loss", ["2.0", None, [1.0], True])
def test_perplexity_refuses_what_is_not_a_loss(loss):
    with pytest.raises(TypeError, match="loss must be a number or a tensor"):
        perplexity(loss)


def test_perplexity_names_a_nan_loss_and_overflows_to_inf():
    for loss in (float("nan"), torch.tensor(float("nan"))):
        with pytest.raises(ValueError, match="loss is NaN"):
            perplexity(loss)
    with pytest.raises(ValueError, match="dtype torch.int64"):
        perplexity(torch.tensor(2))
    assert perplexity(1000.0) == math.inf and perplexity(np.float32(0.0)) == 1.0


@pytest.mark.parametrize("ids", ["0101", None])
def test_bigram_ids_must_not_be_text(ids):
    with pytest.raises(TypeError, match="sequence of integer token ids"):
        CountBigram.fit(ids, 3)
    with pytest.raises(TypeError, match="sequence of integer token ids"):
        NeuralBigram(3)(ids)


@pytest.mark.parametrize("targets", [torch.tensor([0.0, 1.0]), torch.tensor([True, False]), "ab"])
def test_cross_entropy_targets_must_be_integer_ids(targets):
    with pytest.raises((ValueError, TypeError), match="targets"):
        cross_entropy(torch.zeros(2, 3), targets)
