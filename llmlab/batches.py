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

__all__ = ["BatchSource", "TokenStream"]


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
