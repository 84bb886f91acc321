"""Scores that say what an attention head does: one number per head, 1.0 for a perfect pattern.

Each score reads attention weights (..., T, T) (rows are queries, columns keys, rows sum to 1) and
returns the mean weight a head puts on the keys its pattern names, averaged over query rows:

    previous token   key i - 1                      (a stripe just below the diagonal)
    self             key i                          (the diagonal)
    first token      key 0                          (the first column)
    same token       earlier keys j < i holding the query's own token
    induction        keys j < i right after an earlier copy of the query's token (ids[j-1] == ids[i])

and three scores to look further: offset_score(attention, k), the weight on the token k back,
token_score(attention, ids, token_id), the weight on every key holding one token (e.g. newline),
and last_token_score(attention, ids, token_ids), the weight on the latest earlier key holding one
of several tokens (e.g. the mark that began the current line).

Row 0 is left out of the position scores: under a causal mask its only key is itself, so it says
nothing about the head. A score of 1.0 means the head does exactly that; a head spreading its
weight evenly over all earlier tokens scores about ln(T) / T on the position scores: compare
with that chance level. Heads of real models mix patterns, so read a score as "how much", not
"which".
"""
from __future__ import annotations

import torch

from llmlab._validate_input import as_id_tensor, as_int

__all__ = ["SCORE_NAMES", "previous_token_score", "self_score", "first_token_score",
           "same_token_score", "induction_score", "offset_score", "token_score", "last_token_score",
           "head_scores",
           "chance_scores", "top_heads"]

SCORE_NAMES = ("previous token", "same token", "first token", "self", "induction")


def _check_attention(attention, name: str = "attention") -> torch.Tensor:
    """Return attention as a float tensor (..., T, T) with T >= 2, or raise naming the fix."""
    if not isinstance(attention, torch.Tensor):
        try:
            attention = torch.as_tensor(attention)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a tensor of attention weights (..., T, T), got "
                            f"{type(attention).__name__}, e.g. GPT's output.attention") from None
    if not attention.is_floating_point():
        raise ValueError(f"{name} has dtype {attention.dtype}: pass attention weights (floats "
                         "whose rows sum to 1), e.g. GPT's output.attention")
    if torch.isnan(attention).any():
        raise ValueError(f"{name} holds NaN: the model that produced it diverged; check its "
                         "weights (and the loss) before reading its heads")
    if attention.dim() < 2 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(f"{name} has shape {tuple(attention.shape)} but the scores need "
                         "self-attention weights (..., T, T): queries and keys are the same tokens")
    if attention.shape[-1] < 2:
        raise ValueError(f"{name} covers T={attention.shape[-1]} token: the scores need at least "
                         "2 tokens (row 0 is left out)")
    return attention.detach()


def previous_token_score(attention) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on the previous token, over query rows 1..T-1."""
    attention = _check_attention(attention)
    # offset=-1 is the diagonal just below the main one: entries (1, 0), (2, 1), ..., (T-1, T-2).
    return torch.diagonal(attention, offset=-1, dim1=-2, dim2=-1).mean(dim=-1)  # (...)


def self_score(attention) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight a token puts on itself, over query rows 1..T-1."""
    attention = _check_attention(attention)
    return torch.diagonal(attention, dim1=-2, dim2=-1)[..., 1:].mean(dim=-1)  # (...)


def first_token_score(attention) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on position 0, over query rows 1..T-1."""
    attention = _check_attention(attention)
    return attention[..., 1:, 0].mean(dim=-1)  # (...)


def offset_score(attention, k: int) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on the token k back (key i - k), over query rows k..T-1.

    k = 1 is the previous-token score; k = 0 the weight on the token itself (over rows 0..T-1).
    """
    attention = _check_attention(attention)
    T = attention.shape[-1]
    k = as_int(k, "k (how many tokens back)", 0, T - 1)
    return torch.diagonal(attention, offset=-k, dim1=-2, dim2=-1).mean(dim=-1)  # (...)


def _check_ids(ids, attention: torch.Tensor) -> torch.Tensor:
    """Return ids as a (T,) or (B, T) integer tensor that fits attention (..., [B, H,] T, T)."""
    ids = as_id_tensor(ids)
    T = attention.shape[-1]
    if ids.dim() not in (1, 2) or ids.shape[-1] != T:
        raise ValueError(f"ids has shape {tuple(ids.shape)} but the attention "
                         f"covers T={T} tokens: pass the (T,) or (B, T) integer token ids the model read")
    if ids.dim() == 2 and (attention.dim() < 4 or attention.shape[-4] != ids.shape[0]):
        raise ValueError(f"ids has a batch of {ids.shape[0]} sequences, so attention must be "
                         f"(..., B={ids.shape[0]}, H, T, T), got {tuple(attention.shape)}: pass "
                         "GPT's output.attention (L, B, H, T, T), or one sequence's ids (T,)")
    return ids.to(attention.device)


def _score_on_keys(attention: torch.Tensor, keys: torch.Tensor, what: str) -> torch.Tensor:
    """Mean weight on the marked keys (B, T, T) or (T, T), over the rows that have any marked key."""
    if keys.dim() == 3:
        keys = keys[:, None]  # (B, 1, T, T): the same keys for every head
    rows = keys.any(dim=-1)  # (T,) or (B, 1, T): queries for which the pattern is defined
    n_rows = rows.sum(dim=-1)
    if (n_rows == 0).any():
        raise ValueError(f"a sequence has no query with {what}, so the score is undefined: use "
                         "a longer passage of ordinary text")
    on_keys = (attention * keys).sum(dim=-1)  # (..., T): weight on the marked keys, per query
    return (on_keys * rows).sum(dim=-1) / n_rows  # (...)


def same_token_score(attention, ids) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on earlier copies of the query's own token.

    ids are the token ids the model read, (T,) or (B, T) with attention (..., B, H, T, T).
    Only queries whose token occurred before count.
    """
    attention = _check_attention(attention)
    ids = _check_ids(ids, attention)
    T = ids.shape[-1]
    earlier = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril(diagonal=-1)  # key j < query i
    same = ids[..., :, None] == ids[..., None, :]  # (..., T, T): key j holds query i's token
    return _score_on_keys(attention, same & earlier, "an earlier copy of its token")


def token_score(attention, ids, token_id: int) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on the keys holding token_id (any of them, up to itself).

    Only queries that can see at least one such key count. A head that ignores which token sits
    where scores about the token's frequency; a head that seeks it out scores far more.
    """
    attention = _check_attention(attention)
    ids = _check_ids(ids, attention)
    token_id = as_int(token_id, "token_id", 0)
    T = ids.shape[-1]
    seen = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril()  # key j <= query i
    holds = (ids == token_id)[..., None, :].expand(*ids.shape[:-1], T, T)  # (..., T, T) by key
    return _score_on_keys(attention, holds & seen, f"token {token_id} in view")


def last_token_score(attention, ids, token_ids) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on the most recent earlier key holding one of token_ids.

    E.g. token_ids = the ids of "\n" and the line-ending marks: a head that looks back to where
    the current line began, which tells the model how far into the line it is. Only queries
    with such a key before them count.
    """
    attention = _check_attention(attention)
    ids = _check_ids(ids, attention)
    wanted = torch.tensor([as_int(t, "token_ids[]", 0) for t in token_ids], device=ids.device)
    if wanted.numel() == 0:
        raise ValueError("token_ids is empty: give the ids of the tokens to look back to")
    T = ids.shape[-1]
    positions = torch.arange(T, device=ids.device)
    holds = torch.isin(ids, wanted)  # (..., T)
    # For each query i, the latest j < i holding one of them: a running maximum of marked positions.
    marked = torch.where(holds, positions, torch.full_like(positions, -1))  # (..., T)
    latest = torch.cummax(marked, dim=-1).values  # (..., T): latest marked j <= i
    before = torch.cat([torch.full_like(latest[..., :1], -1), latest[..., :-1]], dim=-1)  # j < i
    keys = positions == before[..., :, None]  # (..., T, T): key j is that latest mark
    return _score_on_keys(attention, keys, "one of token_ids before it")


def induction_score(attention, ids) -> torch.Tensor:
    """(..., T, T) -> (...): mean weight on the token that followed an earlier copy of the query's.

    An induction head completes repeats: having seen "...ab...a", at the second "a" it looks at
    the "b" after the first, which is what will probably come next.
    """
    attention = _check_attention(attention)
    ids = _check_ids(ids, attention)
    T = ids.shape[-1]
    follows = torch.zeros(ids.shape + (T,), dtype=torch.bool, device=ids.device)  # (..., T, T)
    # key j (>= 1) follows a copy of query i's token when ids[j - 1] == ids[i]
    follows[..., 1:] = ids[..., :, None] == ids[..., None, :-1]
    earlier = torch.ones(T, T, dtype=torch.bool, device=ids.device).tril(diagonal=-1)
    return _score_on_keys(attention, follows & earlier, "a repeated earlier token")


def head_scores(attention, ids=None) -> dict[str, torch.Tensor]:
    """Every score for every head of a GPT: {name: (L, H)}, averaged over the batch.

    attention is GPT's output.attention (L, B, H, T, T) (or (L, H, T, T) for one sequence) and
    ids the (B, T) or (T,) token ids it read; without ids only the position scores are computed.
    """
    attention = _check_attention(attention)
    if attention.dim() not in (4, 5):
        raise ValueError(f"attention has shape {tuple(attention.shape)}; head_scores expects GPT's "
                         "(L, B, H, T, T), or (L, H, T, T) for one sequence")
    batched = attention.dim() == 5
    if not batched:
        attention = attention[:, None]  # (L, 1, H, T, T)
    if ids is not None:
        ids = as_id_tensor(ids)
        if ids.dim() == 1:
            ids = ids[None].expand(attention.shape[1], -1)  # (B, T): the same text everywhere
    scores = {"previous token": previous_token_score(attention)}
    if ids is not None:
        scores["same token"] = same_token_score(attention, ids)
    scores["first token"] = first_token_score(attention)
    scores["self"] = self_score(attention)
    if ids is not None:
        scores["induction"] = induction_score(attention, ids)
    return {name: s.mean(dim=1) for name, s in scores.items()}  # (L, B, H) -> (L, H)


def chance_scores(ids) -> dict[str, float]:
    """The scores of a head that spreads its weight evenly over every token it may see (ids as read).

    The baseline to compare head_scores with: a score well above its chance level names a job.
    """
    ids = as_id_tensor(ids)
    if ids.dim() not in (1, 2) or ids.shape[-1] < 2:
        raise ValueError(f"ids has shape {tuple(ids.shape)}: pass the (T,) or (B, T) integer "
                         "token ids the model read, T >= 2")
    ids = ids.reshape(-1, ids.shape[-1])                                  # (B, T)
    B, T = ids.shape
    even = torch.ones(T, T).tril()                                        # (T, T) causal
    even = even / even.sum(dim=-1, keepdim=True)                          # row i: 1 / (i + 1) each
    attention = even.expand(1, B, 1, T, T)                                # (L=1, B, H=1, T, T)
    return {name: float(table) for name, table in head_scores(attention, ids).items()}


def top_heads(scores: dict) -> dict[str, tuple[int, int, float]]:
    """For each score, the head that has most of it: {name: (layer, head, score)}."""
    best = {}
    for name, table in scores.items():
        table = torch.as_tensor(table)
        if table.dim() != 2:
            raise ValueError(f"scores[{name!r}] has shape {tuple(table.shape)}; pass head_scores' "
                             "output, one (L, H) table per score")
        layer, head = divmod(int(table.argmax()), table.shape[1])
        best[name] = (layer, head, float(table[layer, head]))
    return best
