"""Tests for llmlab.checks.tokens: each checker accepts the solution and names typical mistakes."""
from collections import Counter

import numpy as np
import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks

solution = load_solutions("01_tokens_and_embeddings")


def test_checkers_are_exported_from_the_package():
    for name in ("check_char_encode", "check_most_frequent_pair", "check_cosine_similarity"):
        assert name in checks.__all__


# --- char_encode -------------------------------------------------------------------------------

def _char_key_error(text, stoi, unk_id):
    return [stoi[c] for c in text]


def _char_drops_unknown(text, stoi, unk_id):
    return [stoi[c] for c in text if c in stoi]


def _char_len_as_unk(text, stoi, unk_id):
    return [stoi.get(c, len(stoi)) for c in text]


def _char_returns_chars(text, stoi, unk_id):
    return [c for c in text]


def _char_own_sorted_vocab(text, stoi, unk_id):
    mine = {c: i for i, c in enumerate(sorted(stoi))}
    return [mine.get(c, unk_id) for c in text]


@pytest.mark.parametrize("wrong, words", [
    (_char_key_error, ["KeyError", "stoi.get(ch, unk_id)"]),
    (_char_drops_unknown, ["disappear", "unk_id"]),
    (_char_len_as_unk, ["len(stoi)", "unk_id argument"]),
    (_char_returns_chars, ["characters", "not their ids"]),
    (lambda text, stoi, unk_id: "".join(str(stoi.get(c, unk_id)) for c in text), ["list of ints"]),
    (_char_own_sorted_vocab, ["position", "it is in stoi"]),
])
def test_char_encode_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_char_encode(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_char_encode_accepts_a_tuple_and_the_library_tokenizer():
    assert checks.check_char_encode(lambda t, s, u: tuple(s.get(c, u) for c in t)).passed
    from llmlab.tokenizers import CharTokenizer

    def via_library(text, stoi, unk_id):
        vocab = [None] * len(stoi)
        for c, i in stoi.items():
            vocab[i] = c
        tok = CharTokenizer(vocab, unk_token="\u2047")
        return [unk_id if i == len(stoi) else i for i in tok.encode(text)]
    assert checks.check_char_encode(via_library).passed


# --- most_frequent_pair ------------------------------------------------------------------------

def _counts(chunks):
    counts = Counter()
    for chunk in chunks:
        counts.update(zip(chunk, chunk[1:]))
    return counts


def _pair_flattened(chunks):
    flat = [i for chunk in chunks for i in chunk]
    counts = Counter(zip(flat, flat[1:]))
    return max(counts, key=lambda p: (counts[p], p)) if counts else None


def _pair_first_seen(chunks):
    counts = _counts(chunks)
    return counts.most_common(1)[0][0] if counts else None  # ties: first inserted wins


def _pair_smallest(chunks):
    counts = _counts(chunks)
    return min(counts, key=lambda p: (-counts[p], p)) if counts else None


def _pair_count(chunks):
    counts = _counts(chunks)
    return max(counts.values()) if counts else None


def _pair_with_count(chunks):
    counts = _counts(chunks)
    return counts.most_common(1)[0] if counts else None


def _pair_empty_raises(chunks):
    counts = _counts(chunks)
    return max(counts, key=lambda p: (counts[p], p))


def _pair_pops(chunks):
    answer = solution.most_frequent_pair(chunks)
    for chunk in chunks:
        chunk.clear()
    return answer


@pytest.mark.parametrize("wrong, words", [
    (_pair_flattened, ["across a chunk boundary", "inside each chunk"]),
    (_pair_first_seen, ["first one seen", "greatest"]),
    (_pair_smallest, ["smallest", "greatest"]),
    (_pair_count, ["the count of the best pair", "return the pair itself"]),
    (_pair_with_count, ["the pair and its count", "only the pair"]),
    (_pair_empty_raises, ["no pair", "ValueError", "Return None"]),
    (lambda chunks: (0, 0) if not _counts(chunks) else solution.most_frequent_pair(chunks),
     ["no pair", "return None"]),
    (_pair_pops, ["in place"]),
    (lambda chunks: (1, 2), ["not an adjacent pair"]),
    (lambda chunks: min(_counts(chunks), key=_counts(chunks).get) if chunks[0] else None,
     ["it occurs 1 time)", "most frequent"]),
])
def test_most_frequent_pair_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_most_frequent_pair(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_most_frequent_pair_accepts_lists_and_numpy_ints():
    def as_list(chunks):
        pair = solution.most_frequent_pair(chunks)
        return None if pair is None else [np.int64(pair[0]), np.int64(pair[1])]
    assert checks.check_most_frequent_pair(as_list).passed


def test_most_frequent_pair_agrees_with_the_library_first_merge():
    # On raw bytes the tie rule "greatest pair of ids" is llmlab's "greatest pair of bytes".
    from llmlab.tokenizers import BPETokenizer, pretokenize
    text = "bananabandana, a banana band"
    chunks = [list(p.encode("utf-8")) for p in pretokenize(text)]
    first = next(iter(BPETokenizer.train(text, 257).merges))
    assert solution.most_frequent_pair(chunks) == first


# --- cosine_similarity -------------------------------------------------------------------------

def _cos_in_place(a, b):
    a /= np.linalg.norm(a)
    b /= np.linalg.norm(b)
    return float(a @ b)


@pytest.mark.parametrize("wrong, words", [
    (lambda a, b: a @ b, ["dot product", "lengths"]),
    (lambda a, b: a @ b / np.linalg.norm(a), ["norm of a only"]),
    (lambda a, b: a @ b / np.linalg.norm(b), ["norm of b only"]),
    (lambda a, b: a @ b / (a.sum() * b.sum()), ["sums of the entries", "np.linalg.norm"]),
    (lambda a, b: a @ b / ((a ** 2).sum() * (b ** 2).sum()), ["squared lengths", "square root"]),
    (lambda a, b: np.abs(a) @ np.abs(b) * 0 + a @ b / (np.abs(a).sum() * np.abs(b).sum()), ["L1"]),
    (lambda a, b: 1 - solution.cosine_similarity(a, b), ["cosine *distance*"]),
    (lambda a, b: float(np.arccos(solution.cosine_similarity(a, b))), ["angle", "arccos"]),
    (lambda a, b: a * b / (np.linalg.norm(a) * np.linalg.norm(b)), ["numbers (shape", "a @ b"]),
    (_cos_in_place, ["in place"]),
    (lambda a, b: solution.cosine_similarity(a, b) * 0.5, ["Cosine similarity is"]),
    (lambda a, b: "0.5", ["string"]),
])
def test_cosine_similarity_mistakes_get_specific_hints(wrong, words):
    verdict = checks.check_cosine_similarity(wrong)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_cosine_similarity_accepts_numpy_torch_and_the_library():
    from llmlab.embeddings import cosine_similarity
    assert checks.check_cosine_similarity(cosine_similarity).passed
    assert checks.check_cosine_similarity(
        lambda a, b: np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b))).passed
    assert checks.check_cosine_similarity(
        lambda a, b: torch.nn.functional.cosine_similarity(
            torch.as_tensor(a), torch.as_tensor(b), dim=0)).passed


def _char_encode_growing_the_vocabulary(text, stoi, unk_id):
    """Right ids, but adds every unseen character to stoi (mapped to unk_id) with setdefault."""
    return [stoi.setdefault(ch, unk_id) for ch in text]


def test_a_char_encoder_that_grows_the_vocabulary_fails():
    verdict = checks.check_char_encode(_char_encode_growing_the_vocabulary)
    assert not verdict.passed and "changed the vocabulary `stoi` in place" in verdict.message
    assert "setdefault" in verdict.message
