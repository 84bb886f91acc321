"""Checkers for lesson 05 (the transformer block): LayerNorm, the pre-norm block, parameter counts.

Each checker runs the learner's function on cases whose sizes all differ (so the batch, time and
feature axes cannot be confused), compares with a reference computed here, and when the answer is
wrong recomputes the typical mistakes to name the one it looks like.
"""
from __future__ import annotations

import itertools

import torch

from llmlab.attention import AttentionConfig, MultiHeadAttention
from llmlab.transformer import FeedForward, LayerNorm, block_parameter_count

from ._core import Verdict, as_count, call_safely, distinct_sizes, failed, fresh_seed, passed
from ._core import call_unchanged as _call_unchanged

__all__ = ["check_layer_norm", "check_block_forward", "check_count_block_parameters"]


def _gen(seed: int) -> torch.Generator:
    """A private generator, so checking never moves the learner's random state."""
    return torch.Generator().manual_seed(seed)


def _as_tensor(value, ex: str):
    """(value as a float64 tensor, None), or (None, a failing verdict saying what came back)."""
    if not isinstance(value, torch.Tensor):
        return None, failed(ex, f"the result should be a tensor, but your function returned "
                                f"{type(value).__name__}. Did you forget a `return`?")
    return value.detach().double(), None


def _same(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-4) -> bool:
    """Same shape and the same numbers, up to float32 rounding."""
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), atol=atol, rtol=1e-4))




# --- exercise: layer_norm ----------------------------------------------------------------------

def _ln(x, gain, bias, eps, dim=-1, unbiased=False, eps_inside=True, sqrt=True, centre=True,
        use_gain=True, use_bias=True, shift_then_scale=False):
    """The reference LayerNorm (float64), or one of its typical mistakes when a flag is changed."""
    mean = x.mean(dim=dim, keepdim=True)
    var = x.var(dim=dim, keepdim=True, unbiased=unbiased)
    scale = (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps) if sqrt else var + eps
    x_hat = ((x - mean) if centre else x) / scale  # (..., C)
    if shift_then_scale:
        return (x_hat + bias) * gain
    return x_hat * (gain if use_gain else 1.0) + (bias if use_bias else 0.0)


def _ln_cases():
    """(x, gain, bias, eps): B, T and C all differ; a tiny C; a large eps; a constant token."""
    cases = []
    random_shape = tuple(distinct_sizes((1, 4), (5, 9), (10, 33)))  # drawn afresh on every check
    seed = fresh_seed()
    for n, (shape, eps) in enumerate((((2, 3, 5), 1e-5), ((3, 5, 4), 1e-5), ((2, 4, 6), 0.5),
                                      ((1, 3, 7), 1e-5), (random_shape, 1e-5))):
        n = n if n < 4 else seed  # the random case gets fresh numbers too
        x = torch.randn(*shape, generator=_gen(70 + n)) * 3 + 2  # mean 2, std 3: both must go
        if n == 3:
            x[0, 1] = 4.0  # a token whose features are all equal: variance 0
        C = shape[-1]
        gain = 1 + 0.5 * torch.randn(C, generator=_gen(80 + n))  # (C,)
        bias = torch.randn(C, generator=_gen(90 + n))  # (C,)
        cases.append((x, gain, bias, eps))
    return cases


def _ln_mistake(got, x, gain, bias, eps) -> str | None:
    """The hint for the mistake got looks like, or None if no known one matches."""
    ref = dict(x=x, gain=gain, bias=bias, eps=eps)
    if torch.isnan(got).any() or torch.isinf(got).any():
        return ("a token whose features are all equal has variance 0, and your result has nan or "
                "inf there: add eps to the variance *inside* the square root, "
                "sqrt(var + eps), so the division is always finite.")
    known = [
        (dict(dim=0), "you normalised over the batch axis (dim=0). LayerNorm normalises each token "
                      "on its own, over its C features: mean and variance over dim=-1."),
        (dict(dim=1), "you normalised over the time axis (dim=1), mixing positions. LayerNorm "
                      "normalises each token on its own, over its C features: dim=-1."),
        (dict(dim=(0, 1, 2)), "you took one mean and variance over the whole tensor. LayerNorm "
                              "uses each token's own: x.mean(dim=-1, keepdim=True)."),
        (dict(unbiased=True), "you used the unbiased variance (dividing by C - 1), which is what "
                              "torch.var and x.std() do by default. LayerNorm divides by C: use "
                              "x.var(dim=-1, keepdim=True, unbiased=False), or "
                              "((x - mean) ** 2).mean(dim=-1, keepdim=True)."),
        (dict(eps=0.0), f"the eps you are given (here {eps}) is not used: add it to the variance "
                        "inside the square root, sqrt(var + eps). If you wrote 1e-5, use the "
                        "argument instead."),
        (dict(eps_inside=False), "eps belongs inside the square root: divide by "
                                 "sqrt(var + eps), not sqrt(var) + eps."),
        (dict(sqrt=False), "you divided by the variance; divide by the standard deviation, "
                           "sqrt(var + eps), so that the result has variance 1."),
        (dict(centre=False), "subtract the mean first: x_hat = (x - mean) / sqrt(var + eps)."),
        (dict(use_gain=False, use_bias=False), "the result is normalised but not yet scaled and "
                                               "shifted: return x_hat * gain + bias."),
        (dict(use_gain=False), "the gain is missing: return x_hat * gain + bias."),
        (dict(use_bias=False), "the bias is missing: return x_hat * gain + bias."),
        (dict(shift_then_scale=True), "scale first, then shift: x_hat * gain + bias, not "
                                      "(x_hat + bias) * gain."),
    ]
    for change, hint in known:
        if _same(got, _ln(**{**ref, **change})):
            return hint
    return None


def check_layer_norm(layer_norm_fn) -> Verdict:
    """Check layer_norm(x, gain, bias, eps): normalise each token over its features, then scale."""
    ex = "layer_norm(x, gain, bias, eps)"
    for x, gain, bias, eps in _ln_cases():
        result, verdict = _call_unchanged(ex, layer_norm_fn, x, gain, bias, eps)
        if verdict is not None:
            if "must match the size" in verdict.message:  # (B, T) mean against (B, T, C)
                return failed(ex, "the shapes do not line up. A mean over dim=-1 has shape "
                                  "(B, T); keep the reduced axis with keepdim=True so it "
                                  f"broadcasts against x (B, T, C). ({verdict.message})")
            return verdict
        got, verdict = _as_tensor(result, ex)
        if verdict is not None:
            return verdict
        x64, g64, b64 = x.double(), gain.double(), bias.double()
        want = _ln(x64, g64, b64, eps)
        if _same(got, want):
            continue
        case = f"For x of shape (B, T, C) = {tuple(x.shape)} and eps = {eps}"
        if got.shape != want.shape:
            return failed(ex, f"{case} the result should have the shape of x, {tuple(x.shape)}; "
                              f"yours has {tuple(got.shape)}. Use keepdim=True in mean and var.")
        hint = _ln_mistake(got, x64, g64, b64, eps)
        if hint is not None:
            return failed(ex, f"{case} {hint}")
        return failed(ex, f"{case} the numbers differ from (x - mean) / sqrt(var + eps) * gain + "
                          "bias, with mean and (biased) variance over the last axis.")
    return passed(ex, "mean and biased variance over each token's features, eps inside the square "
                      "root, then gain and bias: torch.nn.LayerNorm, written out.")


# --- exercise: the pre-norm block --------------------------------------------------------------

def _sublayers(C: int, H: int, seed: int):
    """(ln_1, attn, ln_2, mlp) as functions (B, T, C) -> (B, T, C), with distinct random weights."""
    torch.manual_seed(seed)  # the modules draw their weights here; the caller restores the state
    ln_1, ln_2 = LayerNorm(C), LayerNorm(C)
    with torch.no_grad():  # different gains and shifts, so swapping ln_1 and ln_2 shows
        for ln in (ln_1, ln_2):
            ln.weight.copy_(1 + 0.5 * torch.randn(C))
            ln.bias.copy_(0.5 * torch.randn(C))
    mha = MultiHeadAttention(AttentionConfig(C, H, causal=True))
    mlp = FeedForward(C)
    for m in (ln_1, ln_2, mha, mlp):
        m.eval().requires_grad_(False)

    def attn(h):
        """Causal multi-head self-attention, (B, T, C) -> (B, T, C)."""
        return mha(h).output

    return ln_1, attn, ln_2, mlp


def _block_variants(x, ln_1, attn, ln_2, mlp):
    """The right pre-norm block first, then (output, hint) for each typical mistake."""
    def pre(x, f1, n1, f2, n2):
        x = x + f1(n1(x))
        return x + f2(n2(x))

    h = ln_1(x)
    stream = h + attn(h)
    right = pre(x, attn, ln_1, mlp, ln_2)
    return right, [
        (ln_2(ln_1(x + attn(x)) + mlp(ln_1(x + attn(x)))),
         "this is the post-norm block of the original 2017 Transformer: LayerNorm *after* each "
         "residual addition. GPT-2's pre-norm block normalises the sublayer's input and leaves "
         "the stream alone: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))."),
        (mlp(ln_2(attn(ln_1(x)))),
         "both residual additions are missing: each sublayer's output is *added* to x, "
         "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))."),
        (mlp(ln_2(x + attn(ln_1(x)))),
         "the residual addition around the MLP is missing: x = x + mlp(ln_2(x))."),
        (attn(ln_1(x)) + mlp(ln_2(attn(ln_1(x)))),
         "the residual addition around attention is missing: x = x + attn(ln_1(x))."),
        (ln_2(stream) + mlp(ln_2(stream)),
         "you normalised the residual stream itself (x = ln_1(x), then x = x + attn(x)). Keep x "
         "as it is and normalise only what goes into the sublayer: x = x + attn(ln_1(x))."),
        (x + attn(ln_1(x)) + mlp(ln_2(x)),
         "the MLP must see the stream *after* attention's update: first x = x + attn(ln_1(x)), "
         "then x = x + mlp(ln_2(x)) with the new x."),
        (pre(x, mlp, ln_2, attn, ln_1),
         "the sublayers are in the wrong order: attention first (tokens exchange information), "
         "then the MLP (each token on its own)."),
        (pre(x, attn, ln_2, mlp, ln_1),
         "ln_1 and ln_2 are swapped: ln_1 goes before attention, ln_2 before the MLP."),
        (pre(x, attn, ln_1, mlp, ln_1),
         "you used ln_1 twice: the MLP has its own LayerNorm, ln_2, with its own gain and bias."),
        (ln_2(right),
         "the block's output should not be normalised: return x after the second addition. (GPT "
         "normalises once, after the last block, with its own ln_f.)"),
    ]


def check_block_forward(block_fn) -> Verdict:
    """Check block_forward(x, ln_1, attn, ln_2, mlp): x + attn(ln_1(x)), then x + mlp(ln_2(x))."""
    ex = "block_forward(x, ln_1, attn, ln_2, mlp)"
    state = torch.get_rng_state()
    try:
        B, T, H, d = distinct_sizes((1, 3), (4, 9), (2, 4), (5, 8))  # drawn afresh on every check
        cases = [(_sublayers(C, H, seed=100 + n), torch.randn(B, T, C, generator=_gen(110 + n)))
                 for n, (B, T, C, H) in enumerate(((2, 5, 12, 3), (1, 7, 8, 2)))]
        seed = fresh_seed()
        cases.append((_sublayers(H * d, H, seed=seed), torch.randn(B, T, H * d, generator=_gen(seed))))
    finally:
        torch.set_rng_state(state)
    for (ln_1, attn, ln_2, mlp), x in cases:
        result, verdict = _call_unchanged(ex, block_fn, x, ln_1, attn, ln_2, mlp)
        if verdict is not None:
            return verdict
        got, verdict = _as_tensor(result, ex)
        if verdict is not None:
            return verdict
        with torch.no_grad():
            right, mistakes = _block_variants(x, ln_1, attn, ln_2, mlp)
        if _same(got, right.double()):
            continue
        case = f"For x of shape (B, T, C) = {tuple(x.shape)}"
        if got.shape != right.shape:
            return failed(ex, f"{case} the block should return the shape of x; yours has "
                              f"{tuple(got.shape)}. Every sublayer maps (B, T, C) to (B, T, C).")
        for wrong, hint in mistakes:
            if _same(got, wrong.double()):
                return failed(ex, f"{case} {hint}")
        return failed(ex, f"{case} the output is not x + attn(ln_1(x)) followed by "
                          "x + mlp(ln_2(x)). Use the four functions you are given, each once.")
    return passed(ex, "normalise, transform, add back, twice: the GPT-2 block. The residual stream "
                      "itself is never normalised.")


# --- exercise: count a block's parameters ------------------------------------------------------

def _count_mistakes(C: int, bias: bool) -> list[tuple[int, str, str]]:
    """(how much the count changes, part of the block, hint) for each typical slip.

    Two slips combine only when they concern different parts (a LayerNorm cannot be both
    missing and half counted).
    """
    b = int(bias)
    if bias:
        slips = [
            (-C * C - b * C, "attn",
             "the attention's output projection is missing: W_o (c_proj) is C x C, and it is "
             "there whatever the number of heads."),
            (-2 * C * C - 2 * b * C, "qkv",
             "the query/key/value projection is counted as C x C, but it makes three vectors per "
             "token: c_attn is C x 3C (plus 3C biases)."),
            (-4 * C * C - b * C, "mlp",
             "the MLP's second Linear is missing: c_fc widens C to 4C (C x 4C weights, 4C "
             "biases), then c_proj narrows 4C back to C (4C x C weights, C biases)."),
            (-6 * C * C - 3 * b * C, "mlp",
             "the MLP is not 4 times wider inside: c_fc maps C to 4C and c_proj 4C back to C, "
             "8 C² weights in all."),
            (3 * b * C, "bias",
             "the MLP's second bias is counted as 4C numbers: c_proj maps 4C back to C, so its "
             "bias has C."),
            (-4 * C, "ln", "the two LayerNorms are missing: each has a gain and a bias of C "
                           "numbers."),
            (-2 * C, "ln",
             "the LayerNorms are 2C short: either one of the two is missing (a block has ln_1 "
             "before attention and ln_2 before the MLP), or each is counted with its gain only "
             "(each has a gain *and* a bias, C numbers each). Two LayerNorms: 4C in all."),
            (-9 * C, "bias",
             "the biases of the four Linear layers are missing: 3C (c_attn) + C (attention "
             "c_proj) + 4C (c_fc) + C (MLP c_proj) = 9C."),
        ]
    else:
        slips = [
            (-2 * C, "ln",
             "the LayerNorm gains are missing: with bias=False the Linear layers and the "
             "LayerNorms lose their biases, but each LayerNorm keeps its gain, 2C for the two."),
            (2 * C, "ln",
             "the LayerNorm biases are still counted: with bias=False the LayerNorms have no bias "
             "either (GPTConfig's bias flag turns off every bias), only their gains, 2C."),
            (11 * C, "bias", "your count ignores bias=False: then no Linear layer or LayerNorm has "
                             "a bias."),
            (9 * C, "bias", "the Linear layers' biases are still counted: with bias=False they "
                            "have none."),
            (-C * C, "attn", "the attention's output projection is missing: W_o (c_proj) is "
                             "C x C, whatever the number of heads."),
            (-2 * C * C, "qkv", "the query/key/value projection is counted as C x C: it makes "
                                "three vectors per token, so c_attn is C x 3C."),
            (-4 * C * C, "mlp", "the MLP's second Linear is missing: C x 4C, then 4C x C, "
                                "8 C² weights in all."),
        ]
    return [slip for slip in slips if slip[0] != 0]


def check_count_block_parameters(count_fn) -> Verdict:
    """Check count_block_parameters(C, bias) -> the number of parameters of one Block, by hand."""
    ex = "count_block_parameters(C, bias)"
    # Widths well above the coefficients of C, so that no C² slip can pass for a slip in C.
    widths = (48, 80, 768, distinct_sizes((100, 700))[0])  # the last drawn afresh on every check
    cases = list(itertools.product((True, False), widths))
    answers = {}  # (bias, C) -> the learner's count
    for bias, C in cases:
        result, verdict = call_safely(ex, count_fn, C, bias)
        if verdict is not None:
            return verdict
        answers[bias, C] = as_count(result)
        if answers[bias, C] is None:
            return failed(ex, f"return a whole number (an int), got {result!r}. Did you forget "
                              "a `return`?")
    if len({answers[True, C] for _, C in cases}) == 1:
        return failed(ex, "your function returns the same count for every width: compute it from "
                          "the argument C, not from a variable elsewhere in the notebook.")
    for bias, C in cases:
        got, want = answers[bias, C], block_parameter_count(C, bias)
        if got == want:
            continue
        case = f"For C = {C}, bias = {bias} a block has {want:,} parameters; yours says {got:,}."
        slips = _count_mistakes(C, bias)
        for n in (1, 2):  # the simplest explanation first, then two slips at once
            for combo in itertools.combinations(slips, n):
                parts = {part for _, part, _ in combo}
                if len(parts) == n and want + sum(delta for delta, _, _ in combo) == got:
                    return failed(ex, f"{case} It looks as if " + " Also, ".join(
                        hint for _, _, hint in combo))
        return failed(ex, f"{case} Count layer by layer: ln_1 and ln_2 (gain + bias: 2C each), "
                          "c_attn (C x 3C + 3C), attention c_proj (C x C + C), mlp c_fc "
                          "(C x 4C + 4C), mlp c_proj (4C x C + C). With bias=False only the "
                          "matrices and the two gains remain.")
    return passed(ex, "12 C² + 13 C with biases, 12 C² + 2 C without: two thirds of the weights "
                      "are in the MLP.")
