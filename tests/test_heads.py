"""Tests for llmlab.heads: each score is 1.0 on its own hand-built pattern and about 0 on the others."""
import math

import pytest
import torch

from llmlab.gpt import GPT, GPTConfig
from llmlab.heads import (SCORE_NAMES, chance_scores, first_token_score, head_scores, induction_score,
                          offset_score, previous_token_score, same_token_score, self_score,
                          token_score, top_heads)

# Token 9 at position 0 occurs once; then a period of 7 distinct tokens, repeated: every later
# token has an earlier copy 7 back, and no token repeats its neighbour or the one two back.
IDS = torch.tensor([9] + [0, 1, 2, 3, 4, 5, 6] * 6)  # (43,)
T = len(IDS)


def _rows(keys_of):
    """A (T, T) causal pattern: row i spreads its weight evenly over keys_of(i) (itself if empty)."""
    w = torch.zeros(T, T)
    for i in range(T):
        keys = [j for j in keys_of(i) if 0 <= j <= i] or [i]
        w[i, keys] = 1.0 / len(keys)
    return w


PATTERNS = {
    "previous token": _rows(lambda i: [i - 1]),
    "self": _rows(lambda i: [i]),
    "first token": _rows(lambda i: [0]),
    "same token": _rows(lambda i: [j for j in range(i) if IDS[j] == IDS[i]]),
    "induction": _rows(lambda i: [j for j in range(1, i) if IDS[j - 1] == IDS[i]]),
}


def _all_scores(w):
    return {"previous token": previous_token_score(w), "self": self_score(w),
            "first token": first_token_score(w), "same token": same_token_score(w, IDS),
            "induction": induction_score(w, IDS)}


@pytest.mark.parametrize("pattern", list(PATTERNS))
def test_each_score_is_one_on_its_pattern_and_small_on_the_others(pattern):
    scores = _all_scores(PATTERNS[pattern])
    assert scores[pattern].item() == pytest.approx(1.0)
    for name, value in scores.items():
        if name == pattern:
            continue
        # Position patterns overlap in one row at most (row 1: previous = first); the content
        # patterns fall back to "self" for the 8 queries that have no earlier copy.
        limit = 1.0 / (T - 1) + 1e-6 if pattern in ("previous token", "self", "first token") \
            else 8.0 / (T - 1) + 1e-6
        assert value.item() <= limit, (pattern, name, value.item())


def test_position_patterns_are_exactly_zero_where_they_cannot_overlap():
    assert self_score(PATTERNS["previous token"]).item() == 0.0
    assert previous_token_score(PATTERNS["self"]).item() == 0.0
    assert same_token_score(PATTERNS["self"], IDS).item() == 0.0  # earlier copies only, never itself
    assert induction_score(PATTERNS["same token"], IDS).item() == 0.0


def test_uniform_causal_head_scores_about_log_t_over_t():
    w = torch.ones(T, T).tril()
    w = w / w.sum(-1, keepdim=True)
    expected = sum(1.0 / (i + 1) for i in range(1, T)) / (T - 1)
    for score in (previous_token_score, self_score, first_token_score):
        assert score(w).item() == pytest.approx(expected)
    assert expected < 2 * math.log(T) / T


def test_chance_scores_are_the_scores_of_an_even_head():
    expected = sum(1.0 / (i + 1) for i in range(1, T)) / (T - 1)  # 1 / (i + 1) on each key, rows 1..
    chance = chance_scores(IDS)
    assert set(chance) == set(SCORE_NAMES)
    for name in ("previous token", "self", "first token"):
        assert chance[name] == pytest.approx(expected)
    # On a repeating text every earlier copy gets 1 / (i + 1): more copies, a higher chance level.
    assert chance["same token"] > expected
    # A batch of the same text scores the same; a 1-D and a (1, T) batch agree.
    assert chance_scores(IDS[None].expand(3, -1)) == pytest.approx(chance)


@pytest.mark.parametrize("bad", [torch.rand(T), torch.tensor([1]), torch.zeros(2, 2, T, dtype=torch.long)])
def test_chance_scores_explains_bad_ids(bad):
    with pytest.raises(ValueError, match="token ids"):
        chance_scores(bad)


def test_offset_score_looks_k_back():
    two_back = _rows(lambda i: [i - 2])                                   # rows 0, 1: themselves
    assert offset_score(two_back, 2).item() == pytest.approx(1.0)
    assert offset_score(two_back, 1).item() == 0.0
    assert offset_score(two_back, 3).item() == 0.0
    w = torch.softmax(torch.randn(2, 3, T, T), -1)
    torch.testing.assert_close(offset_score(w, 1), previous_token_score(w))
    torch.testing.assert_close(offset_score(w, 0), torch.diagonal(w, dim1=-2, dim2=-1).mean(-1))
    for bad in (-1, T, 1.0, True):
        with pytest.raises(ValueError, match="tokens back"):
            offset_score(w, bad)


def test_token_score_finds_a_head_that_seeks_one_token():
    first = PATTERNS["first token"]                                       # every row reads key 0
    assert token_score(first, IDS, 9).item() == pytest.approx(1.0)         # ... which holds 9
    assert token_score(first, IDS, 0).item() == 0.0
    # a head that reads the most recent 0 wherever one is in view
    latest_zero = _rows(lambda i: [max(j for j in range(i + 1) if IDS[j] == 0)]
                        if 0 in IDS[:i + 1].tolist() else [i])
    assert token_score(latest_zero, IDS, 0).item() == pytest.approx(1.0)
    uniform = torch.ones(T, T).tril()
    uniform = uniform / uniform.sum(-1, keepdim=True)
    assert token_score(uniform, IDS, 0).item() < 0.25                     # about its frequency
    with pytest.raises(ValueError, match="token 42 in view"):
        token_score(first, IDS, 42)


def test_scores_keep_leading_dimensions():
    w = torch.stack([PATTERNS["previous token"], PATTERNS["first token"]])  # (2, T, T)
    w = w[None, None].expand(3, 4, 2, T, T)                                 # (L, B, H, T, T)
    assert previous_token_score(w).shape == (3, 4, 2)
    torch.testing.assert_close(previous_token_score(w)[0, 0], torch.tensor([1.0, 1.0 / (T - 1)]))
    ids = IDS[None].expand(4, T)                                            # (B, T)
    assert same_token_score(w, ids).shape == (3, 4, 2)
    assert same_token_score(w, IDS).shape == (3, 4, 2)


def test_head_scores_tables_and_top_heads():
    heads = torch.stack([PATTERNS[name] for name in SCORE_NAMES])           # (5, T, T)
    attention = torch.stack([heads, heads.flip(0)])[:, None]                # (L=2, B=1, H=5, T, T)
    scores = head_scores(attention, IDS[None])
    assert list(scores) == list(SCORE_NAMES)
    for name, table in scores.items():
        assert table.shape == (2, 5)
    best = top_heads(scores)
    for h, name in enumerate(SCORE_NAMES):
        layer, head, value = best[name]
        assert (layer, head) == (0, h)  # ties go to the first head found
        assert value == pytest.approx(1.0)
    # one sequence, no batch axis; without ids only the position scores
    no_batch = head_scores(attention[:, 0])
    assert list(no_batch) == ["previous token", "first token", "self"]
    torch.testing.assert_close(no_batch["self"], scores["self"])


def test_head_scores_on_a_gpt_averages_over_the_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=10, block_size=16, n_layer=2, n_head=3, n_embd=12))
    idx = torch.randint(0, 10, (4, 16))
    with torch.no_grad():
        attention = model(idx, return_attention=True).attention             # (L, B, H, T, T)
    scores = head_scores(attention, idx)
    for table in scores.values():
        assert table.shape == (2, 3)
        assert ((table >= 0) & (table <= 1)).all()
    one = head_scores(attention[:, :1], idx[:1])["same token"]
    many = torch.stack([same_token_score(attention[:, b], idx[b]) for b in range(4)], 1)  # (L, B, H)
    torch.testing.assert_close(scores["same token"], many.mean(1))
    assert not torch.equal(one, scores["same token"])


@pytest.mark.parametrize("bad, words", [
    (torch.ones(3, 4), "(..., T, T)"),
    (torch.ones(1, 1), "at least 2 tokens"),
    (torch.ones(3, 3, dtype=torch.long), "dtype"),
])
def test_bad_attention_is_explained(bad, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        previous_token_score(bad)


def test_bad_ids_are_explained():
    w = PATTERNS["self"]
    with pytest.raises(ValueError, match="covers T=43"):
        same_token_score(w, IDS[:-1])
    with pytest.raises(ValueError, match="integer token ids"):
        same_token_score(w, IDS.float())
    with pytest.raises(ValueError, match="B=2"):
        same_token_score(w, IDS[None].expand(2, T))
    with pytest.raises(ValueError, match="longer passage"):
        same_token_score(torch.eye(4), torch.arange(4))
    with pytest.raises(ValueError, match="GPT's"):
        head_scores(w)
    with pytest.raises(ValueError, match="one \\(L, H\\) table"):
        top_heads({"self": torch.ones(3)})


def test_nan_attention_is_named_not_averaged():
    w = PATTERNS["self"].clone()
    w[..., 3, 2] = float("nan")
    for fn in (previous_token_score, self_score, first_token_score):
        with pytest.raises(ValueError, match="holds NaN"):
            fn(w)


@pytest.mark.parametrize("bad", ["attention", None])
def test_attention_that_is_not_a_tensor_is_named(bad):
    with pytest.raises(TypeError, match="must be a tensor of attention weights"):
        previous_token_score(bad)


@pytest.mark.parametrize("token_id", [1.5, True, "3", -1])
def test_token_score_needs_an_int_token_id(token_id):
    with pytest.raises(ValueError, match="token_id must be an int >= 0"):
        token_score(PATTERNS["self"], IDS, token_id)


@pytest.mark.parametrize("k", [1.0, True, 43])
def test_offset_score_needs_an_int_k_below_t(k):
    with pytest.raises(ValueError, match="k \\(how many tokens back\\) must be an int from 0 to 42"):
        offset_score(PATTERNS["self"], k)


def test_ids_as_text_are_refused():
    with pytest.raises(TypeError, match="encode the text"):
        same_token_score(PATTERNS["self"], "abc")
    with pytest.raises(TypeError, match="encode the text"):
        chance_scores("abc")


def test_last_token_score_finds_the_latest_earlier_mark_and_nothing_else():
    from llmlab.heads import last_token_score
    ids = torch.tensor([0, 5, 5, 1, 5, 5, 1, 5])  # marks 0 and 1 start "lines"
    T = len(ids)
    latest = [0, 0, 0, 0, 3, 3, 3, 6]  # for query i >= 1: the latest mark at j < i
    line_start = torch.zeros(T, T)
    line_start[0, 0] = 1.0
    for i in range(1, T):
        line_start[i, latest[i]] = 1.0
    assert last_token_score(line_start, ids, [0, 1]).item() == pytest.approx(1.0)
    # One step off (the mark itself at query 3 and 6, or the previous token) scores less.
    previous = torch.zeros(T, T)
    previous[0, 0] = 1.0
    previous[torch.arange(1, T), torch.arange(T - 1)] = 1.0
    assert last_token_score(previous, ids, [0, 1]).item() == pytest.approx(3 / 7)  # rows 1, 4, 7
    # Only mark 1: queries 1-3 have none before them and are left out; 4-7 all find it.
    assert last_token_score(line_start, ids, [1]).item() == pytest.approx(1.0)
    # Only mark 0: its latest copy is position 0 for every query, so rows 4-7 miss.
    assert last_token_score(line_start, ids, [0]).item() == pytest.approx(3 / 7)
    batch = torch.stack([line_start, previous])[:, None]  # (B=2, H=1, T, T)
    assert last_token_score(batch, torch.stack([ids, ids]), [0, 1]).shape == (2, 1)
    with pytest.raises(ValueError, match="token_ids is empty"):
        last_token_score(line_start, ids, [])
    with pytest.raises(ValueError, match="no query with one of token_ids"):
        last_token_score(line_start, ids, [9])
