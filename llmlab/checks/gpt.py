"""Checkers for lesson 06 (the mini-GPT): counting parameters, cropping the context, scoring a head.

Each checker runs the learner's function on cases whose sizes all differ (so no two quantities can
be confused), compares with a reference computed here, and when the answer is wrong names the
typical mistake it looks like.
"""
from __future__ import annotations

import itertools
import random

import torch

from llmlab.gpt import GPTConfig

from ._core import (Verdict, as_count, call_safely, distinct_sizes, failed, fresh_seed, passed,
                    unchanged)

__all__ = ["check_gpt_param_count", "check_crop_context", "check_previous_token_score"]


# --- exercise: count a GPT's parameters --------------------------------------------------------

def _param_count(c: GPTConfig) -> int:
    """The reference: embeddings, n_layer blocks, the final LayerNorm; the tied head adds nothing."""
    C = c.n_embd
    block = 2 * (2 * C) + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    return c.vocab_size * C + c.block_size * C + c.n_layer * block + 2 * C


def _param_mistakes(c: GPTConfig) -> list[tuple[int, str]]:
    """(how much the count changes, hint) for each typical slip, for one config."""
    V, T, L, C = c.vocab_size, c.block_size, c.n_layer, c.n_embd
    block = 12 * C * C + 13 * C
    return [
        (V * C, "the output head is counted twice. GPT ties it to the token embedding: lm_head "
                "and wte are one (vocab_size, n_embd) table, so it counts once."),
        (-T * C, "the position embeddings are missing: wpe has one learned vector of n_embd "
                 "numbers for each of the block_size positions."),
        (-2 * C, "the final LayerNorm (ln_f, before the output head) is missing: it has a gain "
                 "and a bias of n_embd numbers each."),
        (-4 * C * L, "the blocks' LayerNorms are missing: every block has two (ln_1 before "
                     "attention, ln_2 before the MLP), each with 2 * n_embd parameters."),
        (-9 * C * L, "the biases of the Linear layers are missing: c_attn has 3 * n_embd, the "
                     "attention's c_proj n_embd, the MLP's c_fc 4 * n_embd and its c_proj n_embd."),
        (-(L - 1) * block, "only one block is counted: there are n_layer of them, all the same size."),
        (-(6 * C * C + 3 * C) * L, "the MLP is too small: its hidden layer is 4 * n_embd wide, so "
                                   "c_fc is (n_embd, 4 n_embd) and c_proj (4 n_embd, n_embd), "
                                   "each with a bias."),
        (-(C * C + C) * L, "the attention's output projection (c_proj, n_embd x n_embd plus a "
                           "bias) is missing: after the heads are merged, it mixes them."),
        (-(3 * C * C + 3 * C) * L, "the query, key and value projection (c_attn: n_embd x "
                                   "3 n_embd plus 3 n_embd biases) is missing."),
    ]


def _param_cases() -> list[GPTConfig]:
    """Configs whose vocab_size, block_size, n_layer, n_head and n_embd all differ."""
    return [GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=16),
            GPTConfig(vocab_size=50, block_size=20, n_layer=3, n_head=4, n_embd=24),
            GPTConfig(vocab_size=101, block_size=9, n_layer=5, n_head=1, n_embd=8),
            _random_config()]


def _random_config() -> GPTConfig:
    """A config drawn afresh on every check, so a count cannot be memorised."""
    pick = random.SystemRandom()
    n_head = pick.choice([1, 2, 3, 4])
    return GPTConfig(vocab_size=pick.randint(20, 300), block_size=pick.randint(5, 80),
                     n_layer=pick.randint(1, 6), n_head=n_head, n_embd=n_head * pick.randint(2, 12))


def check_gpt_param_count(count_fn) -> Verdict:
    """Check gpt_param_count(config) -> the number of parameters of GPT(config), by hand."""
    ex = "gpt_param_count(config)"
    answers = []
    for config in _param_cases():
        result, verdict = call_safely(ex, count_fn, config)
        if verdict is not None:
            return verdict
        got = as_count(result)
        if got is None:
            return failed(ex, f"return a whole number (an int), got {result!r}. Did you forget "
                              "a `return`?")
        answers.append(got)
        want = _param_count(config)
        if got == want:
            continue
        if len(answers) > 1 and len(set(answers)) == 1:
            return failed(ex, "your function returns the same count for different configs: read "
                              "every size from the config argument (config.vocab_size, "
                              "config.block_size, config.n_layer, config.n_embd), not from "
                              "variables elsewhere in the notebook.")
        case = (f"For GPTConfig(vocab_size={config.vocab_size}, block_size={config.block_size}, "
                f"n_layer={config.n_layer}, n_embd={config.n_embd}) the count is {want:,}; yours "
                f"is {got:,}.")
        mistakes = _param_mistakes(config)
        for n in (1, 2):  # the simplest explanation first, then two slips at once
            for combo in itertools.combinations(mistakes, n):
                if want + sum(delta for delta, _ in combo) == got:
                    return failed(ex, f"{case} It looks as if " + " Also, ".join(
                        hint for _, hint in combo))
        return failed(ex, f"{case} Count piece by piece: wte (vocab_size x n_embd), wpe "
                          "(block_size x n_embd), n_layer blocks of 12 n_embd² + 13 n_embd, "
                          "ln_f (2 n_embd); lm_head is tied to wte.")
    return passed(ex, "embeddings, n_layer blocks of 12 C² + 13 C and the final LayerNorm; the "
                      "tied output head costs nothing extra.")


# --- exercise: crop the context ----------------------------------------------------------------

def _crop_cases() -> list[tuple[torch.Tensor, int]]:
    """(idx (B, T), block_size): longer than, shorter than and exactly the context; every id unique."""
    def ids(B, T):
        return torch.arange(B * T).view(B, T) + 10  # (B, T): a token's value says where it was
    B, T, block = distinct_sizes((1, 5), (12, 80), (6, 11))  # drawn afresh on every check
    return [(ids(2, 10), 4), (ids(3, 9), 1), (ids(1, 3), 5), (ids(4, 6), 6), (ids(2, 25), 7),
            (ids(B, T), block)]


def check_crop_context(crop_fn) -> Verdict:
    """Check crop_context(idx, block_size) -> the last block_size tokens of every sequence."""
    ex = "crop_context(idx, block_size)"
    for idx, block in _crop_cases():
        given = idx.clone()
        result, verdict = call_safely(ex, crop_fn, given, block)
        if verdict is None:
            verdict = unchanged(ex, {"idx": idx}, {"idx": given})
        if verdict is not None:
            return verdict
        try:
            got = torch.as_tensor(result)
        except (TypeError, ValueError, RuntimeError):
            return failed(ex, f"return a tensor of token ids, got {type(result).__name__}. Did "
                              "you forget a `return`?")
        B, T = idx.shape
        want = idx[:, -block:]
        if got.shape == want.shape and torch.equal(got.long(), want):
            continue
        case = f"For idx of shape (B, T) = {(B, T)} and block_size = {block}"
        keep = min(T, block)
        if got.shape == want.shape and torch.equal(got.long(), idx[:, :keep]):
            return failed(ex, f"{case} you kept the first {keep} tokens. The model predicts what "
                              "comes after the *end* of the text, so it needs the most recent "
                              "tokens: idx[:, -block_size:].")
        if T > block and got.dim() == 2 and got.shape[0] == B and \
                got.shape[1] in (block - 1, block + 1):
            return failed(ex, f"{case} you kept {got.shape[1]} tokens, one too "
                              f"{'few' if got.shape[1] < block else 'many'}: the model reads at "
                              "most block_size tokens, the last ones, idx[:, -block_size:].")
        if T > block and got.shape == idx.shape and torch.equal(got.long(), idx):
            return failed(ex, f"{case} you returned all {T} tokens: nothing was cropped. Crop "
                              "the time axis, dimension 1: idx[:, -block_size:]. (idx[-block_size:] "
                              "would crop the batch axis, dimension 0.)")
        if got.dim() == 2 and got.shape[1] == T and got.shape[0] != B:
            return failed(ex, f"{case} you cropped the batch axis (dimension 0) instead of the "
                              "time axis: idx is (B, T), so crop dimension 1, idx[:, -block_size:].")
        if T < block and got.shape[0] == B:
            return failed(ex, f"{case} the sequence is already shorter than the context, so keep "
                              "all of it. (Careful with T - block_size: here it is negative, and "
                              "a negative start counts from the end. idx[:, -block_size:] is "
                              "right in every case.)")
        return failed(ex, f"{case} the result should be the last {keep} tokens of each of the "
                          f"{B} sequences, shape {tuple(want.shape)}; yours has shape "
                          f"{tuple(got.shape)}.")
    return passed(ex, "the model always reads the last block_size tokens (or all of them, if "
                      "there are fewer): that is how generate() keeps going past the context "
                      "length.")


# --- exercise: the previous-token score --------------------------------------------------------

def _causal_weights(*shape: int, seed: int) -> torch.Tensor:
    """Random causal attention weights (..., T, T) with peaked rows, so diagonals differ clearly."""
    gen = torch.Generator().manual_seed(seed)
    T = shape[-1]
    scores = 3.0 * torch.randn(*shape, generator=gen, dtype=torch.float64)   # (..., T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(diagonal=1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)  # rows sum to 1


def _prev_cases() -> list[torch.Tensor]:
    """One head (T, T), a layer's heads (H, T, T), a model's layers (L, H, T, T); sizes all differ."""
    L, H, T = distinct_sizes((2, 4), (5, 8), (9, 20))  # drawn afresh on every check
    return [_causal_weights(6, 6, seed=61), _causal_weights(3, 7, 7, seed=62),
            _causal_weights(2, 4, 5, 5, seed=63), _causal_weights(L, H, T, T, seed=fresh_seed())]


def _prev(w: torch.Tensor) -> torch.Tensor:
    """The reference: mean of the diagonal just below the main one, over the last two axes."""
    return torch.diagonal(w, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)  # (...)


def check_previous_token_score(score_fn) -> Verdict:
    """Check previous_token_score(attn): (..., T, T) -> (...), the mean weight on key i - 1."""
    ex = "previous_token_score(attn)"
    for w in _prev_cases():
        given = w.clone().float()
        result, verdict = call_safely(ex, score_fn, given)
        if verdict is None:
            verdict = unchanged(ex, {"attn": w.float()}, {"attn": given})
        if verdict is not None:
            return verdict
        try:
            got = torch.as_tensor(result).detach().double()
        except (TypeError, ValueError, RuntimeError):
            return failed(ex, f"return a tensor of scores, got {type(result).__name__}. Did you "
                              "forget a `return`?")
        want = _prev(w)
        T = w.shape[-1]
        lead = tuple(w.shape[:-2])

        def same(other):
            return got.shape == other.shape and torch.allclose(got, other, atol=1e-5)
        if same(want):
            continue
        case = f"For attention weights of shape {tuple(w.shape)}"
        below = torch.diagonal(w, offset=-1, dim1=-2, dim2=-1)  # (..., T-1)
        if w.dim() > 2 and got.shape != want.shape and \
                got.shape == torch.diagonal(w, offset=-1).mean(-1).shape:
            return failed(ex, f"{case} your result has shape {tuple(got.shape)}: torch.diagonal "
                              "takes the diagonal of dimensions 0 and 1 unless told otherwise. "
                              "Here the (T, T) tables are the last two: pass dim1=-2, dim2=-1.")
        if got.shape == below.shape and torch.allclose(got, below, atol=1e-5):
            return failed(ex, f"{case} you returned the {T - 1} weights on the previous token, "
                              "one per query row. Average them over the rows (.mean(dim=-1)) to "
                              f"get one score per head, shape {lead}.")
        if got.shape != want.shape:
            return failed(ex, f"{case} the result should hold one score per head, shape {lead}; "
                              f"yours has shape {tuple(got.shape)}. Average over the query rows "
                              "only, not over heads or layers.")
        known = [
            (torch.diagonal(w, dim1=-2, dim2=-1).mean(-1),
             "you read the main diagonal, each token's weight on itself. The previous token of "
             "query i is key i - 1: the diagonal just below, offset=-1."),
            (torch.diagonal(w, offset=1, dim1=-2, dim2=-1).mean(-1),
             "you read the diagonal above the main one: key i + 1, a *future* token, hidden by "
             "the causal mask, so its weights are all 0. That happens with offset=1, and also "
             "with offset=-1 when dim1 and dim2 are swapped (rows and columns trade places). "
             "Use torch.diagonal(attn, offset=-1, dim1=-2, dim2=-1): rows are queries."),
            (below.sum(-1) / T,
             f"you divided by T = {T}, but only the T - 1 = {T - 1} queries 1..T-1 have a "
             "previous token (query 0 has none): take the mean of the sub-diagonal."),
            (below.sum(-1),
             "you summed the weights on the previous token; the score is their mean over the "
             "queries, so that a perfect previous-token head scores 1."),
            (w[..., 1:, 0].mean(-1),
             "you read column 0, the weight on the first token. The previous token of query i "
             "is key i - 1."),
        ]
        for other, hint in known:
            if same(other):
                return failed(ex, f"{case} {hint}")
        return failed(ex, f"{case} the scores should be {[round(v, 4) for v in want.flatten()[:4].tolist()]}"
                          f"{' ...' if want.numel() > 4 else ''}: for each head, the mean of "
                          "attn[..., i, i - 1] over the query rows i = 1, ..., T - 1.")
    return passed(ex, "the mean weight on the diagonal just below the main one: 1.0 for a "
                      "perfect previous-token head, about ln(T)/T for a head that spreads evenly.")
