"""Tests for llmlab.cat_sentence: the feature table of lessons 03 and 04."""
import pytest
import torch

from llmlab.cat_sentence import FEATURE_VECTORS, FEATURES, SENTENCE, sentence_embeddings


def test_embeddings_are_the_feature_rows():
    X = sentence_embeddings()
    assert X.shape == (len(SENTENCE), len(FEATURES)) and X.dtype == torch.float32
    assert torch.equal(X[0], X[4])                      # "The" and "the": one word
    cat = dict(zip(FEATURES, X[1].tolist()))
    assert cat == {"det": 0, "noun": 1, "verb": 0, "prep": 0, "animal": 1, "place": 0}
    assert all(len(row) == len(FEATURES) for row in FEATURE_VECTORS.values())


def test_unknown_words_are_named():
    with pytest.raises(ValueError, match=r"\['dog'\]"):
        sentence_embeddings(["The", "dog"])
    with pytest.raises(TypeError):
        FEATURE_VECTORS["dog"] = (0,) * 6               # read-only
