"""Solutions to the exercises of lesson 05, "The transformer block".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch


def layer_norm(x: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Exercise 1: normalise each token of x (..., C) over its C features, then scale and shift."""
    mean = x.mean(dim=-1, keepdim=True)                                   # (..., 1)
    # The biased variance (divide by C), as torch.nn.LayerNorm does; torch.var's default
    # divides by C - 1.
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)                    # (..., 1)
    x_hat = (x - mean) / torch.sqrt(var + eps)                            # (..., C) mean 0, var 1
    return x_hat * gain + bias                                            # (..., C)


def block_forward(x: torch.Tensor, ln_1, attn, ln_2, mlp) -> torch.Tensor:
    """Exercise 2: the pre-norm (GPT-2) block, (B, T, C) -> (B, T, C)."""
    # Normalise what goes *into* each sublayer; add its output to the stream, which itself is
    # never normalised. `x = x + ...` makes a new tensor (`x += ...` would change the caller's).
    x = x + attn(ln_1(x))   # tokens exchange information
    x = x + mlp(ln_2(x))    # each token on its own, after attention's update
    return x


def count_block_parameters(C: int, bias: bool = True) -> int:
    """Exercise 3: the parameters of one Block of width C, counted layer by layer."""
    b = 1 if bias else 0
    layer_norms = 2 * (C + b * C)                   # ln_1, ln_2: a gain (and a bias) each
    attention = (C * 3 * C + b * 3 * C) + (C * C + b * C)   # c_attn (q, k, v at once), c_proj
    mlp = (C * 4 * C + b * 4 * C) + (4 * C * C + b * C)     # c_fc widens 4x, c_proj narrows back
    return layer_norms + attention + mlp            # 12 C² + 13 C, or 12 C² + 2 C without biases
