"""Attention as data: any model's weights checked into one (layers, heads, T_q, T_k) array.

Also the numbers a view shows: the crop window of a long sequence and the title that says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["AttentionData", "as_attention"]

_SHAPES_HELP = ("expected (T_q, T_k), (heads, T_q, T_k), (layers, heads, T_q, T_k), "
                "(layers, batch, heads, T_q, T_k) with batch_index, or a list of per-layer "
                "(batch, heads, T_q, T_k) tensors such as a Hugging Face model's "
                "outputs.attentions")


@dataclass(frozen=True, eq=False)
class AttentionData:
    """Checked attention weights (layers, heads, T_q, T_k) plus the tokens labelling both axes."""

    weights: np.ndarray               # (L, H, T_q, T_k) float32, read-only; rows are queries
    query_tokens: tuple[str, ...]     # one label per row: the token attending from
    key_tokens: tuple[str, ...]       # one label per column: the token attended to
    masked: np.ndarray | None = None  # (T_q, T_k) bool, True where a key is hidden from a query

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        """Number of heads per layer."""
        return self.weights.shape[1]

    @property
    def is_self_attention(self) -> bool:
        """True when queries and keys are the same tokens."""
        return self.query_tokens == self.key_tokens

    def head(self, layer: int = 0, head: int | str = 0) -> np.ndarray:
        """The (T_q, T_k) weights of one head, or the mean over the layer's heads (head="mean")."""
        layer = _index(layer, self.n_layers, "layer")
        if head == "mean":
            return self.weights[layer].mean(axis=0)  # (T_q, T_k)
        return self.weights[layer, _index(head, self.n_heads, "head")]

    def __repr__(self) -> str:
        kind = "self-attention" if self.is_self_attention else "cross-attention"
        L, H, T_q, T_k = self.weights.shape
        return f"AttentionData(layers={L}, heads={H}, T_q={T_q}, T_k={T_k}, {kind})"


def as_attention(weights, query_tokens=None, key_tokens=None, *, batch_index=None,
                 masked=None, check_rows=True) -> AttentionData:
    """Turn attention weights from any model (torch or NumPy) into a checked AttentionData."""
    if isinstance(weights, AttentionData):  # re-label or re-mask checked data
        data = weights
        if query_tokens is None and key_tokens is None and masked is None:
            return data
        if key_tokens is None and (query_tokens is None or not data.is_self_attention):
            key_tokens = data.key_tokens
        query_tokens = data.query_tokens if query_tokens is None else query_tokens
        masked = data.masked if masked is None else masked
        weights = data.weights
    w, atol = _to_array(weights, batch_index)  # (L, H, T_q, T_k)
    _, _, T_q, T_k = w.shape
    queries = _labels(query_tokens, T_q, "query")
    if key_tokens is None and T_k != T_q:
        raise ValueError(f"weights have T_q={T_q} query positions but T_k={T_k} key positions, "
                         "and key_tokens was not given (keys default to the queries, as in "
                         "self-attention): pass key_tokens for cross-attention")
    keys = queries if key_tokens is None else _labels(key_tokens, T_k, "key")
    hidden = _masked(masked, T_q, T_k)
    w = _clear_blind_queries(w, hidden)
    _check_values(w, queries, keys, hidden, check_rows, atol)
    w.setflags(write=False)  # views share this array; nobody should edit it behind their back
    return AttentionData(w, queries, keys, hidden)


def _to_array(weights, batch_index):
    """Weights as a float32 (L, H, T_q, T_k) array, and the row-sum tolerance of their dtype."""
    if weights is None or (isinstance(weights, (list, tuple))
                           and all(x is None for x in weights)):
        # What Hugging Face returns when the model ran a fused kernel (sdpa, FlashAttention):
        # those never form the T x T weights, so there is nothing to draw.
        raise ValueError("no attention weights were given (None, an empty tuple or None for every "
                         "layer): a model that runs a fused attention kernel does not compute them. "
                         "With Hugging Face transformers, load the model with "
                         "attn_implementation=\"eager\" and call it with output_attentions=True; "
                         "with an llmlab model, pass return_attention=True")
    if isinstance(weights, (list, tuple)) and weights and (
            weights[0] is None or isinstance(weights[0], (torch.Tensor, np.ndarray))):
        layers = [_pick_batch(_numpy(x, f"layer {i}"), batch_index, f"layer {i}", axis=0)
                  if _ndim(x) == 4 else _numpy(x, f"layer {i}") for i, x in enumerate(weights)]
        for i, a in enumerate(layers):
            if a.ndim == 2:
                layers[i] = a[None]  # (1, T_q, T_k): one head
            elif a.ndim != 3:
                raise ValueError(f"layer {i} has shape {a.shape}; each layer should be "
                                 "(batch, heads, T_q, T_k) or (heads, T_q, T_k)")
            if layers[i].shape != layers[0].shape:
                raise ValueError(f"layer {i} has shape {layers[i].shape} but layer 0 has "
                                 f"{layers[0].shape}: every layer must have the same heads and "
                                 "tokens")
        if batch_index is not None and _ndim(weights[0]) != 4:
            raise ValueError(f"batch_index={batch_index} was given but the layers have no batch "
                             "dimension (they are (heads, T_q, T_k)): drop batch_index")
        a = np.stack(layers)  # (L, H, T_q, T_k)
        return a, _tolerance(weights[0])
    a = _numpy(weights, "weights")
    if batch_index is not None and a.ndim in (4, 5):
        # With batch_index a 4-D tensor is (B, H, T_q, T_k), e.g. from nn.MultiheadAttention.
        a = _pick_batch(a, batch_index, "weights", axis=0 if a.ndim == 4 else 1)
        a = a[None] if a.ndim == 3 else a  # (L, H, T_q, T_k)
    elif batch_index is not None:
        raise ValueError(f"batch_index={batch_index} was given but weights of shape {a.shape} "
                         "have no batch dimension: drop batch_index")
    elif a.ndim == 5:
        a = _pick_batch(a, None, "weights", axis=1)  # (L, H, T_q, T_k)
    if a.ndim == 2:
        a = a[None, None]  # (1, 1, T_q, T_k)
    elif a.ndim == 3:
        a = a[None]  # (1, H, T_q, T_k)
    elif a.ndim != 4:
        raise ValueError(f"weights have {a.ndim} dimensions (shape {a.shape}); {_SHAPES_HELP}")
    if a.size == 0:
        raise ValueError(f"weights of shape {a.shape} are empty: there is nothing to draw")
    return np.ascontiguousarray(a), _tolerance(weights)


def _ndim(x) -> int:
    """Number of dimensions of a tensor or array (0 for anything else)."""
    return x.ndim if isinstance(x, (torch.Tensor, np.ndarray)) else 0


def _numpy(x, what: str) -> np.ndarray:
    """A float32 NumPy copy of a tensor (any device or dtype, with or without grad) or array."""
    if x is None:
        raise ValueError(f"{what} is None: the model returned no attention weights for it. With "
                         "Hugging Face models load the model with attn_implementation='eager' "
                         "and call it with output_attentions=True")
    if isinstance(x, torch.Tensor):
        # bfloat16 has no NumPy twin, so go through float32 (on the CPU) first.
        return x.detach().to(device="cpu", dtype=torch.float32).numpy()
    a = np.asarray(x)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) \
            or a.dtype == bool:
        raise TypeError(f"{what} must be a torch tensor or a NumPy array of real numbers, got "
                        f"{type(x).__name__} of dtype {a.dtype}")
    return a.astype(np.float32)


def _tolerance(x) -> float:
    """How far a row sum may be from 1 given the dtype the weights were computed in."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return max(1e-3, 2 * torch.finfo(x.dtype).eps)  # bfloat16: 0.016, float16: 0.002
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return max(1e-3, 2 * float(np.finfo(x.dtype).eps))
    return 1e-3


def _pick_batch(a: np.ndarray, batch_index, what: str, axis: int) -> np.ndarray:
    """Select one sequence of a batch along axis (the batch axis)."""
    B = a.shape[axis]
    if batch_index is None:
        if B == 1:
            return a.take(0, axis=axis)
        raise ValueError(f"{what} has shape {a.shape}: a batch of {B} sequences. Choose the one "
                         f"to show with batch_index=0 (… up to {B - 1})")
    if isinstance(batch_index, bool) or not isinstance(batch_index, (int, np.integer)) \
            or not -B <= batch_index < B:
        raise ValueError(f"batch_index={batch_index!r} is not valid for a batch of {B} "
                         f"sequences: use an int from 0 to {B - 1}")
    return a.take(int(batch_index), axis=axis)


def _labels(tokens, n: int, axis: str) -> tuple[str, ...]:
    """Check that there is one token label per position and return them as strings."""
    if tokens is None:
        return tuple(str(i) for i in range(n))  # positions stand in for missing tokens
    if isinstance(tokens, str):
        raise TypeError(f"{axis}_tokens is one string ({tokens[:30]!r}); pass a list with one "
                        "token per position, e.g. text.split() or "
                        "tokenizer.convert_ids_to_tokens(ids)")
    if isinstance(tokens, (torch.Tensor, np.ndarray)):
        tokens = tokens.tolist()
    tokens = tuple(str(t) for t in tokens)
    if len(tokens) != n:
        T = "T_q" if axis == "query" else "T_k"
        raise ValueError(f"weights have {T}={n} {axis} positions but {len(tokens)} "
                         f"{axis}_tokens were given: pass one label per position (special tokens "
                         "such as <bos> or [CLS] included)")
    return tokens


def _masked(masked, T_q: int, T_k: int) -> np.ndarray | None:
    """The (T_q, T_k) boolean mask of hidden cells, from a bool array or "causal"."""
    if masked is None:
        return None
    if isinstance(masked, str):
        if masked != "causal":
            raise ValueError(f"masked={masked!r} is not understood: pass 'causal' or a boolean "
                             "array")
        # Queries are the last T_q of the T_k positions (so a KV-cache step masks nothing).
        return np.triu(np.ones((T_q, T_k), dtype=bool), k=T_k - T_q + 1)
    m = masked.detach().cpu().numpy() if isinstance(masked, torch.Tensor) else np.asarray(masked)
    if m.dtype != bool:
        raise TypeError(f"masked must be a boolean array (True = key hidden from the query), got "
                        f"dtype {m.dtype}. A 0/1 mask is ambiguous: Hugging Face's "
                        "attention_mask uses 1 for tokens to keep, so pass "
                        "masked=(attention_mask[0] == 0); for an additive mask pass "
                        "masked=(mask == float('-inf'))")
    try:
        return np.broadcast_to(m, (T_q, T_k)).copy()
    except ValueError:
        raise ValueError(f"masked has shape {m.shape}, which does not broadcast to (T_q, T_k) = "
                         f"({T_q}, {T_k}): pass a (T_q, T_k) array, or a (T_k,) one that hides "
                         "the same keys from every query") from None


def _clear_blind_queries(w: np.ndarray, hidden: np.ndarray | None) -> np.ndarray:
    """w with the rows of queries that may see no key at all set to 0, whatever they held.

    Such a query (a padding token in a left-padded batch, with the causal mask) attends to
    nothing; models still write something there: Hugging Face spreads it evenly over every key,
    a -inf mask gives NaN. Those rows are drawn as masked and stored as 0.
    """
    if hidden is None or not hidden.all(axis=1).any():
        return w
    if hidden.all():
        raise ValueError("masked hides every key from every query, so nothing would be shown. Is "
                         "True meant as 'hidden'? If your mask uses True for 'keep', pass ~mask")
    return np.where(hidden.all(axis=1)[:, None], np.float32(0), w)  # a copy: never the caller's


def _where(w_index, queries, keys) -> str:
    """Name a cell (layer, head, query row, key) with its tokens, for error messages."""
    l, h, q, k = (int(i) for i in w_index)
    return f"layer {l}, head {h}, query row {q} ({queries[q]!r}), key {k} ({keys[k]!r})"


def _check_values(w, queries, keys, hidden, check_rows: bool, atol: float) -> None:
    """Raise a ValueError naming the first cell or row that cannot be attention weights."""
    finite = np.isfinite(w)
    if not finite.all():
        first = np.argwhere(~finite)[0]
        kind = "NaN" if np.isnan(w[tuple(first)]) else "inf"
        raise ValueError(f"weights contain {(~finite).sum()} NaN/inf values; the first is {kind} "
                         f"at {_where(first, queries, keys)}. A query whose keys are all masked "
                         "with -inf gives NaN after softmax (fill masked scores with a large "
                         "negative number instead), and float16 can overflow: look at the model "
                         "there")
    if w.min() < 0:
        first = np.unravel_index(np.argmin(w), w.shape)
        raise ValueError(f"weights contain negative values (min {w.min():.4g} at "
                         f"{_where(first, queries, keys)}); attention weights come out of a "
                         "softmax and are never negative. Did you pass the scores before softmax? "
                         "Apply softmax(scores, dim=-1) first")
    if hidden is not None and hidden.any():
        leak = np.where(hidden, w, 0.0)  # (L, H, T_q, T_k): weight that sits on masked cells
        if leak.max() > 1e-3:
            first = np.unravel_index(np.argmax(leak), w.shape)
            fix = "Is True meant as 'hidden'? If your mask uses True for 'keep', pass ~mask"
            causal = hidden | np.triu(np.ones(hidden.shape, dtype=bool), 1)
            # Hidden cells (with the causal part) of the queries that still see some key:
            rest = causal & ~causal.all(axis=1, keepdims=True)
            if w.shape[2] == w.shape[3] and not causal.all() and np.where(rest, w, 0).max() <= 1e-3:
                # A left-padded decoder batch, with only the padding keys hidden.
                fix = ("With the causal part added the mask fits: a decoder's padding query sees "
                       "no key at all, and such rows are shown as masked whatever they hold. "
                       "Pass masked=np.triu(np.ones((T, T), bool), 1) | pad[None, :]")
            raise ValueError(f"masked marks {_where(first, queries, keys)} as hidden but its "
                             f"weight is {leak.max():.3f}: the mask does not match the weights. "
                             + fix)
    if not check_rows:
        return
    sums = w.sum(axis=-1, dtype=np.float64)  # (L, H, T_q)
    bad = (np.abs(sums - 1.0) > atol) & (sums != 0.0)  # all-zero rows: a fully masked query
    if bad.any():
        l, h, q = np.argwhere(bad)[0]
        hint = ""
        cols = w.sum(axis=-2, dtype=np.float64)  # (L, H, T_k)
        if np.allclose(cols, 1.0, atol=atol):
            hint = (" The columns sum to 1 instead: are the axes swapped? Weights should be "
                    "(..., T_q, T_k); try weights.transpose(-1, -2).")
        raise ValueError(f"each query's weights should sum to 1 over the keys, but layer {l}, "
                         f"head {h}, query row {q} ({queries[q]!r}) sums to {sums[l, h, q]:.4f} "
                         f"({bad.sum()} rows are off).{hint} Pass check_rows=False for attention "
                         "that was averaged, summed or renormalised on purpose; rows that are all "
                         "zero (a fully masked query) are accepted as they are")


def window(n: int, max_tokens: int | None, start: int = 0) -> tuple[int, int]:
    """The [lo, hi) positions shown when at most max_tokens of n fit, starting near start."""
    if max_tokens is None:
        return 0, n
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, (int, np.integer)) \
            or max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens!r} must be a positive int (or None for no crop)")
    if n <= max_tokens:
        return 0, n
    lo = min(max(int(start), 0), n - max_tokens)  # clamp so the window is always full
    return lo, lo + max_tokens


def crop_note(q_win, k_win, T_q: int, T_k: int) -> str:
    """Title text saying which tokens a cropped view shows ('' when nothing was cropped)."""
    if q_win == (0, T_q) and k_win == (0, T_k):
        return ""
    if q_win == k_win and T_q == T_k:
        return f"tokens {q_win[0]}–{q_win[1] - 1} of {T_q}"
    return (f"queries {q_win[0]}–{q_win[1] - 1} of {T_q} · "
            f"keys {k_win[0]}–{k_win[1] - 1} of {T_k}")


def _index(value, n: int, what: str) -> int:
    """Check a layer or head index (negative counts from the end) and return it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -n <= value < n:
        extra = ' or "mean"' if what == "head" else ""
        raise ValueError(f"{what}={value!r} is out of range: the weights have {n} "
                         f"{what}{'s' if n != 1 else ''}, so pass an int from 0 to {n - 1}{extra}")
    return int(value) % n


def head_view(data: AttentionData, layer, head, max_tokens, start):
    """What one heatmap shows: (matrix, hidden, query labels, key labels, first query, title)."""
    T_q, T_k = data.weights.shape[2:]
    (qa, qb), (ka, kb) = window(T_q, max_tokens, start), window(T_k, max_tokens, start)
    matrix = data.head(layer, head)[qa:qb, ka:kb]  # (T_q', T_k'): checks layer and head too
    hidden = None if data.masked is None else data.masked[qa:qb, ka:kb]
    what = f"mean of {data.n_heads} heads" if head == "mean" else f"head {head}"
    note = crop_note((qa, qb), (ka, kb), T_q, T_k)
    title = f"layer {layer} · {what}" + (f" · {note}" if note else "")
    return matrix, hidden, data.query_tokens[qa:qb], data.key_tokens[ka:kb], qa, title


