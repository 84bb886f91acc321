"""The transformer block: LayerNorm, the feed-forward MLP, residual paths, and a cross-attention block.

A GPT block is pre-norm, as in GPT-2: normalise, transform, add back to the residual stream.
    x = x + attn(ln_1(x))   # tokens exchange information (causal self-attention)
    x = x + mlp(ln_2(x))    # each token is processed on its own
The residual stream x is never normalised itself, so a signal (and its gradient) can pass
straight through a deep stack; `residual=False` and `norm=False` let a lesson take that away.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab._validate_attention import as_dropout as _as_dropout
from llmlab._validate_attention import as_flag as _as_flag
from llmlab._validate_attention import as_size as _as_size
from llmlab._validate_attention import check_float_input as _check_float_input
from llmlab.attention import AttentionConfig, AttentionOutput, KVCache, MultiHeadAttention

__all__ = [
    "LayerNorm", "RMSNorm", "FeedForward", "MLP_KINDS", "BLOCK_MLPS", "NORM_KINDS", "swiglu_width", "BlockConfig", "Block", "DecoderBlockOutput", "DecoderBlock",
    "count_parameters", "block_parameter_count",
]


def _check_heads(n_embd: int, n_head: int) -> tuple[int, int]:
    """Return n_embd, n_head as plain ints, or raise unless both are positive and n_head divides n_embd."""
    n_embd, n_head = _as_size(n_embd, "n_embd"), _as_size(n_head, "n_head")
    if n_embd % n_head:
        divisors = [h for h in range(1, n_embd + 1) if n_embd % h == 0]
        raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}: each head gets "
                         f"n_embd // n_head dimensions, so pick n_head from {divisors}")
    return n_embd, n_head


def _check_x(x: torch.Tensor, n_embd: int, dtype: torch.dtype, what: str = "this block",
             dims: int | None = 3) -> None:
    """Raise a clear error unless x is a (B, T, n_embd) float tensor of the weights' dtype."""
    if not isinstance(x, torch.Tensor) or (dims is not None and x.dim() != dims) or x.dim() == 0 \
            or x.shape[-1] != n_embd:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x has shape {got} but {what} expects (B, T, n_embd={n_embd}): "
                         "add a batch dimension with x.unsqueeze(0) if needed")
    _check_float_input(x, "x", dtype)


def _residual(x: torch.Tensor, update: torch.Tensor, residual: bool) -> torch.Tensor:
    """Add a sublayer's update to the residual stream x, or replace x when residual is off."""
    return x + update if residual else update


class LayerNorm(nn.Module):
    """Normalise each token's n_embd features to mean 0 and variance 1, then scale and shift them."""

    def __init__(self, n_embd: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        n_embd, bias = _as_size(n_embd, "n_embd"), _as_flag(bias, "bias")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
            raise ValueError(f"eps must be a small positive number such as 1e-5, got {eps!r}")
        self.eps = float(eps)  # keeps the division finite for a token whose features are all equal
        self.weight = nn.Parameter(torch.ones(n_embd))  # (C,) gain, starts as "keep the scale"
        self.bias = nn.Parameter(torch.zeros(n_embd)) if bias else None  # (C,) shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C): (x - mean) / sqrt(var + eps) * weight + bias, over the last dim."""
        _check_x(x, self.weight.shape[0], self.weight.dtype, "this LayerNorm (build LayerNorm(x.shape[-1]))",
                 dims=None)
        # Written out, per token (the biased variance, dividing by C, as GPT-2 and nn.LayerNorm do):
        #     mean = x.mean(-1, keepdim=True); var = x.var(-1, keepdim=True, unbiased=False)
        #     x_hat = (x - mean) / torch.sqrt(var + eps); return x_hat * weight + bias
        # F.layer_norm computes exactly this in one fused kernel. Spelled out, its forward and
        # backward take about 7x longer on a CPU, a quarter of a training step of lesson 06's GPT.
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)  # (..., C)


class RMSNorm(nn.Module):
    """Scale each token's features to unit root-mean-square, then by a gain (Zhang & Sennrich, 2019).

    LayerNorm without the mean: no centring and no bias, one reduction fewer. Llama, Mistral and
    most models since 2023 use it.
    """

    def __init__(self, n_embd: int, eps: float = 1e-6):
        super().__init__()
        n_embd = _as_size(n_embd, "n_embd")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
            raise ValueError(f"eps must be a small positive number such as 1e-6, got {eps!r}")
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(n_embd))  # (C,) gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., C): x / sqrt(mean(x^2) + eps) * weight, over the last dim."""
        _check_x(x, self.weight.shape[0], self.weight.dtype, "this RMSNorm (build RMSNorm(x.shape[-1]))",
                 dims=None)
        # Written out: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)  # (..., C)


MLP_KINDS = ("gelu", "swiglu", "relu2")
# A block may also have no MLP: attention-only models (Elhage et al., 2021) for reading circuits.
BLOCK_MLPS = MLP_KINDS + ("none",)
NORM_KINDS = ("layernorm", "rmsnorm")


def swiglu_width(n_embd: int) -> int:
    """SwiGLU's hidden width: 8C/3 (rounded up to a multiple of 8), so its three matrices hold about
    as many weights as GELU's two of width 4C."""
    return -(-8 * n_embd // 3 // 8) * 8


class FeedForward(nn.Module):
    """The per-token MLP: Linear(C, 4C), GELU, Linear(4C, C), dropout (GPT-2's `mlp`).

    kind="relu2" squares a ReLU instead of GELU (So et al., 2021); kind="swiglu" is a gated unit
    (Shazeer, 2020): silu(x W_gate) * (x W_up), then W_down, with a hidden width of about 8C/3.
    """

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True, kind: str = "gelu"):
        super().__init__()
        n_embd, dropout, bias = _as_size(n_embd, "n_embd"), _as_dropout(dropout), _as_flag(bias, "bias")
        self.kind = _as_choice(kind, MLP_KINDS, "mlp")
        hidden = swiglu_width(n_embd) if self.kind == "swiglu" else 4 * n_embd  # room to compute
        # SwiGLU's gate and up projections are one Linear, split in two in forward.
        self.c_fc = nn.Linear(n_embd, 2 * hidden if self.kind == "swiglu" else hidden, bias=bias)
        # GPT-2 uses GELU's tanh approximation, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
        # not the exact x * Phi(x); they differ by < 1e-3, but loading GPT-2 weights needs the same one.
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, T, C), each position on its own."""
        _check_x(x, self.c_fc.in_features, self.c_fc.weight.dtype, "this FeedForward", dims=None)
        h = self.c_fc(x)  # (B, T, hidden), or (B, T, 2 * hidden) for SwiGLU
        if self.kind == "gelu":
            h = self.gelu(h)
        elif self.kind == "relu2":
            h = F.relu(h).square()
        else:
            gate, up = h.chunk(2, dim=-1)  # (B, T, hidden) each
            h = F.silu(gate) * up
        return self.dropout(self.c_proj(h))  # (B, T, C)


def _as_choice(value, choices: tuple[str, ...], name: str) -> str:
    """Return value if it is one of choices, or raise naming them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


@dataclass
class BlockConfig:
    """Settings of one transformer block; residual / norm switch the residual path / LayerNorms off."""

    n_embd: int
    n_head: int
    dropout: float = 0.0
    bias: bool = True
    residual: bool = True  # False: x = attn(ln_1(x)); x = mlp(ln_2(x)) (for showing why it matters)
    norm: bool = True  # False: ln_1 / ln_2 become identities (no parameters)
    d_context: int | None = None  # DecoderBlock only: width of the encoder output (None: n_embd)
    norm_kind: str = "layernorm"  # or "rmsnorm" (with norm=True)
    mlp: str = "gelu"  # or "swiglu", "relu2"; "none": an attention-only block
    rope: bool = False  # rotary positions in the self-attention
    qk_norm: bool = False  # RMS-normalised queries and keys

    def __post_init__(self):
        # Plain Python values (NumPy's converted), so a checkpoint holding them loads weights-only.
        self.n_embd, self.n_head = _check_heads(self.n_embd, self.n_head)
        self.dropout = _as_dropout(self.dropout)
        for name in ("bias", "residual", "norm", "rope", "qk_norm"):
            setattr(self, name, _as_flag(getattr(self, name), name))
        self.norm_kind = _as_choice(self.norm_kind, NORM_KINDS, "norm_kind")
        self.mlp = _as_choice(self.mlp, BLOCK_MLPS, "mlp")
        self.d_context = None if self.d_context is None else _as_size(self.d_context, "d_context")
        self.attention(causal=True)  # AttentionConfig checks dropout (and d_context below)
        if self.d_context is not None:
            self.attention(causal=False, d_kv=self.d_context)

    def attention(self, causal: bool, d_kv: int | None = None) -> AttentionConfig:
        """The AttentionConfig of this block's self-attention (or, with d_kv, its cross-attention)."""
        return AttentionConfig(self.n_embd, self.n_head, dropout=self.dropout, bias=self.bias,
                               causal=causal, d_kv=d_kv, rope=self.rope and d_kv is None,
                               qk_norm=self.qk_norm)


def _check_block_config(config) -> None:
    """Raise a clear error unless config is a BlockConfig."""
    if not isinstance(config, BlockConfig):
        raise TypeError(f"blocks take a BlockConfig, not {type(config).__name__}: "
                        "e.g. Block(BlockConfig(n_embd=64, n_head=4)); for a dict d, BlockConfig(**d)")


def _norm(config) -> nn.Module:
    """A LayerNorm or RMSNorm over n_embd, or nothing (identity) when the experiment turns norm off."""
    if not config.norm:
        return nn.Identity()
    if config.norm_kind == "rmsnorm":
        return RMSNorm(config.n_embd)
    return LayerNorm(config.n_embd, bias=config.bias)


class Block(nn.Module):
    """Pre-norm block: x + attn(ln_1(x)), then x + mlp(ln_2(x)); (B, T, C) -> (B, T, C).

    causal=True is GPT's block; causal=False is an encoder's (BERT, the Transformer's encoder):
    every token attends to every other, in both directions, except where a padding mask hides it.
    """

    def __init__(self, config: BlockConfig, causal: bool = True):
        super().__init__()
        _check_block_config(config)
        self.config = config
        self.causal = _as_flag(causal, "causal")
        self.ln_1 = _norm(config)
        self.attn = MultiHeadAttention(config.attention(causal=self.causal))
        self.resid_dropout = nn.Dropout(config.dropout)  # on attn's update to the residual stream
        if config.mlp == "none":  # attention-only: every update to the residual stream is a head's
            self.ln_2 = self.mlp = None
        else:
            self.ln_2 = _norm(config)
            self.mlp = FeedForward(config.n_embd, config.dropout, config.bias, config.mlp)  # ends with its own dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) -> (B, T, C), on PyTorch's fused attention path (fast, no weights)."""
        return self._run(x, cache, mask, return_weights=False).output

    def with_weights(self, x: torch.Tensor, cache: KVCache | None = None,
                     mask: torch.Tensor | None = None) -> AttentionOutput:
        """(output (B, T, C), attention weights (B, H, T, T_k)), on the explicit attention path."""
        return self._run(x, cache, mask, return_weights=True)

    def _run(self, x: torch.Tensor, cache: KVCache | None, mask: torch.Tensor | None,
             return_weights: bool) -> AttentionOutput:
        """The block itself; cache (a KVCache) lets x continue a sequence seen before; mask (e.g.
        padding_mask(lengths, T)) hides keys, combined with the causal mask when causal."""
        _check_x(x, self.config.n_embd, self.attn.c_proj.weight.dtype)
        a, weights = self.attn(self.ln_1(x), mask=mask, return_weights=return_weights,
                               cache=cache)  # (B, T, C)
        x = _residual(x, self.resid_dropout(a), self.config.residual)
        if self.mlp is not None:
            x = _residual(x, self.mlp(self.ln_2(x)), self.config.residual)
        return AttentionOutput(x, weights)


class DecoderBlockOutput(NamedTuple):
    """A DecoderBlock's output (B, T, C) and its self- and cross-attention weights (or None)."""

    output: torch.Tensor
    self_attention: torch.Tensor | None  # (B, H, T, T)
    cross_attention: torch.Tensor | None  # (B, H, T, T_enc): which source token each target reads


class DecoderBlock(nn.Module):
    """Encoder-decoder block: causal self-attention, cross-attention to the encoder output, MLP."""

    def __init__(self, config: BlockConfig):
        super().__init__()
        _check_block_config(config)
        self.config = config
        self.ln_1 = _norm(config)
        self.attn = MultiHeadAttention(config.attention(causal=True))
        self.ln_cross_attn = _norm(config)
        # Queries come from the decoder, keys and values from the encoder's output.
        self.cross_attn = MultiHeadAttention(config.attention(causal=False, d_kv=config.d_context))
        self.ln_2 = _norm(config)
        self.mlp = FeedForward(config.n_embd, config.dropout, config.bias, config.mlp)
        self.resid_dropout = nn.Dropout(config.dropout)  # on both attentions' residual updates

    def forward(self, x: torch.Tensor, encoder_out: torch.Tensor,
                encoder_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder states x (B, T, C), encoder_out (B, T_enc, d_context) -> (B, T, C)."""
        return self._run(x, encoder_out, encoder_mask, return_weights=False).output

    def with_weights(self, x: torch.Tensor, encoder_out: torch.Tensor,
                     encoder_mask: torch.Tensor | None = None) -> DecoderBlockOutput:
        """The output and both attentions' weights, on the explicit attention path."""
        return self._run(x, encoder_out, encoder_mask, return_weights=True)

    def _run(self, x: torch.Tensor, encoder_out: torch.Tensor, encoder_mask: torch.Tensor | None,
             return_weights: bool) -> DecoderBlockOutput:
        """The block itself; encoder_mask (e.g. padding_mask(lengths, T_enc)) hides source padding."""
        _check_x(x, self.config.n_embd, self.mlp.c_fc.weight.dtype)
        a, self_w = self.attn(self.ln_1(x), return_weights=return_weights)  # (B, T, C)
        x = _residual(x, self.resid_dropout(a), self.config.residual)
        c, cross_w = self.cross_attn(self.ln_cross_attn(x), context=encoder_out, mask=encoder_mask,
                                     return_weights=return_weights)  # (B, T, C)
        x = _residual(x, self.resid_dropout(c), self.config.residual)
        return DecoderBlockOutput(_residual(x, self.mlp(self.ln_2(x)), self.config.residual),
                                  self_w, cross_w)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameters in module (shared tensors counted once), by default trainable ones only."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"count_parameters needs an nn.Module, got {type(module).__name__}")
    trainable_only = _as_flag(trainable_only, "trainable_only")
    # module.parameters() already yields a tied tensor (GPT's wte / lm_head) only once.
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def block_parameter_count(n_embd: int, bias: bool = True) -> int:
    """Parameters of one Block, by hand: 12 C^2 weights, plus 13 C biases and gains (2 C without bias)."""
    C, b = _as_size(n_embd, "n_embd"), int(_as_flag(bias, "bias"))
    ln = C + b * C  # gain (+ shift)
    attn = (C * 3 * C + b * 3 * C) + (C * C + b * C)  # c_attn: q, k, v at once; c_proj
    mlp = (C * 4 * C + b * 4 * C) + (4 * C * C + b * C)  # c_fc widens 4x; c_proj narrows back
    return 2 * ln + attn + mlp  # = 12 C^2 + 13 C (bias=True) or 12 C^2 + 2 C (bias=False)
