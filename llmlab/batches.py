"""Where training batches come from: the one contract the training loop needs.

A batch source is any object with `sample(batch_size, generator, device) -> (inputs, targets)`.
llmlab.training.train draws every training batch and every evaluation batch through it, so the
same loop trains a language model on a token stream (TokenStream, below) and fine-tunes a
classifier on labelled sentences (llmlab.classifier.SentenceBatches). What the inputs and targets
are is up to the source and the loss function that reads them.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from llmlab._validate_input import as_id_tensor, as_int
from llmlab.data import random_batch

__all__ = ["BatchSource", "TokenStream", "TensorExamples"]


@runtime_checkable
class BatchSource(Protocol):
    """Anything that can hand out random batches of (inputs, targets) on a device."""

    def sample(self, batch_size: int, generator: torch.Generator, device) -> tuple:
        """Draw batch_size random examples with generator; return (inputs, targets) on device."""
        ...


class TokenStream:
    """Random windows of block_size tokens from one long sequence, with next-token targets."""

    def __init__(self, ids, block_size: int):
        self.ids = as_id_tensor(ids, "ids").long()
        self.block_size = as_int(block_size, "block_size", 1)
        if self.ids.dim() != 1 or len(self.ids) < self.block_size + 1:
            raise ValueError(f"a TokenStream needs a 1-D sequence of at least block_size + 1 = "
                             f"{self.block_size + 1} ids, got shape {tuple(self.ids.shape)}: use "
                             "more text or a smaller block_size")

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, batch_size: int, generator: torch.Generator, device=None):
        """(x, y), both (batch_size, block_size): windows and the same windows shifted by one."""
        return random_batch(self.ids, batch_size, self.block_size, generator=generator,
                            device=device)


class TensorExamples:
    """Random rows of a fixed input tensor (N, ...) and its labels (N,): e.g. precomputed features."""

    def __init__(self, inputs: torch.Tensor, labels):
        self.inputs = torch.as_tensor(inputs)
        self.labels = as_id_tensor(labels, "labels").long()
        if not self.inputs.is_floating_point():
            raise TypeError(f"inputs must be a float tensor of features, got {self.inputs.dtype}: "
                            "for token ids use TokenStream or llmlab.classifier.SentenceBatches")
        if self.inputs.dim() < 1 or self.labels.shape != (len(self.inputs),) or not len(self.labels):
            raise ValueError(f"inputs (N, ...) and labels (N,) must have the same N >= 1, got "
                             f"{tuple(self.inputs.shape)} and {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, batch_size: int, generator: torch.Generator, device=None):
        """((x,), y): batch_size rows drawn with replacement; x (B, ...), y (B,)."""
        rows = torch.randint(len(self.labels), (batch_size,), generator=generator)  # (B,)
        return (self.inputs[rows].to(device),), self.labels[rows].to(device)

    def batches(self, batch_size: int = 256):
        """Every row once, in order: ((x,), y) batches for evaluation."""
        for start in range(0, len(self.labels), batch_size):
            stop = start + batch_size
            yield (self.inputs[start:stop],), self.labels[start:stop]
