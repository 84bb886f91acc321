"""Checks of Seq2Seq's inputs, so a wrong call fails at the boundary with a message that says the fix."""
from __future__ import annotations

import torch

from llmlab._validate_input import as_int

_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def check_config(config) -> None:
    """Raise unless a Seq2SeqConfig's sizes are positive and its special ids are distinct and fit."""
    for name in ("src_vocab_size", "tgt_vocab_size", "src_block_size", "tgt_block_size",
                 "n_layer_enc", "n_layer_dec", "n_head", "n_embd"):
        setattr(config, name, as_int(getattr(config, name), name, 1))
    specials = {"pad_id": config.pad_id, "bos_id": config.bos_id, "eos_id": config.eos_id}
    for name, value in specials.items():
        setattr(config, name, as_int(value, name, 0))
    if len(set(specials.values())) < 3:
        raise ValueError(f"pad_id, bos_id and eos_id must be three different ids, got {specials}")
    top = max(specials.values())
    if top >= min(config.src_vocab_size, config.tgt_vocab_size):
        raise ValueError(f"the special ids {specials} must be < both vocabulary sizes "
                         f"({config.src_vocab_size}, {config.tgt_vocab_size}): build the "
                         "vocabularies with the special tokens first (llmlab.date_task.CharVocab does)")


def check_ids(ids, what: str, vocab_size: int, block_size: int, device: torch.device,
              pad_id: int | None = None) -> torch.Tensor:
    """Return ids as int64, or raise unless they are (B, T) ids in range that fit block_size.

    With pad_id, also raise for a row that is all padding (an empty source has nothing to read).
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of token ids, got {type(ids).__name__}: e.g. "
                        f"torch.tensor([vocab.encode(text)])")
    if ids.dtype not in _INT_DTYPES:
        raise ValueError(f"{what} has dtype {ids.dtype} but token ids must be integers: use .long()")
    if ids.dim() != 2 or 0 in ids.shape:
        raise ValueError(f"{what} has shape {tuple(ids.shape)} but the model expects (B, T) token ids "
                         "with B, T >= 1: for one sequence add a batch dimension with .unsqueeze(0)")
    if ids.device != device:
        raise ValueError(f"{what} is on {ids.device} but the model is on {device}: use "
                         f"{what}.to({str(device)!r})")
    bad = (ids < 0) | (ids >= vocab_size)  # (B, T)
    if bad.any():
        b, t = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{what}[{b}, {t}] = {int(ids[b, t])} is not a token id in [0, {vocab_size}): "
                         "encode text with the vocabulary the model was built for")
    if ids.shape[1] > block_size:
        raise ValueError(f"{what} has {ids.shape[1]} tokens but the model reads at most {block_size} "
                         "there: shorten the input, or build the model with a larger block size")
    if pad_id is not None:
        empty = (ids == pad_id).all(dim=1)  # (B,)
        if empty.any():
            raise ValueError(f"{what} row {int(empty.nonzero()[0])} is all padding: an empty source "
                             "has nothing to translate; drop that row")
    return ids.long()


def check_targets(targets, tgt_in: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Return targets as int64, or raise unless they are ids shaped like tgt_in (-100 = ignore)."""
    if not isinstance(targets, torch.Tensor) or targets.dtype not in _INT_DTYPES:
        raise TypeError("targets must be an integer tensor of target ids (-100 where ignored)")
    if targets.shape != tgt_in.shape:
        raise ValueError(f"targets have shape {tuple(targets.shape)} but tgt_in has "
                         f"{tuple(tgt_in.shape)}: the target at position t is the token after "
                         "tgt_in[:, t], so the shapes must match (tgt_in = shift_right(targets))")
    bad = ((targets < 0) & (targets != -100)) | (targets >= vocab_size)
    if bad.any():
        raise ValueError(f"targets hold ids outside [0, {vocab_size}) other than -100 (ignored): "
                         f"e.g. {int(targets[bad][0])}")
    return targets.long()


def check_decode_args(beam_size, max_len, length_penalty, tgt_block_size: int) -> tuple[int, int, float]:
    """Return (beam_size, max_len, length_penalty) checked; max_len None -> the decoder's limit."""
    beam_size = as_int(beam_size, "beam_size", 1)
    max_len = tgt_block_size if max_len is None else as_int(max_len, "max_len", 1)
    if max_len > tgt_block_size:
        raise ValueError(f"max_len={max_len} exceeds the decoder's tgt_block_size={tgt_block_size}: "
                         f"the decoder has no position beyond it; use max_len <= {tgt_block_size}")
    if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool) \
            or not 0 <= length_penalty <= 5:
        raise ValueError(f"length_penalty must be a number in [0, 5] (0: raw log-probability, 1: "
                         f"per-token average), got {length_penalty!r}")
    return beam_size, max_len, float(length_penalty)
