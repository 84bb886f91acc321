"""A classifier on top of a pretrained GPT: pool one state per sentence, then a linear head.

    ids, lengths = encode_batch(tokenizer, sentences, block_size)  # (B, T) right-padded, (B,)
    h, _ = gpt.features(ids)                                       # (B, T, C)
    logits = head(pool(h, lengths))                                # (B, n_classes)

Right padding needs no attention mask in a causal model: position t attends only to positions
0..t, so every real token (t < length) sees real tokens only, and the pads after it cannot change
it. The last real token (position length - 1) has read the whole sentence; that is the state GPT-1
classified from (Radford et al., 2018). Mean pooling averages the real positions instead.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_input import as_int, check_text
from llmlab.batches import TensorExamples
from llmlab.gpt import GPT

__all__ = ["encode_batch", "last_token_pool", "mean_pool", "GPTClassifier", "SentenceBatches",
           "classification_loss", "set_trainable", "count_trainable", "accuracy",
           "confusion_matrix", "predict_proba", "occlusion", "accuracy_interval", "ClassifierConfig",
           "sentence_attention", "frozen_features", "correct", "mcnemar_p", "PARTS", "POOLINGS"]

POOLINGS = ("last", "mean")
PARTS = ("head", "last_block", "all_but_embeddings", "all")  # what set_trainable can leave trainable


def encode_batch(tokenizer, sentences, block_size: int, truncate: bool = False, pad_id: int = 0):
    """Token ids of sentences, right-padded with pad_id to the longest: (B, T) ids and (B,) lengths."""
    if isinstance(sentences, str):
        raise TypeError("sentences must be a list of str, got one str: wrap it as [sentence]")
    encoded = []
    for i, s in enumerate(sentences):
        ids = tokenizer.encode(check_text(s, f"sentences[{i}]"))
        if not ids:
            raise ValueError(f"sentences[{i}] is empty: a classifier needs at least one token to "
                             "read; drop empty sentences first")
        if len(ids) > block_size:
            if not truncate:
                raise ValueError(f"sentences[{i}] has {len(ids)} tokens but the model reads at most "
                                 f"block_size={block_size}: pass truncate=True to keep its first "
                                 f"{block_size} tokens, or shorten it")
            ids = ids[:block_size]
        encoded.append(ids)
    if not encoded:
        raise ValueError("sentences is empty: give at least one sentence")
    lengths = torch.tensor([len(ids) for ids in encoded])  # (B,)
    batch = torch.full((len(encoded), int(lengths.max())), pad_id, dtype=torch.long)  # (B, T)
    for row, ids in enumerate(encoded):
        batch[row, :len(ids)] = torch.tensor(ids)
    return batch, lengths


def _check_lengths(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """lengths as a (B,) int64 tensor on h's device with 1 <= length <= T, or raise."""
    lengths = torch.as_tensor(lengths, device=h.device)
    B, T = h.shape[:2]
    if lengths.shape != (B,) or lengths.is_floating_point():
        raise ValueError(f"lengths must be {B} integers (one per sentence), got shape "
                         f"{tuple(lengths.shape)} and dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must lie in 1..{T} (the padded length), got "
                         f"{int(lengths.min())}..{int(lengths.max())}")
    return lengths.long()


def last_token_pool(h: torch.Tensor, lengths) -> torch.Tensor:
    """The state of each sentence's last real token: h (B, T, C) -> (B, C)."""
    lengths = _check_lengths(h, lengths)
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[-1])  # (B, 1, C)
    return h.gather(1, index).squeeze(1)  # (B, C)


def mean_pool(h: torch.Tensor, lengths) -> torch.Tensor:
    """The mean of each sentence's real-token states: h (B, T, C) -> (B, C); pads are left out."""
    lengths = _check_lengths(h, lengths)
    real = torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]  # (B, T)
    return (h * real[..., None]).sum(1) / lengths[:, None].to(h.dtype)  # (B, C)


@dataclass
class ClassifierConfig:
    """How to classify from a GPT: number of classes, pooling, dropout before the head."""

    n_classes: int = 2
    pooling: str = "last"
    dropout: float = 0.0

    def __post_init__(self):
        self.n_classes = as_int(self.n_classes, "ClassifierConfig.n_classes", 2)
        if self.pooling not in POOLINGS:
            raise ValueError(f"ClassifierConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")


class GPTClassifier(nn.Module):
    """A pretrained GPT body (its lm_head unused) + pooling + a linear classification head."""

    def __init__(self, gpt: GPT, config: ClassifierConfig | None = None):
        super().__init__()
        if not isinstance(gpt, GPT):
            raise TypeError(f"GPTClassifier wraps an llmlab GPT, got {type(gpt).__name__}")
        self.config = config or ClassifierConfig()
        self.gpt = gpt
        self.drop = nn.Dropout(self.config.dropout)
        self.head = nn.Linear(gpt.config.n_embd, self.config.n_classes)
        nn.init.normal_(self.head.weight, std=0.02)  # small: the first predictions are near chance
        nn.init.zeros_(self.head.bias)

    @property
    def vocab_size(self) -> int:
        """The token ids the body reads (its tokenizer's vocab_size)."""
        return self.gpt.config.vocab_size

    @property
    def block_size(self) -> int:
        """The longest sentence, in tokens, the body reads."""
        return self.gpt.config.block_size

    def pooled(self, idx: torch.Tensor, lengths) -> torch.Tensor:
        """One state per sentence, (B, C), chosen by config.pooling."""
        h, _ = self.gpt.features(idx)  # (B, T, C)
        pool = last_token_pool if self.config.pooling == "last" else mean_pool
        return pool(h, lengths)

    def forward(self, idx: torch.Tensor, lengths) -> torch.Tensor:
        """Class logits (B, n_classes) for right-padded ids (B, T) with real lengths (B,)."""
        return self.head(self.drop(self.pooled(idx, lengths)))


def classification_loss(model: nn.Module, inputs, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of model(*inputs) against labels: the loss_fn for llmlab.training.train."""
    return F.cross_entropy(model(*inputs), labels)


class SentenceBatches:
    """Random batches of labelled sentences for train(): ((ids, lengths), labels) on a device.

    A batch is padded to its longest sentence, so mixing a 5-token and a 100-token sentence wastes
    95 % of the short one's compute. With bucket=True (the default) each batch is drawn from
    sentences of similar length: the sentences are sorted by length into equal buckets of at least
    4 batches' worth, one sentence is drawn at random and the batch is drawn from its bucket.
    Every sentence is still equally likely to be drawn; only which sentences share a batch changes.
    """

    def __init__(self, tokenizer, pairs, block_size: int, n_classes: int = 2, truncate: bool = True,
                 bucket: bool = True):
        pairs = list(pairs)
        labels = [y for _, y in pairs]
        bad = [y for y in labels if isinstance(y, bool) or not isinstance(y, int)
               or not 0 <= y < n_classes]
        if bad:
            raise ValueError(f"labels must be ints from 0 to {n_classes - 1}, got {bad[0]!r}: "
                             "map your labels to class numbers first")
        self.ids, self.lengths = encode_batch(tokenizer, [s for s, _ in pairs], block_size,
                                              truncate=truncate)  # (N, T), (N,)
        self.labels = torch.tensor(labels)  # (N,)
        self.bucket = bool(bucket)
        # stable: equal lengths keep the data's order, so batches() is the same on every machine
        self.by_length = torch.argsort(self.lengths, stable=True)  # (N,) shortest first
        self.vocab_size, self.block_size = tokenizer.vocab_size, block_size  # checked by train()

    def __len__(self) -> int:
        return len(self.labels)

    def _rows(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """batch_size random rows; with bucketing, all from the bucket of one random sentence."""
        n = len(self.labels)
        if not self.bucket:
            return torch.randint(n, (batch_size,), generator=generator)  # (B,)
        # The length order is cut into n_buckets equal parts of at least 4 batches each. The anchor
        # lands in a bucket with probability size / n and each of its rows is then drawn with
        # probability 1 / size: every sentence has the same chance 1 / n, whatever its length.
        n_buckets = max(1, n // (4 * batch_size))
        rank = int(torch.randint(n, (1,), generator=generator))  # the anchor's place by length
        bounds = [b * n // n_buckets for b in range(n_buckets + 1)]  # bucket b: bounds[b]..[b+1]
        bucket = bisect.bisect_right(bounds, rank) - 1
        start, stop = bounds[bucket], bounds[bucket + 1]
        picks = torch.randint(start, stop, (batch_size,), generator=generator)  # (B,)
        return self.by_length[picks]

    def sample(self, batch_size: int, generator: torch.Generator, device=None):
        """batch_size random sentences, trimmed to the longest of them."""
        rows = self._rows(batch_size, generator)  # (B,)
        lengths = self.lengths[rows]
        ids = self.ids[rows, :int(lengths.max())]  # (B, T_batch)
        return (ids.to(device), lengths.to(device)), self.labels[rows].to(device)

    @property
    def batch_order(self) -> torch.Tensor:
        """The rows of the data in the order batches() yields them (shortest first)."""
        return self.by_length

    def batches(self, batch_size: int = 64):
        """Every sentence once, shortest first: ((ids, lengths), labels) batches for evaluation."""
        for start in range(0, len(self.labels), batch_size):
            rows = self.by_length[start:start + batch_size]  # (B,)
            lengths = self.lengths[rows]
            yield (self.ids[rows, :int(lengths.max())], lengths), self.labels[rows]


def _check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")
    return part


def set_trainable(model: GPTClassifier, part: str) -> GPTClassifier:
    """Freeze everything but part: "head", "last_block" (+ ln_f + head), "all_but_embeddings", "all"."""
    _check_part(part)
    gpt = model.gpt
    for p in model.parameters():
        p.requires_grad_(part == "all")
    trainable = [model.head]
    if part in ("last_block", "all_but_embeddings"):
        trainable += [gpt.transformer.h[-1], gpt.transformer.ln_f]
    if part == "all_but_embeddings":
        trainable += list(gpt.transformer.h)
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)
    return model


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied table is counted once."""
    params = list({id(p): p for p in model.parameters()}.values())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


@torch.no_grad()
def _in_data_order(values: torch.Tensor, data) -> torch.Tensor:
    """Rows collected from data.batches() put back in the data's own order (the pairs given)."""
    order = getattr(data, "batch_order", None)  # SentenceBatches reorders; TensorExamples does not
    if order is None:
        return values
    out = torch.empty_like(values)
    out[order] = values
    return out


def _predictions(model: nn.Module, data, batch_size: int = 64):
    """Predicted and true labels of every example in data, in data order, in eval mode (restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    preds, trues = [], []
    try:
        for inputs, labels in data.batches(batch_size):
            inputs = inputs if isinstance(inputs, (tuple, list)) else (inputs,)
            preds.append(model(*(t.to(device) for t in inputs)).argmax(-1).cpu())
            trues.append(labels)
    finally:
        model.train(was_training)
    return _in_data_order(torch.cat(preds), data), _in_data_order(torch.cat(trues), data)


@torch.no_grad()
def frozen_features(model: GPTClassifier, data: SentenceBatches, batch_size: int = 64) -> TensorExamples:
    """Every sentence's pooled state (N, C) from the body in eval mode, with its label, in data order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, labels = [], []
    try:
        for (ids, lengths), y in data.batches(batch_size):
            feats.append(model.pooled(ids.to(device), lengths.to(device)).cpu())  # (B, C)
            labels.append(y)
    finally:
        model.train(was_training)
    return TensorExamples(_in_data_order(torch.cat(feats), data),
                          _in_data_order(torch.cat(labels), data))


def accuracy(model: nn.Module, data: SentenceBatches) -> float:
    """The share of sentences in data that the model labels correctly."""
    pred, true = _predictions(model, data)
    return (pred == true).float().mean().item()


def correct(model: nn.Module, data) -> torch.Tensor:
    """Whether each example of data is labelled right (N,) bool, in the data's own order."""
    pred, true = _predictions(model, data)
    return pred == true


def confusion_matrix(model: nn.Module, data: SentenceBatches, n_classes: int = 2) -> torch.Tensor:
    """Counts (n_classes, n_classes): row = true label, column = predicted label."""
    pred, true = _predictions(model, data)
    return torch.bincount(true * n_classes + pred, minlength=n_classes ** 2).view(n_classes, n_classes)


@torch.no_grad()
def predict_proba(model: GPTClassifier, tokenizer, sentences, truncate: bool = True) -> torch.Tensor:
    """Class probabilities (B, n_classes) for a list of sentences, in eval mode (mode restored)."""
    ids, lengths = encode_batch(tokenizer, sentences, model.block_size, truncate=truncate)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return F.softmax(model(ids.to(device), lengths.to(device)), dim=-1).cpu()
    finally:
        model.train(was_training)


def occlusion(model: GPTClassifier, tokenizer, sentence: str, target: int = 1):
    """How P(target) moves when each word is removed: [(word, P(full) - P(without it)), ...]."""
    words = check_text(sentence, "sentence").split()
    if len(words) < 2:
        raise ValueError("occlusion needs a sentence of at least two words (one must remain)")
    variants = [sentence] + [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    p = predict_proba(model, tokenizer, variants)[:, target]  # (1 + n_words,)
    return [(w, (p[0] - p[1 + i]).item()) for i, w in enumerate(words)]


def accuracy_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for z = 1.96) of an accuracy of correct out of n."""
    correct, n = as_int(correct, "correct", 0), as_int(n, "n", 1)
    if correct > n:
        raise ValueError(f"correct={correct} is more than n={n}")
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return centre - half, centre + half


def mcnemar_p(correct_a, correct_b) -> float:
    """McNemar's exact two-sided p-value: do two methods scored on the same examples differ?

    Only the examples where exactly one method is right carry information: if the methods were
    equally good, each such example would favour a or b with probability 1/2 (McNemar, 1947).
    """
    a, b = torch.as_tensor(correct_a).bool(), torch.as_tensor(correct_b).bool()
    if a.dim() != 1 or a.shape != b.shape:
        raise ValueError(f"correct_a and correct_b must be 1-D and of the same length (one entry "
                         f"per example, in the same order), got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1))  # P(X <= min), X ~ Bin(n, 1/2)
    return min(1.0, 2 * tail / 2 ** n)


@torch.no_grad()
def sentence_attention(model: GPTClassifier, tokenizer, sentence: str, layer: int = -1):
    """The tokens of sentence and the attention (T,) its last token pays them in layer (mean of heads).

    The last token is the position last-token pooling classifies from; layer -1 is the top block.
    """
    ids, _ = encode_batch(tokenizer, [sentence], model.block_size, truncate=True)  # (1, T)
    n_layer = model.gpt.config.n_layer
    if isinstance(layer, bool) or not isinstance(layer, int) or not -n_layer <= layer < n_layer:
        raise ValueError(f"layer must be an int from {-n_layer} to {n_layer - 1}, got {layer!r}")
    was_training = model.training
    model.eval()
    try:
        _, att = model.gpt.features(ids.to(next(model.parameters()).device), return_attention=True)
    finally:
        model.train(was_training)
    weights = att[layer, 0, :, -1, :].mean(0).cpu()  # (L, B, H, T, T) -> (T,)
    return [tokenizer.decode([i]) for i in ids[0].tolist()], weights
