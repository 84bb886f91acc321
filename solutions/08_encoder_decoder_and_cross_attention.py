"""Solutions to the exercises of lesson 08, "Encoder–decoder and cross-attention".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def source_padding_mask(src: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Exercise 1: bool (B, 1, 1, T), True where src holds a real token (a key that may be read)."""
    real = src != pad_id  # (B, T): a comparison gives a bool tensor; use the argument, not 0
    # The scores are (B, H, T_q, T) and the source positions are the keys, the last axis. Two new
    # axes for heads and queries let one mask broadcast over both; a (B, T) mask would instead
    # be lined up with (T_q, T), so B would meet the query axis.
    return real[:, None, None, :]  # (B, 1, 1, T)


def shift_right(tgt: torch.Tensor, bos_id: int) -> torch.Tensor:
    """Exercise 2: the decoder input for teacher forcing, (B, T): bos_id, then tgt[:, :-1]."""
    # Position t reads BOS and the targets before t, and is trained to predict tgt[:, t]. The last
    # target token is never an input (nothing follows it), so it is dropped; torch.roll would
    # instead wrap it around into column 0.
    bos = torch.full((tgt.shape[0], 1), bos_id, dtype=tgt.dtype, device=tgt.device)  # (B, 1)
    return torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T), int64 like tgt


def beam_step(scores: torch.Tensor, log_probs: torch.Tensor, beam_size: int):
    """Exercise 3: the beam_size best of all K*V continuations, best first.

    Returns (new_scores, beam_index, token), each of shape (beam_size,).
    """
    K, V = log_probs.shape
    # A sequence's log-probability is the sum of its tokens' log-probabilities, so extending beam
    # k by token v scores scores[k] + log_probs[k, v].
    total = scores[:, None] + log_probs  # (K, V)
    # All beams compete for the beam_size places: one topk over the K*V candidates (sorted best
    # first). Flat index i of a (K, V) grid is row i // V, column i % V.
    new_scores, flat = total.flatten().topk(beam_size)  # (beam_size,) each
    return new_scores, flat // V, flat % V  # int64 indices: beam and token
