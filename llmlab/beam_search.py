"""Decoding an encoder–decoder: greedy and beam search, with the encoder run once per source.

Greedy decoding takes the single most probable next token at every step. Beam search keeps the
beam_size most probable partial outputs instead: at each step every beam is extended by every
token, and the best beam_size of those candidates survive (scored by their total log-probability).
That can find an output greedy misses, when a less likely first token leads to a much more likely
whole, but it is no guarantee: the best sequence can still fall out of the beam. A finished output
(one that produced EOS) is kept unchanged. At the end the outputs are ranked by log-probability
divided by length ** length_penalty (Wu et al., 2016, use a similar penalty): raw sums favour short
outputs, since every token adds a negative log-probability.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from llmlab._validate_seq2seq import check_decode_args as _check_decode_args
from llmlab.seq2seq import Encoded, Seq2Seq, pad_batch, shift_right

__all__ = ["Hypothesis", "greedy_decode", "beam_search", "sequence_log_prob", "translate", "Alignment",
           "alignment"]


class Hypothesis(NamedTuple):
    """One decoded output: its token ids (EOS not included) and its log-probability."""

    tokens: list[int]
    log_prob: float  # sum of the log-probabilities of the tokens and of the EOS, if finished
    finished: bool  # False: max_len was reached before the model produced EOS


def _log_probs(logits: torch.Tensor, config) -> torch.Tensor:
    """Log-softmax over the tokens an output may contain: never PAD or BOS, which no target holds."""
    logits = logits.float().clone()
    logits[..., [config.pad_id, config.bos_id]] = float("-inf")
    return torch.log_softmax(logits, dim=-1)


def _next_log_probs(model: Seq2Seq, encoded: Encoded, tgt_in: torch.Tensor) -> torch.Tensor:
    """Log-probabilities (N, V) of the token after each row of tgt_in (N, t)."""
    logits, _, _ = model.decode(tgt_in, encoded)  # (N, t, V): the whole prefix, no decoder cache
    return _log_probs(logits[:, -1], model.config)  # (N, V)


def _check_model(model) -> None:
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"decoding needs a llmlab.seq2seq.Seq2Seq model, got {type(model).__name__}")


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: torch.Tensor, max_len: int | None = None) -> list[Hypothesis]:
    """The greedy output for each source row of src (B, S): argmax at every step, up to EOS or max_len."""
    _check_model(model)
    _, max_len, _ = _check_decode_args(1, max_len, 0.0, model.config.tgt_block_size)
    c, was_training = model.config, model.training
    model.eval()
    try:
        encoded = model.encode(src)  # once: every step reads the same memory
        B = src.shape[0]
        seqs = torch.full((B, 1), c.bos_id, dtype=torch.long, device=model.device)  # (B, 1)
        log_prob = torch.zeros(B, device=model.device)
        done = torch.zeros(B, dtype=torch.bool, device=model.device)
        for _ in range(max_len):
            logp = _next_log_probs(model, encoded, seqs)  # (B, V)
            tok = logp.argmax(dim=-1)  # (B,)
            log_prob += torch.where(done, 0.0, logp.gather(1, tok[:, None])[:, 0])
            tok = torch.where(done, c.pad_id, tok)  # a finished row only pads
            seqs = torch.cat([seqs, tok[:, None]], dim=1)  # (B, t + 1)
            done |= tok == c.eos_id
            if done.all():
                break
    finally:
        model.train(was_training)
    return [_hypothesis(seqs[b, 1:].tolist(), float(log_prob[b]), c) for b in range(B)]


def _hypothesis(ids: list[int], log_prob: float, config) -> Hypothesis:
    """Cut ids at the first EOS (dropping it and the padding after it)."""
    if config.eos_id in ids:
        return Hypothesis(ids[:ids.index(config.eos_id)], log_prob, True)
    return Hypothesis(ids, log_prob, False)


@torch.no_grad()
def beam_search(model: Seq2Seq, src: torch.Tensor, beam_size: int = 4, max_len: int | None = None,
                length_penalty: float = 1.0) -> list[Hypothesis]:
    """The best output for each source row of src (B, S) found by a beam of beam_size hypotheses."""
    _check_model(model)
    K, max_len, alpha = _check_decode_args(beam_size, max_len, length_penalty,
                                           model.config.tgt_block_size)
    c, was_training = model.config, model.training
    model.eval()
    try:
        encoded = model.encode(src)  # (B, S, C), once
        B, dev = src.shape[0], model.device
        beams = Encoded(encoded.memory.repeat_interleave(K, dim=0),  # (B*K, S, C): one copy per beam
                        encoded.mask.repeat_interleave(K, dim=0), None)  # (B*K, 1, 1, S)
        seqs = torch.full((B, K, 1), c.bos_id, dtype=torch.long, device=dev)  # (B, K, t)
        scores = torch.full((B, K), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # one live beam at the start, else K copies of BOS fill the beam
        finished = torch.zeros(B, K, dtype=torch.bool, device=dev)
        lengths = torch.zeros(B, K, device=dev)  # tokens produced, EOS included
        for _ in range(max_len):
            V = c.tgt_vocab_size
            logp = _next_log_probs(model, beams, seqs.view(B * K, -1)).view(B, K, V)  # (B, K, V)
            # A finished beam has one continuation, padding, at no cost: it survives unchanged.
            stay = torch.full((V,), float("-inf"), device=dev)
            stay[c.pad_id] = 0.0
            logp = torch.where(finished[..., None], stay, logp)  # (B, K, V)
            candidates = (scores[..., None] + logp).view(B, K * V)  # (B, K*V): every beam x token
            scores, flat = candidates.topk(K, dim=1)  # (B, K), best first
            beam, tok = flat // V, flat % V  # which beam each survivor extends, with which token
            seqs = seqs.gather(1, beam[..., None].expand(-1, -1, seqs.shape[-1]))  # (B, K, t)
            seqs = torch.cat([seqs, tok[..., None]], dim=-1)  # (B, K, t + 1)
            was_finished = finished.gather(1, beam)  # (B, K)
            lengths = lengths.gather(1, beam) + (~was_finished).float()
            finished = was_finished | (tok == c.eos_id)
            if finished.all():
                break
        # Rank by length-normalised log-probability; prefer finished outputs where a row has one.
        rank = scores / lengths.clamp(min=1) ** alpha  # (B, K)
        has_finished = finished.any(dim=1, keepdim=True)  # (B, 1)
        rank = torch.where(finished | ~has_finished, rank, float("-inf"))
        best = rank.argmax(dim=1)  # (B,)
    finally:
        model.train(was_training)
    return [_hypothesis(seqs[b, int(best[b]), 1:].tolist(), float(scores[b, best[b]]), c)
            for b in range(B)]


@torch.no_grad()
def sequence_log_prob(model: Seq2Seq, src: torch.Tensor, outputs: list[list[int]]) -> torch.Tensor:
    """The model's log-probability (B,) of each output (ids, EOS included) given its source row.

    Computed teacher-forced, in one pass; decoding scores the same tokens step by step.
    """
    _check_model(model)
    was_training = model.training
    model.eval()
    try:
        targets = pad_batch([list(o) for o in outputs], -100).to(model.device)  # (B, T), -100 = padding
        tgt_in = shift_right(targets.masked_fill(targets == -100, model.config.pad_id),
                             model.config.bos_id)  # (B, T)
        logp = _log_probs(model(src, tgt_in).logits, model.config)  # (B, T, V)
        real = targets != -100  # (B, T)
        picked = logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (B, T)
        return torch.where(real, picked, 0.0).sum(dim=1)  # (B,); -inf * 0 would be NaN
    finally:
        model.train(was_training)


def _source_ids(model: Seq2Seq, src_vocab, texts: list[str]) -> list[list[int]]:
    """Each text as source ids with EOS, or a clear error before any decoding starts."""
    ids = [src_vocab.encode(t) for t in texts]  # raises for empty text and unknown characters
    limit = model.config.src_block_size
    for text, row in zip(texts, ids):
        if len(row) > limit:
            raise ValueError(f"{text!r} is {len(row) - 1} characters (+ EOS) but the encoder reads at "
                             f"most {limit} tokens: shorten it")
    return ids


def translate(model: Seq2Seq, src_vocab, tgt_vocab, texts, beam_size: int = 1,
              length_penalty: float = 1.0, batch_size: int = 256) -> list[str]:
    """Decode each source text (a str or a list of str) to target text, greedy when beam_size=1."""
    _check_model(model)
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    if not texts:
        raise ValueError("translate needs at least one source text")
    ids = _source_ids(model, src_vocab, texts)
    out = []
    for start in range(0, len(ids), batch_size):
        src = pad_batch(ids[start:start + batch_size], model.config.pad_id).to(model.device)  # (b, S)
        hyps = greedy_decode(model, src) if beam_size == 1 else \
            beam_search(model, src, beam_size, length_penalty=length_penalty)
        out += [tgt_vocab.decode(h.tokens) for h in hyps]
    return out[0] if single else out


class Alignment(NamedTuple):
    """A source, the model's output for it, and the cross-attention each output token used."""

    source_tokens: list[str]  # the source's characters, then "</s>": the keys
    output_tokens: list[str]  # the output's characters, then "</s>" if it finished: the queries
    output: str  # the output text
    cross_attention: torch.Tensor  # (L_dec, H, T_out, S): row t is the step that wrote output token t


@torch.no_grad()
def alignment(model: Seq2Seq, src_vocab, tgt_vocab, text: str, beam_size: int = 1) -> Alignment:
    """Decode text, then re-read the output teacher-forced to get every layer's cross-attention."""
    _check_model(model)
    src_ids = _source_ids(model, src_vocab, [text])[0]
    src = torch.tensor([src_ids], device=model.device)  # (1, S)
    hyp = (greedy_decode(model, src) if beam_size == 1 else beam_search(model, src, beam_size))[0]
    targets = hyp.tokens + ([model.config.eos_id] if hyp.finished else [])  # what the decoder wrote
    tgt_in = shift_right(torch.tensor([targets], device=model.device), model.config.bos_id)  # (1, T)
    was_training = model.training
    model.eval()
    try:
        cross = model(src, tgt_in, return_attention=True).cross_attention  # (L, 1, H, T, S)
    finally:
        model.train(was_training)
    return Alignment([src_vocab.token(i) for i in src_ids], [tgt_vocab.token(i) for i in targets],
                     tgt_vocab.decode(hyp.tokens), cross[:, 0].cpu())  # (L, H, T, S)
