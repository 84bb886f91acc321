"""GPT: token and position embeddings, a stack of pre-norm blocks, a final LayerNorm, a tied LM head.

    idx (B, T) -> wte(idx) + wpe(0..T-1) -> Block x n_layer -> ln_f -> lm_head -> logits (B, T, V)

GPT is decoder-only: every block's self-attention is causal, and there is no cross-attention.
Parameter names follow GPT-2 (Hugging Face's `transformers` layout), so weights can be exchanged
with `gpt2_state_dict` / `load_gpt2_state_dict`.
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_gpt import check_config as _check_config
from llmlab._validate_attention import as_flag as _as_flag
from llmlab._validate_gpt import check_count as _check_count
from llmlab._validate_gpt import check_finite_output as _check_finite_output
from llmlab._validate_gpt import check_gpt2_keys as _check_gpt2_keys
from llmlab._validate_gpt import check_idx as _check_idx
from llmlab._validate_gpt import check_targets as _check_targets
from llmlab.attention import KVCache
from llmlab.positional import LearnedPositionalEmbedding
from llmlab.sampling import greedy_next, next_token_probs, sample_next
from llmlab.transformer import Block, BlockConfig, LayerNorm, RMSNorm, count_parameters

__all__ = ["GPTConfig", "GPTOutput", "GPT", "gpt2_init", "PRESETS"]

# GPT-2 stores these four projections as Conv1D weights, (in, out): the transpose of nn.Linear's.
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# Hugging Face GPT-2 checkpoints also carry causal-mask buffers; they are not weights.
_MASK_BUFFER = re.compile(r"(^|\.)h\.\d+\.attn\.(bias|masked_bias)$")


def _init_module(module: nn.Module) -> None:
    """One module's GPT-2 initialisation (its children are handled by nn.Module.apply)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Embedding, LearnedPositionalEmbedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)


def gpt2_init(model: nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation: weights and embeddings N(0, 0.02), biases 0 (LayerNorm: 1 and 0).

    Each block adds two updates to the residual stream, so its variance grows with depth; GPT-2
    scales the projections that write into it (c_proj) by 1/sqrt(2 * n_layer) to compensate.
    """
    model.apply(_init_module)  # children before parents: the order fixes which random numbers go where
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))


@dataclass
class GPTConfig:
    """Size of a GPT; the defaults are lesson 06's character-level model (about 0.8 M parameters)."""

    vocab_size: int = 65
    block_size: int = 64  # context length: the most tokens the model reads (size of the wpe table)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0  # on embeddings, attention weights and residual updates, training only
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2 has them)
    # The parts in which today's GPTs differ from GPT-2; the defaults are GPT-2's.
    norm: str = "layernorm"  # or "rmsnorm"
    mlp: str = "gelu"  # or "swiglu", "relu2"; "none": attention-only blocks
    positions: str = "learned"  # a wpe table; or "rope" (rotary, in attention), or "none"
    qk_norm: bool = False  # RMS-normalise each head's queries and keys
    tie_weights: bool = True  # the LM head reuses the token table (wte)

    def __post_init__(self):
        _check_config(self)  # positive sizes, n_head divides n_embd, dropout in [0, 1), known choices

    def __repr__(self) -> str:
        # The modern parts are shown only where they differ from GPT-2's, so a GPT-2 config reads
        # as it always did.
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                 if f.name not in _GPT2_PARTS or getattr(self, f.name) != _GPT2_PARTS[f.name]]
        return f"GPTConfig({', '.join(shown)})"

    @classmethod
    def preset(cls, name: str, **overrides) -> "GPTConfig":
        """GPTConfig of a named design: "gpt2" (the defaults) or "llama" (RMSNorm, SwiGLU, RoPE, no
        biases, untied head), with any field overridden, e.g. preset("llama", n_layer=6)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}: choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    @property
    def is_gpt2(self) -> bool:
        """True when every part is GPT-2's, so the weights can be exchanged in GPT-2's layout."""
        return all(getattr(self, k) == v for k, v in _GPT2_PARTS.items())


_GPT2_PARTS = {"norm": "layernorm", "mlp": "gelu", "positions": "learned", "qk_norm": False,
               "tie_weights": True}
PRESETS = {"gpt2": {}, "llama": {"norm": "rmsnorm", "mlp": "swiglu", "positions": "rope",
                                 "bias": False, "tie_weights": False}}


class GPTOutput(NamedTuple):
    """What GPT.forward returns: always these three fields, whatever the flags."""

    logits: torch.Tensor  # (B, T, vocab_size): scores for the token after each position
    loss: torch.Tensor | None  # mean cross-entropy over all positions, when targets are given
    attention: torch.Tensor | None  # (L, B, H, T, T), when return_attention=True


class GPT(nn.Module):
    """A GPT-2-style decoder-only language model; see GPTConfig for its size."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT takes a GPTConfig, not {type(config).__name__}: e.g. GPT(GPTConfig()) "
                            "or, for a plain dict d, GPT(GPTConfig(**d))")
        self.config = config
        block = BlockConfig(config.n_embd, config.n_head, config.dropout, config.bias,
                            norm_kind=config.norm, mlp=config.mlp, rope=config.positions == "rope",
                            qk_norm=config.qk_norm)
        parts = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))  # token id -> vector
        if config.positions == "learned":
            parts["wpe"] = LearnedPositionalEmbedding(config.block_size, config.n_embd)  # position -> vector
        self.transformer = nn.ModuleDict(dict(
            **parts,
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(block) for _ in range(config.n_layer)]),
            ln_f=RMSNorm(config.n_embd) if config.norm == "rmsnorm"
            else LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # Weight tying (as in GPT-2): reading a token in and scoring it as output share one
            # table, so a token's logit is its embedding's dot product with the final hidden state.
            self.lm_head.weight = self.transformer.wte.weight
        gpt2_init(self, config.n_layer)

    # --- forward ---------------------------------------------------------------------------------

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                return_attention: bool = False) -> GPTOutput:
        """Logits for every position of idx (B, T); the loss if targets (B, T) are given.

        Without return_attention the blocks use PyTorch's fused attention (fast training); with it,
        the explicit path, which also returns every layer's weights, stacked as (L, B, H, T, T).
        """
        if targets is not None:
            idx = _check_idx(idx, self.config, self.lm_head.weight.device)  # (B, T) int64
            targets = _check_targets(idx, targets, self.config.vocab_size)  # (B, T) int64
        h, attention = self.features(idx, return_attention)  # (B, T, C)
        logits = self.lm_head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            # Every position is a training example: predict token t + 1 from tokens 0..t.
            # Targets equal to -100 are ignored (PyTorch's ignore_index), e.g. for padding.
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        # NaN weights give NaN out: check only the output (the loss: one number), not every layer.
        _check_finite_output(self, logits if loss is None else loss, "logits" if loss is None else "loss")
        return GPTOutput(logits, loss, attention)

    def features(self, idx: torch.Tensor, return_attention: bool = False):
        """The final hidden state of every position (after ln_f), (B, T, C); and the attention.

        What the language-model head reads, and what a classifier on top of the GPT reads too.
        The attention (L, B, H, T, T) is returned when return_attention=True, else None.
        """
        idx = _check_idx(idx, self.config, self.lm_head.weight.device)  # (B, T) int64
        return_attention = _as_flag(return_attention, "return_attention")
        x = self._embed(idx, offset=0)  # (B, T, C)
        weights = []
        for block in self.transformer.h:
            if return_attention:
                x, w = block.with_weights(x)  # w: (B, H, T, T)
                weights.append(w)
            else:
                x = block(x)  # (B, T, C)
        attention = torch.stack(weights) if return_attention else None  # (L, B, H, T, T)
        return self.transformer.ln_f(x), attention

    def _embed(self, idx: torch.Tensor, offset: int) -> torch.Tensor:
        """Token plus position embeddings of idx (B, T), whose first token sits at position offset."""
        x = self.transformer.wte(idx)  # (B, T, C)
        if "wpe" in self.transformer:  # RoPE puts positions inside attention instead; "none": nowhere
            x = x + self.transformer.wpe(idx.shape[1], offset)  # (T, C), broadcast over the batch
        return self.transformer.drop(x)  # (B, T, C)

    def _last_logits(self, idx: torch.Tensor, caches: list[KVCache] | None) -> torch.Tensor:
        """Logits (B, V) for the token after idx (B, T); with caches, idx continues what they hold."""
        offset = 0 if caches is None else caches[0].length
        x = self._embed(idx, offset)  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, cache=None if caches is None else caches[i])  # (B, T, C)
        # Only the last position predicts the next token; LayerNorm works per position.
        logits = self.lm_head(self.transformer.ln_f(x[:, -1]))  # (B, V)
        _check_finite_output(self, logits, "logits")
        return logits

    # --- generation ------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, greedy: bool = False,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
        """Extend idx (B, T) by max_new_tokens tokens; returns (B, T + max_new_tokens).

        Each step reads at most the last block_size tokens (a longer prompt is cropped to them) and
        picks the next token with llmlab.sampling (greedy=True: argmax). The model runs in eval mode
        (no dropout) and is put back as it was. use_cache=True keeps every layer's keys and values
        (KVCache), so each step feeds only the newest token. Positions are absolute (learned wpe),
        so once the sequence outgrows block_size the window slides, every token's position changes
        and the cached keys go stale: from then on each step re-encodes the last block_size tokens,
        exactly as without the cache (same tokens, no speed-up).
        """
        idx = _check_idx(idx, self.config, self.lm_head.weight.device, crop=True)  # (B, T) int64
        max_new_tokens = _check_count(max_new_tokens)
        greedy, use_cache = _as_flag(greedy, "greedy"), _as_flag(use_cache, "use_cache")
        if not greedy:  # check the sampling settings now, not after the first forward pass
            next_token_probs(torch.zeros(1, self.config.vocab_size), temperature, top_k, top_p)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}: "
                            "e.g. torch.Generator().manual_seed(0)")
        block_size, was_training = self.config.block_size, self.training
        self.eval()
        try:
            caches = None  # one KVCache per layer, holding every position of the current window
            for _ in range(max_new_tokens):
                if caches is not None and caches[0].length < block_size:
                    logits = self._last_logits(idx[:, -1:], caches)  # (B, V): the newest token only
                else:  # first step, no cache, or a full window: (re-)encode the last block_size tokens
                    caches = [KVCache() for _ in self.transformer.h] if use_cache else None
                    logits = self._last_logits(idx[:, -block_size:], caches)  # (B, V)
                if greedy:
                    nxt = greedy_next(logits)  # (B,)
                else:
                    nxt = sample_next(logits, temperature, top_k, top_p, generator=generator)  # (B,)
                idx = torch.cat([idx, nxt[:, None].to(idx.dtype)], dim=1)  # (B, T + 1)
        finally:
            self.train(was_training)
        return idx

    # --- sizes, checkpoints, GPT-2 weights -------------------------------------------------------

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameter count (the tied wte / lm_head once); non_embedding=True leaves out wte and wpe.

        Scaling-law papers (Kaplan et al., 2020) count without embeddings: then the total is
        n_layer * block_parameter_count(n_embd, bias) plus ln_f's parameters.
        """
        n = count_parameters(self, trainable_only=False)
        if _as_flag(non_embedding, "non_embedding"):
            n -= self.transformer.wte.weight.numel()
            if "wpe" in self.transformer:
                n -= self.transformer.wpe.weight.numel()
        return n

    def config_dict(self) -> dict:
        """The config as a plain, JSON-able dict (for checkpoints); GPT.from_config_dict inverts it."""
        return dataclasses.asdict(self.config)

    @classmethod
    def from_config_dict(cls, d: Mapping) -> "GPT":
        """Build a fresh (untrained) GPT from a dict made by config_dict()."""
        if not isinstance(d, Mapping):
            raise TypeError(f"from_config_dict needs a dict like model.config_dict(), got {type(d).__name__}")
        fields = [f.name for f in dataclasses.fields(GPTConfig)]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown GPTConfig fields {unknown}: the dict may hold only {fields}")
        return cls(GPTConfig(**d))

    def _check_gpt2(self) -> None:
        """Raise unless this model has GPT-2's parts, so its weights fit GPT-2's layout."""
        if not self.config.is_gpt2:
            other = {k: getattr(self.config, k) for k, v in _GPT2_PARTS.items()
                     if getattr(self.config, k) != v}
            raise ValueError(f"this model is not a GPT-2 ({other}): GPT-2's weight layout has no place "
                             "for these parts; only GPTConfig.preset('gpt2') models exchange weights "
                             "with it (save and load this one with llmlab.checkpoint)")

    def gpt2_state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the weights under GPT-2's names, the four Conv1D projections as (in, out)."""
        self._check_gpt2()
        return {name: (t.t() if name.endswith(_CONV1D) else t).detach().clone().contiguous()
                for name, t in self.state_dict().items()}

    def load_gpt2_state_dict(self, sd: Mapping[str, torch.Tensor]) -> None:
        """Load weights from a GPT-2-layout dict (gpt2_state_dict's inverse); checks all before copying.

        Also accepts Hugging Face's files: names without the "transformer." prefix, mask buffers.
        """
        self._check_gpt2()
        if not isinstance(sd, Mapping):
            raise TypeError(f"load_gpt2_state_dict needs a dict of tensors, got {type(sd).__name__}")
        params = dict(self.named_parameters())  # lm_head.weight is wte's tensor, listed once
        expected = {n: tuple(p.shape[::-1]) if n.endswith(_CONV1D) else tuple(p.shape)
                    for n, p in params.items()}
        expected["lm_head.weight"] = expected["transformer.wte.weight"]
        got = {}
        for name, t in sd.items():
            if _MASK_BUFFER.search(name):
                continue
            name = name if name.startswith("transformer.") or name == "lm_head.weight" else "transformer." + name
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} is a {type(t).__name__}, not a tensor: pass a dict of tensors")
            got[name] = t
        _check_gpt2_keys(got, expected, self.config)
        lm_head = got.get("lm_head.weight")
        if lm_head is not None and not torch.equal(lm_head, got["transformer.wte.weight"]):
            raise ValueError("lm_head.weight differs from transformer.wte.weight, but this model ties "
                             "them (one shared table): these weights come from an untied model")
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(got[name].t() if name.endswith(_CONV1D) else got[name])
