"""Checkers for lesson 09 (inside and beyond): KV-cache bytes, the induction pattern, head ablation.

Each checker draws fresh random sizes on every call (no answer can be memorised), compares the
learner's result with a reference computed here, catches answers that change their input in
place, and when the answer is wrong names the typical mistake it looks like.
"""
from __future__ import annotations

import random

import torch

from llmlab.gpt import GPTConfig
from ._core import Verdict, as_count, call_safely, call_unchanged, distinct_sizes, failed, passed

__all__ = ["check_kv_cache_bytes", "check_induction_pattern", "check_ablate_head"]


def _tensor_answer(ex: str, what: str, fn, *args):
    """(the learner's tensor, None), or (None, a verdict) if fn raised, changed an input or
    returned something else."""
    result, verdict = call_unchanged(ex, fn, *args)
    if verdict is not None:
        return None, verdict
    if result is None:
        return None, failed(ex, f"return {what}, got None. Did you forget a `return`?")
    if not isinstance(result, torch.Tensor):
        return None, failed(ex, f"return {what}, got a {type(result).__name__}: build a tensor "
                                "with torch operations (or wrap it: torch.tensor(...)).")
    return result.detach(), None


# --- exercise: the KV cache's memory ------------------------------------------------------------

def _cache_cases(pick: random.Random):
    """(config, tokens, batch, bytes_per_number): n_layer, n_head and batch distinct odd numbers, so
    each forgotten factor (2 for keys and values, 4 bytes) gives a number of its own."""
    cases = []
    for nbytes in (4, 2, 4):  # the first case tells a forgotten 2 from forgotten bytes
        # Odd and distinct: no product of two forgotten factors equals a third one.
        n_layer, n_head, batch = pick.sample([3, 5, 7, 9, 11], 3)
        config = GPTConfig(vocab_size=pick.randint(50, 500), block_size=512, n_layer=n_layer,
                           n_head=n_head, n_embd=n_head * pick.choice([8, 16, 24]))
        cases.append((config, pick.randint(11, 300), batch, nbytes))
    return cases


def check_kv_cache_bytes(bytes_fn) -> Verdict:
    """Check kv_cache_bytes(config, tokens, batch, bytes_per_number) -> bytes the cache holds."""
    ex = "kv_cache_bytes(config, tokens, batch, bytes_per_number)"
    for config, T, B, nbytes in _cache_cases(random.SystemRandom()):
        L, C, H = config.n_layer, config.n_embd, config.n_head
        want = 2 * L * C * T * B * nbytes
        result, verdict = call_safely(ex, bytes_fn, config, T, B, nbytes)
        if verdict is not None:
            return verdict
        if isinstance(result, float) and not result.is_integer():
            return failed(ex, f"you returned {result!r}, not a whole number: return the bytes "
                              "themselves (an int), not KiB or MB (no division).")
        got = as_count(result)
        case = (f"For n_layer={L}, n_head={H}, n_embd={C}, tokens={T}, batch={B}, "
                f"bytes_per_number={nbytes} the cache holds {want:,} bytes")
        if got is None:
            return failed(ex, f"return a whole number of bytes (an int), got {result!r}. Did you "
                              "forget a `return`?")
        if got == want:
            continue
        hints = {want // 2: "you counted only the keys (or only the values): the cache keeps both, "
                            "one key and one value vector per token and layer, so multiply by 2",
                 want // L: "you counted one layer: every layer has its own attention and keeps "
                            "its own keys and values, so multiply by n_layer",
                 want // nbytes: "you counted numbers, not bytes: multiply by bytes_per_number "
                                 "(4 for float32, 2 for bfloat16)",
                 want // B: "you counted one sequence: each sequence in the batch has its own "
                            "cache, so multiply by batch",
                 want * H: "you multiplied by n_head as well: the heads split n_embd between them "
                           "(each keeps n_embd // n_head numbers), so all heads together keep "
                           "n_embd per token, not n_head * n_embd",
                 want // H: "you counted one head: each keeps n_embd // n_head numbers per token, "
                            "so all heads together keep n_embd"}
        if got == want // T * config.block_size:
            return failed(ex, f"{case}. You used config.block_size ({config.block_size}) instead "
                              f"of tokens ({T}): the cache holds the tokens seen so far.")
        if got in hints:
            return failed(ex, f"{case}, you returned {got:,}: {hints[got]}.")
        return failed(ex, f"{case}, you returned {got:,}. Per token and layer the cache keeps a "
                          "key and a value of n_embd numbers each: 2 * n_layer * n_embd * tokens "
                          "* batch * bytes_per_number.")
    return passed(ex, "right for every size tried. GPT-2 small's cache at its full context of "
                      "1024 tokens: 2 x 12 x 768 x 1024 x 4 bytes = 75.5 MB per sequence.")


# --- exercise: where an induction head should look ----------------------------------------------

def _pattern_cases(pick: random.Random) -> list[torch.Tensor]:
    """Token id sequences with many repeats (a small vocabulary), of two unpredictable lengths."""
    cases = []
    for T in distinct_sizes((9, 16), (17, 30)):
        gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
        ids = torch.randint(pick.randint(3, 6), (T,), generator=gen)
        ids[1] = ids[0]  # a doubled token: the pattern must still point one past each copy
        cases.append(ids)
    return cases


def _induction_reference(ids: torch.Tensor) -> torch.Tensor:
    """(T,) -> (T, T) bool: key j >= 1 is earlier than i and follows a copy of token i."""
    T = len(ids)
    pattern = torch.zeros(T, T, dtype=torch.bool)
    pattern[:, 1:] = ids[:, None] == ids[None, :-1]  # ids[j - 1] == ids[i]
    return pattern & torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1)


def check_induction_pattern(pattern_fn) -> Verdict:
    """Check induction_pattern(ids): (T,) ids -> (T, T) bool, True where an induction head looks."""
    ex = "induction_pattern(ids)"
    for ids in _pattern_cases(random.SystemRandom()):
        T = len(ids)
        want = _induction_reference(ids)
        got, verdict = _tensor_answer(ex, "a bool tensor (T, T)", pattern_fn, ids)
        if verdict is not None:
            return verdict
        case = f"For ids = {ids.tolist()}"
        if got.shape != (T, T):
            return failed(ex, f"{case} (T = {T}) the pattern should have shape (T, T) = {(T, T)}, "
                              f"got {tuple(got.shape)}: rows are queries i, columns keys j.")
        if got.dtype != torch.bool:
            return failed(ex, f"{case} your pattern has dtype {got.dtype}: return a bool tensor "
                              "(compare with == and combine with &).")
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            return failed(ex, f"{case} your pattern is transposed: rows are queries i, columns "
                              "keys j, so entry [i, j] is about query i looking at key j.")
        shifted_query = torch.zeros(T, T, dtype=torch.bool)
        shifted_query[1:] = ids[:-1, None] == ids[None, :]  # ids[i - 1] == ids[j]
        if torch.equal(got, shifted_query & torch.ones(T, T, dtype=torch.bool).tril(-1)):
            return failed(ex, f"{case} you compared the token before the query with the key "
                              "(ids[i - 1] == ids[j]); compare the query's own token with the "
                              "token before the key: ids[j - 1] == ids[i].")
        same = (ids[:, None] == ids[None, :]) & torch.ones(T, T, dtype=torch.bool).tril(-1)
        before = torch.zeros(T, T, dtype=torch.bool)
        before[:, :-1] = ids[:, None] == ids[None, 1:]  # ids[j + 1] == ids[i]: the key before a copy
        if torch.equal(got, same):
            return failed(ex, f"{case} you marked the earlier copies of the query's token: that is a "
                              "same-token head. An induction head looks one step further, at the "
                              "token that followed the copy (key j where ids[j - 1] == ids[i]).")
        if torch.equal(got, before & torch.ones(T, T, dtype=torch.bool).tril(-1)):
            return failed(ex, f"{case} you marked the key before each copy (ids[j + 1] == ids[i]); "
                              "the induction head wants the one after it: ids[j - 1] == ids[i].")
        upper = got & ~torch.ones(T, T, dtype=torch.bool).tril()
        if bool(upper.any()):
            i, j = (int(v) for v in upper.nonzero()[0])
            return failed(ex, f"{case} you marked key {j} for query {i}: a later token, which a "
                              "causal model cannot see. Keep only j < i (e.g. & with "
                              "torch.ones(T, T, dtype=torch.bool).tril(diagonal=-1)).")
        if bool(got.diagonal().any()) and torch.equal(got & ~torch.eye(T, dtype=torch.bool), want):
            return failed(ex, f"{case} you marked the query itself (j = i): the copy it looks for "
                              "must be earlier, j < i, so use tril(diagonal=-1).")
        if bool(got[:, 0].any()):
            return failed(ex, f"{case} you marked key 0: no token comes before it, so it never "
                              "follows a copy. Start at j = 1 (compare ids[i] with ids[j - 1]).")
        i, j = (int(v) for v in (got ^ want).nonzero()[0])
        return failed(ex, f"{case} query {i}, key {j} should be {bool(want[i, j])}: key j is marked "
                          "when j < i and ids[j - 1] == ids[i].")
    return passed(ex, "it marks, for every token, the tokens that followed its earlier copies. "
                      "llmlab.heads.induction_score is the mean attention weight a head puts there.")


# --- exercise: switching one head off -----------------------------------------------------------

def _ablation_cases(pick: random.Random):
    """(y, head, n_head): the heads' outputs side by side (B, T, C), with B, T, H, hd all distinct."""
    cases = []
    for _ in range(2):
        B, T, H, hd = distinct_sizes((2, 4), (5, 9), (3, 6), (3, 8))  # H >= 3: "another head" != "all but one"
        gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
        cases.append((torch.randn(B, T, H * hd, generator=gen) + 0.5, pick.randrange(H), H))
    return cases


def check_ablate_head(ablate_fn) -> Verdict:
    """Check ablate_head(y, head, n_head): y (B, T, C) with head's hd columns set to 0, y unchanged."""
    ex = "ablate_head(y, head, n_head)"
    for y, head, H in _ablation_cases(random.SystemRandom()):
        B, T, C = y.shape
        hd = C // H
        want = y.clone()
        want[..., head * hd:(head + 1) * hd] = 0.0
        got, verdict = _tensor_answer(ex, "the new tensor (B, T, C)", ablate_fn, y, head, H)
        if verdict is not None and "in place" in verdict.message:
            return failed(ex, "your function changed its input `y`: assigning into y[...] (or into "
                              "a .view of y) writes into y itself, and the caller still needs it. "
                              "Start from a copy, z = y.clone(), and zero the columns of z.")
        if verdict is not None:
            return verdict
        case = f"For y of shape (B, T, C) = {(B, T, C)}, n_head = {H}, head = {head}"
        if got.shape == (B, T, H, hd):
            return failed(ex, f"{case} you returned shape (B, T, n_head, hd): the projection c_proj "
                              "reads (B, T, C), so view it back with .view(B, T, C) (or reshape).")
        if got.shape != (B, T, C):
            return failed(ex, f"{case} the result should keep y's shape {(B, T, C)}, got "
                              f"{tuple(got.shape)}.")
        if torch.allclose(got, want):
            continue
        interleaved = y.clone()
        interleaved[..., head::H] = 0.0
        if torch.allclose(got, interleaved):
            return failed(ex, f"{case} you zeroed every n_head-th column (head::n_head). Heads sit "
                              "side by side: head h owns the hd = C // n_head columns "
                              "h * hd to (h + 1) * hd, as .view(B, T, n_head, hd) shows.")
        kept = torch.zeros_like(y)
        kept[..., head * hd:(head + 1) * hd] = y[..., head * hd:(head + 1) * hd]
        if torch.allclose(got, kept):
            return failed(ex, f"{case} you kept only the head and zeroed the others: ablation "
                              "silences the one head and leaves the rest as they were.")
        for other in (head - 1, head + 1):
            if 0 <= other < H:
                wrong = y.clone()
                wrong[..., other * hd:(other + 1) * hd] = 0.0
                if torch.allclose(got, wrong):
                    return failed(ex, f"{case} you zeroed head {other} instead of head {head}: "
                                      "heads count from 0, head h owns columns h * hd to (h + 1) * hd.")
        if torch.allclose(got, y):
            return failed(ex, f"{case} your result equals y: nothing was switched off.")
        return failed(ex, f"{case} the result differs from y with columns {head * hd} to "
                          f"{(head + 1) * hd - 1} set to 0 (and nothing else changed).")
    return passed(ex, "and y itself is unchanged. llmlab.induction.ablate_heads does the same "
                      "inside the model, with a hook on each layer's c_proj.")
