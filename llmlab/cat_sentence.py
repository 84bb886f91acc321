"""The hand-made sentence of lessons 03 and 04: "The cat sat on the mat" with readable features.

Every word gets six 0/1 features, so that hand-written attention weights can be checked by eye.
Lesson 03 writes the table out and checks it against this one; lesson 04 imports it.
"""
from __future__ import annotations

from types import MappingProxyType

import torch

__all__ = ["SENTENCE", "FEATURES", "FEATURE_VECTORS", "sentence_embeddings"]

SENTENCE = ("The", "cat", "sat", "on", "the", "mat")
FEATURES = ("det", "noun", "verb", "prep", "animal", "place")
# One row per distinct (lower-case) word, columns in FEATURES order. Read-only on purpose.
FEATURE_VECTORS = MappingProxyType({
    #       det noun verb prep animal place
    "the": (1, 0, 0, 0, 0, 0),
    "cat": (0, 1, 0, 0, 1, 0),
    "sat": (0, 0, 1, 0, 0, 0),
    "on":  (0, 0, 0, 1, 0, 0),
    "mat": (0, 1, 0, 0, 0, 1),
})


def sentence_embeddings(tokens=SENTENCE) -> torch.Tensor:
    """(T, 6) float32: each token's feature row ("The" and "the" are the same word)."""
    unknown = sorted({t for t in tokens if t.lower() not in FEATURE_VECTORS})
    if unknown:
        raise ValueError(f"no features for {unknown}: the words are {sorted(FEATURE_VECTORS)}")
    return torch.tensor([FEATURE_VECTORS[t.lower()] for t in tokens], dtype=torch.float32)
