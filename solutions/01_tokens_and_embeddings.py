"""Solutions to the exercises of lesson 01, "Tokens and embeddings".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
from collections import Counter

import numpy as np


def char_encode(text, stoi, unk_id):
    """Exercise 1: one id per character of text; characters missing from stoi get unk_id."""
    # dict.get returns the default instead of raising KeyError for a missing key.
    return [stoi.get(ch, unk_id) for ch in text]


def most_frequent_pair(chunks):
    """Exercise 2: the most frequent adjacent pair inside the chunks (ties: the greatest pair), or None."""
    counts = Counter()
    for chunk in chunks:
        # zip(chunk, chunk[1:]) yields the neighbours inside one chunk only: BPE never
        # merges across pre-token boundaries.
        counts.update(zip(chunk, chunk[1:]))
    if not counts:
        return None
    # Comparing (count, pair) tuples picks the highest count, then the greatest pair among equals.
    return max(counts, key=lambda pair: (counts[pair], pair))


def cosine_similarity(a, b):
    """Exercise 3: the cosine of the angle between vectors a and b, a · b / (‖a‖ ‖b‖)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
