"""A bag-of-words baseline: which known words a sentence contains, in no order.

Logistic regression on these vectors (one linear layer + softmax) is the honest baseline a
sentiment model must beat: it knows that "great" is good and "awful" is bad, and nothing else.
"""
from __future__ import annotations

import re
from collections import Counter

import torch

from llmlab._validate_input import as_int, check_text

__all__ = ["words", "BagOfWords"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")  # "didn't" stays one word; punctuation is dropped


def words(text: str) -> list[str]:
    """The lower-cased words of text (letters, digits and an apostrophe inside a word)."""
    return _WORD.findall(check_text(text, "text").lower())


class BagOfWords:
    """A vocabulary of words seen at least min_count times, and 0/1 vectors over it."""

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("the vocabulary has a word twice")

    @classmethod
    def fit(cls, sentences, min_count: int = 1) -> BagOfWords:
        """The words of sentences that occur at least min_count times, most frequent first."""
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of str, got one str: wrap it as [sentence]")
        min_count = as_int(min_count, "min_count", 1)
        counts = Counter(w for s in sentences for w in words(s))
        vocab = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count]
        if not vocab:
            raise ValueError("no word occurs min_count times: give more sentences or lower min_count")
        return cls(vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def transform(self, sentences) -> torch.Tensor:
        """(N, len(vocab)) float: 1 where the sentence contains the word. Unknown words are ignored."""
        if isinstance(sentences, str):
            raise TypeError("sentences must be a list of str, got one str: wrap it as [sentence]")
        sentences = list(sentences)
        x = torch.zeros(len(sentences), len(self.vocab))  # (N, V_words)
        for row, s in enumerate(sentences):
            cols = [self.index[w] for w in words(s) if w in self.index]
            x[row, cols] = 1.0
        return x
