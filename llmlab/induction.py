"""Induction heads: the data that reveals them, the loss at each position, and head ablation.

An induction head (Elhage et al., 2021; Olsson et al., 2022) completes a pattern seen earlier in
the context: having read "... A B ... A", it predicts B. It takes two heads in two layers. A
previous-token head (earlier layer) writes "the token before me was A" into position B; the
induction head (later layer) lets the current A search for a key whose previous token was A,
which finds B, and copies B's identity to the output.

Random segments shown twice make the effect measurable: the first copy cannot be predicted (its
loss stays near ln V), the second can, but only by looking back. ablate_heads switches heads off
to test which ones do the work: a weight map shows where a head looks, an ablation shows whether
the model needs it.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_input import as_id_tensor, as_int

__all__ = ["RepeatedSegments", "position_loss", "repeat_losses", "chance_loss", "ablate_heads",
           "ablation_effects", "head_output_norms"]


class RepeatedSegments:
    """A batch source of random tokens whose last 2l are a segment of length l shown twice.

    Each training sequence is 2L tokens (L = segment_len): fresh random tokens, then a random
    segment of length l, then the same segment again, with l drawn in min_len..L for every row.
    Varying l matters: with one fixed length a head could learn "look L back" from positions alone,
    which is not an induction head. fixed() gives the clean case for measuring: [s_1..s_L, s_1..s_L].
    Inputs are the first 2L - 1 tokens, targets the last 2L - 1 (the next token at each position).
    """

    def __init__(self, vocab_size: int, segment_len: int, min_len: int | None = None):
        self.vocab_size = as_int(vocab_size, "vocab_size", 2)
        self.segment_len = as_int(segment_len, "segment_len", 2)
        self.min_len = max(2, self.segment_len // 2) if min_len is None else as_int(min_len, "min_len", 2)
        if self.min_len > self.segment_len:
            raise ValueError(f"min_len={self.min_len} is longer than segment_len={self.segment_len}: "
                             "choose min_len <= segment_len")

    @property
    def block_size(self) -> int:
        """The model's context must hold 2L - 1 inputs."""
        return 2 * self.segment_len - 1

    def sample(self, batch_size: int, generator: torch.Generator, device=None):
        """(x, y), both (batch_size, 2L - 1): rows ending in a repeat of random length l."""
        batch_size = as_int(batch_size, "batch_size", 1)
        T = 2 * self.segment_len
        seq = torch.randint(self.vocab_size, (batch_size, T), generator=generator)  # (B, 2L)
        lengths = torch.randint(self.min_len, self.segment_len + 1, (batch_size, 1),
                                generator=generator)  # (B, 1)
        j = torch.arange(T)[None, :]  # (1, 2L)
        # The last l positions copy the l before them: position j reads j - l there, else itself.
        source = torch.where(j >= T - lengths, j - lengths, j)  # (B, 2L)
        seq = seq.gather(1, source)  # (B, 2L)
        return seq[:, :-1].to(device), seq[:, 1:].to(device)

    def fixed(self, batch_size: int, generator: torch.Generator, device=None):
        """(x, y) of the clean case, (batch_size, 2L - 1): a segment of exactly L tokens, twice."""
        batch_size = as_int(batch_size, "batch_size", 1)
        segment = torch.randint(self.vocab_size, (batch_size, self.segment_len),
                                generator=generator)  # (B, L)
        seq = torch.cat([segment, segment], dim=1)  # (B, 2L)
        return seq[:, :-1].to(device), seq[:, 1:].to(device)

    def __repr__(self) -> str:
        return (f"RepeatedSegments(vocab_size={self.vocab_size}, segment_len={self.segment_len}, "
                f"min_len={self.min_len})")


@torch.no_grad()
def position_loss(model: nn.Module, x, y) -> torch.Tensor:
    """Cross-entropy at each position, averaged over the batch: (B, T) inputs -> (T,) losses."""
    x, y = as_id_tensor(x, "x").long(), as_id_tensor(y, "y").long()
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must be (B, T) id tensors of one shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}: e.g. the pair RepeatedSegments.sample returns")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        logits = model(x.to(device)).logits  # (B, T, V)
    finally:
        model.train(was_training)
    loss = F.cross_entropy(logits.transpose(1, 2), y.to(device), reduction="none")  # (B, T)
    return loss.mean(dim=0).cpu()


def repeat_losses(losses) -> dict[str, float]:
    """Mean loss on the first copy and on the repeat, from position_loss's (2L - 1,) losses on fixed().

    The first L - 1 targets are fresh random tokens; the last L are copies. Chance is ln V.
    """
    losses = torch.as_tensor(losses, dtype=torch.float32)
    if losses.dim() != 1 or len(losses) < 3 or len(losses) % 2 == 0:
        raise ValueError(f"losses must be position_loss's (2L - 1,) values on RepeatedSegments "
                         f"(an odd length >= 3), got shape {tuple(losses.shape)}")
    L = (len(losses) + 1) // 2
    first, repeat = losses[:L - 1], losses[L - 1:]
    return {"first copy": float(first.mean()), "repeat": float(repeat.mean()),
            "gain": float(first.mean() - repeat.mean())}


def _head_list(model: nn.Module, heads) -> list[tuple[int, int]]:
    """Check heads against the model's sizes: a list of (layer, head) pairs."""
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    if blocks is None:
        raise TypeError(f"ablate_heads needs a llmlab GPT (model.transformer.h), got "
                        f"{type(model).__name__}")
    n_layer, n_head = len(blocks), blocks[0].attn.config.n_heads
    if isinstance(heads, tuple) and len(heads) == 2 and all(isinstance(v, int) for v in heads):
        heads = [heads]  # one (layer, head) pair
    checked = []
    for pair in heads:
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
            raise ValueError(f"each head is a (layer, head) pair of ints, got {pair!r}: e.g. "
                             "ablate_heads(model, [(1, 2)])")
        layer, head = pair
        if not (0 <= layer < n_layer and 0 <= head < n_head):
            raise ValueError(f"head {tuple(pair)} does not exist: this model has layers 0..{n_layer - 1} "
                             f"and heads 0..{n_head - 1}")
        checked.append((layer, head))
    return checked


@contextlib.contextmanager
def ablate_heads(model: nn.Module, heads):
    """Within the with-block, the listed (layer, head) pairs write nothing to the residual stream.

    Zero ablation: each head's output (its slice of the input to attn.c_proj) is set to 0, on the
    fused and the explicit attention path alike. The hooks are removed on exit, even after an error.
    """
    by_layer: dict[int, list[int]] = {}
    for layer, head in _head_list(model, heads):
        by_layer.setdefault(layer, []).append(head)
    handles = []

    def hook_for(attn, silenced):
        H, hd = attn.config.n_heads, attn.config.head_dim

        def hook(module, args):
            (y,) = args  # (B, T, C): the heads' outputs side by side, before the projection
            y = y.view(*y.shape[:-1], H, hd).clone()  # (B, T, H, hd)
            y[..., silenced, :] = 0.0
            return (y.view(*y.shape[:-2], H * hd),)  # (B, T, C)
        return hook

    try:
        for layer, silenced in by_layer.items():
            attn = model.transformer.h[layer].attn
            handles.append(attn.c_proj.register_forward_pre_hook(hook_for(attn, silenced)))
        yield model
    finally:
        for handle in handles:
            handle.remove()


def chance_loss(vocab_size: int) -> float:
    """The loss of a uniform guess over vocab_size tokens: ln V."""
    return math.log(as_int(vocab_size, "vocab_size", 1))



def ablation_effects(model: nn.Module, x, y) -> torch.Tensor:
    """(L, H): how much the loss on the repeat rises when each head alone is ablated.

    x, y come from RepeatedSegments.fixed (the repeat is the last L targets); 0 means the model
    does not need the head for this task, a large value means it does.
    """
    base = repeat_losses(position_loss(model, x, y))["repeat"]
    blocks = model.transformer.h
    effects = torch.zeros(len(blocks), blocks[0].attn.config.n_heads)  # (L, H)
    for layer in range(effects.shape[0]):
        for head in range(effects.shape[1]):
            with ablate_heads(model, [(layer, head)]):
                effects[layer, head] = repeat_losses(position_loss(model, x, y))["repeat"] - base
    return effects


@torch.no_grad()
def head_output_norms(model: nn.Module, x) -> torch.Tensor:
    """(L, H): the mean length of what each head writes into the residual stream, per position.

    A head's write is its output slice times its slice of c_proj's weight. Attention weights say
    where a head looks; this says how much it then changes (Kobayashi et al., 2020).
    """
    x = as_id_tensor(x, "x").long()
    _head_list(model, [])  # a llmlab GPT?
    captured: dict[int, torch.Tensor] = {}
    handles = []
    for layer, block in enumerate(model.transformer.h):
        def keep(module, args, layer=layer):
            captured[layer] = args[0].detach()  # (B, T, C) before the projection
        handles.append(block.attn.c_proj.register_forward_pre_hook(keep))
    was_training = model.training
    model.eval()
    try:
        model(x.to(next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    rows = []
    for layer, block in enumerate(model.transformer.h):
        H, hd = block.attn.config.n_heads, block.attn.config.head_dim
        y = captured[layer].view(*captured[layer].shape[:-1], H, hd)  # (B, T, H, hd)
        w = block.attn.c_proj.weight.view(-1, H, hd)  # (C, H, hd): column block h reads head h
        writes = torch.einsum("bthd,chd->bthc", y, w)  # (B, T, H, C): each head's own update
        rows.append(writes.norm(dim=-1).mean(dim=(0, 1)))  # (H,)
    return torch.stack(rows).cpu()  # (L, H)
