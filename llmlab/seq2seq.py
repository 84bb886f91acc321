"""An encoder–decoder transformer (Vaswani et al., 2017): read a whole source, write a target.

    src (B, S)    -> src_wte + src_wpe -> Block(causal=False) x n_layer_enc -> ln_enc -> memory (B, S, C)
    tgt_in (B, T) -> tgt_wte + tgt_wpe -> DecoderBlock(memory) x n_layer_dec -> ln_f -> lm_head (B, T, V)

Who attends to what: every source token attends to every real source token, both ways (the encoder
is not causal); each target position attends causally to the target tokens before it and, through
cross-attention, to every real source token (queries from the decoder, keys and values from the
encoder's memory). Source padding is hidden by a padding mask on the keys of both. Training feeds
the decoder the true target shifted right by one (teacher forcing); decoding (llmlab.beam_search)
runs the encoder once and feeds the decoder its own outputs.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_attention import as_flag as _as_flag
from llmlab._validate_input import as_int
from llmlab._validate_seq2seq import check_config as _check_config
from llmlab._validate_seq2seq import check_ids as _check_ids
from llmlab._validate_seq2seq import check_targets as _check_targets
from llmlab.gpt import gpt2_init
from llmlab.positional import LearnedPositionalEmbedding
from llmlab.transformer import Block, BlockConfig, DecoderBlock, LayerNorm

__all__ = ["Seq2SeqConfig", "Seq2SeqOutput", "Encoded", "Seq2Seq", "shift_right", "pad_batch",
           "PairBatches", "seq2seq_loss"]


@dataclass
class Seq2SeqConfig:
    """Size of an encoder–decoder; the defaults suit lesson 08's dates (about 0.2 M parameters)."""

    src_vocab_size: int
    tgt_vocab_size: int
    src_block_size: int = 40  # the longest source the encoder reads, EOS included
    tgt_block_size: int = 12  # the longest decoder input (BOS + target, without its EOS)
    n_layer_enc: int = 2
    n_layer_dec: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        _check_config(self)
        BlockConfig(self.n_embd, self.n_head, self.dropout, self.bias)  # n_head | n_embd, dropout


class Seq2SeqOutput(NamedTuple):
    """What Seq2Seq.forward returns; the attention fields are None unless return_attention=True."""

    logits: torch.Tensor  # (B, T, tgt_vocab_size): scores for the target token after each position
    loss: torch.Tensor | None  # mean cross-entropy over the real target tokens
    encoder_attention: torch.Tensor | None  # (L_enc, B, H, S, S)
    decoder_attention: torch.Tensor | None  # (L_dec, B, H, T, T): causal self-attention
    cross_attention: torch.Tensor | None  # (L_dec, B, H, T, S): which source token each target reads


class Encoded(NamedTuple):
    """The encoder's result, computed once per source and read by every decoding step."""

    memory: torch.Tensor  # (B, S, C)
    mask: torch.Tensor  # (B, 1, 1, S): True at real source tokens
    attention: torch.Tensor | None  # (L_enc, B, H, S, S)


def shift_right(tgt: torch.Tensor, bos_id: int) -> torch.Tensor:
    """The decoder input for teacher forcing: BOS, then tgt without its last token; (B, T) -> (B, T)."""
    bos = torch.full_like(tgt[:, :1], bos_id)  # (B, 1)
    return torch.cat([bos, tgt[:, :-1]], dim=1)  # (B, T): position t reads tokens < t, predicts tgt[:, t]


class Seq2Seq(nn.Module):
    """A pre-norm encoder–decoder transformer; see Seq2SeqConfig for its size."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"Seq2Seq takes a Seq2SeqConfig, not {type(config).__name__}: e.g. "
                            "Seq2Seq(Seq2SeqConfig(src_vocab_size=70, tgt_vocab_size=14))")
        self.config = c = config
        block = BlockConfig(c.n_embd, c.n_head, c.dropout, c.bias)
        self.src_wte = nn.Embedding(c.src_vocab_size, c.n_embd)
        self.src_wpe = LearnedPositionalEmbedding(c.src_block_size, c.n_embd)
        self.tgt_wte = nn.Embedding(c.tgt_vocab_size, c.n_embd)
        self.tgt_wpe = LearnedPositionalEmbedding(c.tgt_block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList([Block(block, causal=False) for _ in range(c.n_layer_enc)])
        self.ln_enc = LayerNorm(c.n_embd, bias=c.bias)  # pre-norm blocks leave the stream unnormalised
        self.decoder = nn.ModuleList([DecoderBlock(block) for _ in range(c.n_layer_dec)])
        self.ln_f = LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.tgt_vocab_size, bias=False)
        self.lm_head.weight = self.tgt_wte.weight  # tied, as in the 2017 Transformer and GPT-2
        gpt2_init(self, c.n_layer_enc + c.n_layer_dec)  # every block writes to a residual stream

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def encode(self, src: torch.Tensor, return_attention: bool = False) -> Encoded:
        """Run the encoder once over src (B, S), right-padded with pad_id; every token sees all real ones."""
        c = self.config
        src = _check_ids(src, "src", c.src_vocab_size, c.src_block_size, self.device, pad_id=c.pad_id)
        return_attention = _as_flag(return_attention, "return_attention")
        mask = (src != c.pad_id)[:, None, None, :]  # (B, 1, 1, S): keys only, over heads and queries
        x = self.drop(self.src_wte(src) + self.src_wpe(src.shape[1]))  # (B, S, C)
        weights = []
        for block in self.encoder:
            if return_attention:
                x, w = block.with_weights(x, mask=mask)  # w: (B, H, S, S)
                weights.append(w)
            else:
                x = block(x, mask=mask)  # (B, S, C)
        return Encoded(self.ln_enc(x), mask, torch.stack(weights) if weights else None)

    def decode(self, tgt_in: torch.Tensor, encoded: Encoded, return_attention: bool = False):
        """Logits (B, T, V) for tgt_in (B, T) given the encoder's result; and the attention (or None).

        Right padding in tgt_in needs no mask: the causal mask already keeps every real position
        from reading the padding after it, and the loss ignores the padded positions.
        """
        c = self.config
        tgt_in = _check_ids(tgt_in, "tgt_in", c.tgt_vocab_size, c.tgt_block_size, self.device)
        if not isinstance(encoded, Encoded) or encoded.memory.shape[0] != tgt_in.shape[0]:
            raise ValueError("encoded must be model.encode(src) for a src with the same batch size "
                             f"as tgt_in ({tgt_in.shape[0]})")
        x = self.drop(self.tgt_wte(tgt_in) + self.tgt_wpe(tgt_in.shape[1]))  # (B, T, C)
        self_w, cross_w = [], []
        for block in self.decoder:
            if return_attention:
                x, s, w = block.with_weights(x, encoded.memory, encoded.mask)  # (B, H, T, T/S)
                self_w.append(s)
                cross_w.append(w)
            else:
                x = block(x, encoded.memory, encoded.mask)  # (B, T, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if not return_attention:
            return logits, None, None
        return logits, torch.stack(self_w), torch.stack(cross_w)  # (L, B, H, T, T), (L, B, H, T, S)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, targets: torch.Tensor | None = None,
                return_attention: bool = False) -> Seq2SeqOutput:
        """Teacher-forced logits for tgt_in (B, T) given src (B, S); the loss if targets (B, T) are given.

        Without return_attention the blocks use PyTorch's fused attention (fast training); with it,
        the explicit path, which also returns every layer's weights.
        """
        encoded = self.encode(src, return_attention)
        logits, self_w, cross_w = self.decode(tgt_in, encoded, return_attention)
        loss = None
        if targets is not None:
            targets = _check_targets(targets, tgt_in, self.config.tgt_vocab_size)  # (B, T)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   ignore_index=-100)  # padding positions carry -100
        return Seq2SeqOutput(logits, loss, encoded.attention, self_w, cross_w)

    def num_parameters(self) -> int:
        """Parameter count, the tied tgt_wte / lm_head counted once."""
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict:
        """The config as a plain, JSON-able dict; Seq2Seq(Seq2SeqConfig(**d)) rebuilds the model."""
        return dataclasses.asdict(self.config)


def pad_batch(rows: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad lists of ids to the longest one with value: (B, T_max) int64."""
    out = torch.full((len(rows), max(len(r) for r in rows)), value, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class PairBatches:
    """(source ids, target ids) pairs as training batches: ((src, tgt_in), targets), right-padded.

    Each target ends with EOS (the model must learn where to stop); targets carry -100 at padding
    so the loss ignores it, and tgt_in = shift_right(targets) with padding instead of -100.
    """

    def __init__(self, pairs, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2):
        self.pairs = [(list(s), list(t)) for s, t in pairs]
        self.pad_id, self.bos_id = as_int(pad_id, "pad_id", 0), as_int(bos_id, "bos_id", 0)
        eos_id = as_int(eos_id, "eos_id", 0)
        if not self.pairs:
            raise ValueError("PairBatches needs at least one (source ids, target ids) pair")
        for i, (s, t) in enumerate(self.pairs):
            if not s or not t or t[-1] != eos_id or s.count(self.pad_id):
                raise ValueError(f"pair {i} is not (source ids, target ids ending with EOS={eos_id}) "
                                 f"without padding: encode both with CharVocab.encode(text), which "
                                 "adds the EOS")

    def __len__(self) -> int:
        return len(self.pairs)

    def _collate(self, rows: list[int], device=None):
        """((src (B, S), tgt_in (B, T)), targets (B, T)) for the pairs at rows."""
        src = pad_batch([self.pairs[i][0] for i in rows], self.pad_id)  # (B, S)
        targets = pad_batch([self.pairs[i][1] for i in rows], -100)  # (B, T)
        tgt_in = shift_right(targets.masked_fill(targets == -100, self.pad_id), self.bos_id)  # (B, T)
        return (src.to(device), tgt_in.to(device)), targets.to(device)

    def sample(self, batch_size: int, generator: torch.Generator, device=None):
        """batch_size random pairs (with replacement), collated."""
        rows = torch.randint(len(self.pairs), (batch_size,), generator=generator).tolist()
        return self._collate(rows, device)

    def batches(self, batch_size: int = 256, device=None):
        """Every pair once, in order, collated in batches (for evaluation)."""
        for start in range(0, len(self.pairs), batch_size):
            yield self._collate(list(range(start, min(start + batch_size, len(self.pairs)))), device)


def seq2seq_loss(model: Seq2Seq, inputs, targets: torch.Tensor) -> torch.Tensor:
    """The training loss for llmlab.training.train: cross-entropy of the teacher-forced logits."""
    src, tgt_in = inputs
    return model(src, tgt_in, targets).loss
