"""Solutions to the exercises of lesson 09, "Inside and beyond".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def kv_cache_bytes(config, tokens, batch, bytes_per_number):
    """Exercise 1: bytes the KV cache holds after `tokens` positions of `batch` sequences."""
    # Every layer keeps, for every token of every sequence, one key and one value. The heads
    # split n_embd between them (n_embd // n_head each), so together they keep n_embd numbers.
    return 2 * config.n_layer * config.n_embd * tokens * batch * bytes_per_number


def induction_pattern(ids):
    """Exercise 2: (T,) ids -> (T, T) bool, True at key j < i when ids[j - 1] == ids[i]."""
    T = len(ids)
    pattern = torch.zeros(T, T, dtype=torch.bool)
    # Column j compares the query's token with the token just before key j; key 0 has none.
    pattern[:, 1:] = ids[:, None] == ids[None, :-1]  # (T, T - 1)
    earlier = torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1)  # strictly earlier keys
    return pattern & earlier


def ablate_head(y, head, n_head):
    """Exercise 3: y (B, T, C) with head `head`'s columns set to zero, as a new tensor."""
    B, T, C = y.shape
    heads = y.reshape(B, T, n_head, C // n_head).clone()  # (B, T, H, hd): a copy, y stays as it was
    heads[:, :, head] = 0.0
    return heads.reshape(B, T, C)  # (B, T, C)
