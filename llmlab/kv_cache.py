"""The KV cache: keys and values a causal self-attention layer keeps between generation steps."""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["KVCache"]


@dataclass
class KVCache:
    """The keys and values one self-attention layer has already computed, each (B, H, T_past, hd).

    When generating, token t's keys and values never change once computed (causal attention: the
    past cannot see the future). So keep them, and feed the layer only the new tokens: pass the same
    KVCache to every call, and each call appends its keys and values in place. One cache per layer;
    start a fresh one for each new batch of sequences.
    """

    k: torch.Tensor | None = None  # (B, H, T_past, hd)
    v: torch.Tensor | None = None  # (B, H, T_past, hd)

    @property
    def length(self) -> int:
        """Number of positions cached so far (T_past)."""
        return 0 if self.k is None else self.k.shape[-2]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append new keys and values (B, H, T_new, hd); return all of them (B, H, T_past + T_new, hd)."""
        if self.k is not None:
            k = torch.cat([self.k, k], dim=-2)  # (B, H, T_past + T_new, hd)
            v = torch.cat([self.v, v], dim=-2)  # (B, H, T_past + T_new, hd)
        self.k, self.v = k, v
        return k, v
