"""The arithmetic of scale: parameters from a config, training and inference FLOPs, KV-cache bytes.

Everything here is computed from a GPTConfig alone, without building the model, so it works for
GPT-2 XL (1.5 billion weights) as fast as for lesson 06's 0.8 million. tests/test_scale.py checks
every count against a built GPT for every design option, and GPT-2's four sizes against the
published counts.

The FLOP counts are the usual estimates (Kaplan et al., 2020; the PaLM paper's appendix, 2022):
a multiply-add is 2 FLOPs, a forward pass costs about 2 per weight per token, backward twice
that, so training costs about 6 N per token; attention's two T x T products add 12 L C T per
token in training (counted over the full square, as PaLM does, though a causal model needs half).
They leave out softmax, norms and the optimizer: a few per cent at these sizes.
"""
from __future__ import annotations

from llmlab.gpt import GPTConfig
from llmlab.transformer import swiglu_width

__all__ = ["GPT2_SIZES", "gpt2_config", "parameter_count", "training_flops_per_token",
           "inference_flops_per_token", "kv_cache_bytes"]

# (n_layer, n_head, n_embd) of the four GPT-2 models (Radford et al., 2019), vocabulary 50257,
# context 1024. The paper's table says 117M, 345M, 762M and 1542M; the released weights hold
# 124M, 355M, 774M and 1558M. The paper does not say how it counted, but all four of its figures
# are what the same models give with GPT-1's 40,478-token vocabulary instead of 50,257
# (tests/test_scale.py checks this to the rounding): most likely an earlier count, kept.
GPT2_SIZES = {"small": (12, 12, 768), "medium": (24, 16, 1024), "large": (36, 20, 1280),
              "xl": (48, 25, 1600)}


def gpt2_config(size: str = "small") -> GPTConfig:
    """The GPTConfig of a released GPT-2 model: size is small, medium, large or xl."""
    if size not in GPT2_SIZES:
        raise ValueError(f"GPT-2 comes in sizes {list(GPT2_SIZES)}, got {size!r}")
    n_layer, n_head, n_embd = GPT2_SIZES[size]
    return GPTConfig(vocab_size=50257, block_size=1024, n_layer=n_layer, n_head=n_head,
                     n_embd=n_embd, dropout=0.0)


def _check(config) -> GPTConfig:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"pass a GPTConfig (e.g. llmlab.scale.gpt2_config('small')), got "
                        f"{type(config).__name__}")
    return config


def _block_parameters(c: GPTConfig) -> int:
    """Weights of one block: two norms, attention (q, k, v, out), the MLP."""
    C, b = c.n_embd, int(c.bias)
    norm = C if c.norm == "rmsnorm" else C + b * C  # RMSNorm: a gain only; LayerNorm: + shift
    attn = (C * 3 * C + b * 3 * C) + (C * C + b * C)  # q, k, v at once; the output projection
    if c.qk_norm:
        attn += 2 * (C // c.n_head)  # one gain per head dimension for q, one for k
    if c.mlp == "none":  # attention-only: no ln_2, no MLP
        return norm + attn
    hidden = swiglu_width(C) if c.mlp == "swiglu" else 4 * C
    up = 2 * hidden if c.mlp == "swiglu" else hidden  # SwiGLU's gate and up share one matrix
    mlp = (C * up + b * up) + (hidden * C + b * C)
    return 2 * norm + attn + mlp


def parameter_count(config: GPTConfig, non_embedding: bool = False) -> int:
    """Parameters of GPT(config), counted from the config (tied head once); as GPT.num_parameters."""
    c = _check(config)
    C = c.n_embd
    embeddings = c.vocab_size * C + (c.block_size * C if c.positions == "learned" else 0)
    final_norm = C if c.norm == "rmsnorm" else C + int(c.bias) * C
    head = 0 if c.tie_weights else c.vocab_size * C  # untied: a second V x C matrix
    body = c.n_layer * _block_parameters(c) + final_norm + head
    return body if non_embedding else body + embeddings


def training_flops_per_token(config: GPTConfig, context: int | None = None) -> float:
    """Training FLOPs per token (forward + backward): 6 N_matmul + 12 L C T, T = context."""
    c = _check(config)
    T = c.block_size if context is None else context
    return 3 * inference_flops_per_token(c, T)


def inference_flops_per_token(config: GPTConfig, context: int | None = None) -> float:
    """Forward FLOPs per token: 2 per matmul weight (the head included) + 4 L C T for attention."""
    c = _check(config)
    T = c.block_size if context is None else context
    # Weights that multiply activations: everything but embeddings, norms and biases, plus the
    # head, which is a V x C matmul whether or not it shares the token table's numbers.
    C = c.n_embd
    hidden = {"swiglu": swiglu_width(C), "none": 0}.get(c.mlp, 4 * C)
    per_layer = 4 * C * C + (3 if c.mlp == "swiglu" else 2) * C * hidden
    n_matmul = c.n_layer * per_layer + c.vocab_size * C
    return 2 * n_matmul + 4 * c.n_layer * C * T


def kv_cache_bytes(config: GPTConfig, tokens: int, batch: int = 1, bytes_per_number: int = 4) -> int:
    """Bytes the KV cache holds for `tokens` positions: keys and values, every layer, float32 by default."""
    c = _check(config)
    for name, value in (("tokens", tokens), ("batch", batch), ("bytes_per_number", bytes_per_number)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    return 2 * c.n_layer * c.n_embd * tokens * batch * bytes_per_number  # K and V: (L, B, T, C) each
