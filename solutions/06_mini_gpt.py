"""Solutions to the exercises of lesson 06, "A mini-GPT".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def gpt_param_count(config) -> int:
    """Exercise 1: the number of parameters of GPT(config), counted by hand (bias=True)."""
    V, T, L, C = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    embeddings = V * C + T * C                  # wte (one row per token) + wpe (one per position)
    layer_norm = 2 * C                          # a gain and a bias per feature
    attention = (C * 3 * C + 3 * C) + (C * C + C)   # c_attn (q, k, v at once) + c_proj
    mlp = (C * 4 * C + 4 * C) + (4 * C * C + C)     # c_fc widens 4x, c_proj narrows back
    block = 2 * layer_norm + attention + mlp    # ln_1, attn, ln_2, mlp = 12 C^2 + 13 C
    # lm_head shares its weight with wte (weight tying): nothing more to count.
    return embeddings + L * block + layer_norm  # ... + ln_f


def crop_context(idx: torch.Tensor, block_size: int) -> torch.Tensor:
    """Exercise 2: the last block_size tokens of each sequence in idx (B, T) (all, if fewer)."""
    # A negative start counts from the end; if T < block_size, the slice simply keeps everything.
    return idx[:, -block_size:]  # (B, min(T, block_size))


def previous_token_score(attn: torch.Tensor) -> torch.Tensor:
    """Exercise 3: (..., T, T) -> (...), the mean weight each head puts on the previous token."""
    # Query i's previous token is key i - 1: the diagonal just below the main one (T - 1 entries,
    # rows 1..T-1). dim1/dim2 pick the last two axes, so any leading (layers, heads) axes stay.
    below = torch.diagonal(attn, offset=-1, dim1=-2, dim2=-1)  # (..., T - 1)
    return below.mean(dim=-1)                                 # (...)
