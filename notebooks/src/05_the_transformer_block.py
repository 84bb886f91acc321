# %% [markdown]
# # 05 · The transformer block
#
# Lesson 04 ended with one layer of multi-head attention. A language model needs many: GPT-2 small
# stacks 12 layers, GPT-3 stacks 96. Stack attention layers naively, though, and the stack stops
# working long before it gets that deep. This lesson builds the **transformer block**, the unit
# that every GPT repeats, by adding three pieces around attention:
#
# $$x \leftarrow x + \mathrm{attn}(\mathrm{LN}_1(x)), \qquad
#   x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x)).$$
#
# Each piece is there for a reason you can measure, so for each one we first run an experiment
# that shows what goes wrong without it, then add it and run the experiment again. At the end we
# train the same small model on Shakespeare with and without each piece.
#
# **What you will learn**
#
# - why a tall stack of plain layers fails: the scale of its signal shrinks or grows geometrically
#   with depth, and its tokens end up as one and the same vector;
# - to build **LayerNorm** from scratch (mean, biased variance, eps, gain and bias) and check it
#   against `llmlab.transformer.LayerNorm` and `torch.nn.LayerNorm`;
# - what a **residual path** $x + f(x)$ does to the signal going up and to the gradient coming down;
# - what the position-wise **feed-forward MLP** adds to attention, and why it is 4 times wider;
# - the **pre-norm** block of GPT-2, and how it differs from the **post-norm** block of the
#   original Transformer;
# - what each piece does to training, in an experiment on Tiny Shakespeare;
# - to **count the parameters** of a block ($12C^2 + 13C$) and of a whole GPT by hand, and check
#   the count with code.
#
# **Prerequisites:** lessons 03 and 04 (attention, multi-head and causal self-attention,
# `MultiHeadAttention`, learned positions). From lesson 02: cross-entropy and gradient descent. From
# PyTorch: `nn.Module`, `nn.Linear`, `.backward()`.
#
# **Estimated time:** about 60 minutes. The notebook runs in about a minute on a 2-core CPU, most
# of it in the training experiment of section 6.

# %%
%matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

import llmlab
from llmlab import checks
from llmlab.data import load_text, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, train
from llmlab.transformer import (Block, BlockConfig, FeedForward, LayerNorm, block_parameter_count,
                                count_parameters)

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: shorter training in section 6
llmlab.set_seed(0)
torch.set_num_threads(1)  # small tensors: one thread is as fast as two, and leaves a core free
print(f"quick mode: {QUICK}")

# %% [markdown]
# ## 1. A tall stack of plain layers
#
# `llmlab.transformer.Block` is the finished block, with two switches that take pieces away:
# `residual=False` drops the residual paths and `norm=False` the LayerNorms. With both off, a block
# is just attention followed by an MLP (section 4 explains the MLP):
#
# ```python
# x = attn(x)   # causal multi-head self-attention, lesson 04
# x = mlp(x)    # a small two-layer network applied to every token
# ```
#
# Let's stack 12 of these and push random token vectors through: 4 sequences of 16 tokens, width
# $C = 32$, every number drawn with standard deviation 1. After each block we measure the standard
# deviation of the numbers, a quick measure of the *scale* of the signal.
#
# Training changes the size of the weights, so we also try the same stack with every weight matrix
# halved and doubled. (The blocks here have no biases, so that only the weights set the scale.)

# %%
C, H, DEPTH = 32, 4, 12
x_in = torch.randn(4, 16, C, generator=torch.Generator().manual_seed(1))   # (B, T, C), std 1
SCALES = (0.5, 1.0, 2.0)


def make_stack(residual, norm, weight_scale=1.0, seed=0):
    """DEPTH blocks of width C without biases; every weight matrix multiplied by weight_scale."""
    torch.manual_seed(seed)                                # the same weights for every variant
    config = BlockConfig(C, H, bias=False, residual=residual, norm=norm)
    blocks = nn.Sequential(*[Block(config) for _ in range(DEPTH)])
    with torch.no_grad():
        for p in blocks.parameters():
            if p.dim() == 2:                               # weight matrices; LayerNorm gains stay 1
                p.mul_(weight_scale)
    return blocks


def std_after_each_block(blocks, x):
    """The standard deviation of the signal after each block."""
    stds = []
    with torch.no_grad():
        for block in blocks:
            x = block(x)                                   # (B, T, C)
            stds.append(x.std().item())
    return stds


plain_stds = {s: std_after_each_block(make_stack(False, False, s), x_in) for s in SCALES}
print(f"{'weight scale':>12} {'after block 1':>14} {'block 6':>9} {'block 12':>9}")
for s, stds in plain_stds.items():
    print(f"{s:>12} {stds[0]:>14.2g} {stds[5]:>9.2g} {stds[11]:>9.2g}")

# %%
blocks_axis = range(1, DEPTH + 1)
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
for s, stds in plain_stds.items():
    ax.plot(blocks_axis, stds, "o-", ms=3, label=f"weights × {s}")
ax.set(yscale="log", xlabel="block", ylabel="std of the signal", xticks=blocks_axis,
       title="12 plain blocks (no residual, no LayerNorm)")
ax.legend()
plt.show()

# %% [markdown]
# On a log scale the lines are (roughly) straight: every block multiplies the scale of the signal
# by about the same factor, so after 12 blocks the scale is that factor to the 12th power. With the
# weights as PyTorch initialises them, the signal shrinks to $10^{-16}$. Halve the weights and it
# shrinks to $10^{-30}$; double them and it grows instead, and it would grow faster the taller the
# stack.
#
# Why does the signal shrink even with PyTorch's own weights? Part of the answer is that
# initialisation. `nn.Linear` draws its weights with `kaiming_uniform_(a=sqrt(5))`, which works out
# to $W_{ij} \sim U\!\left(-1/\sqrt{n_{in}},\, 1/\sqrt{n_{in}}\right)$, a variance of
# $1/(3\,n_{in})$. A linear map $y = Wx$ with inputs of variance 1 then gives outputs of variance
# $n_{in} \cdot 1/(3\,n_{in}) = 1/3$: every layer multiplies the standard deviation by about
# $1/\sqrt{3} \approx 0.58$. A *variance-preserving* initialisation would use variance
# $1/n_{in}$ (LeCun's rule; He et al., 2015 double it for ReLU). Attention then averages value
# vectors, which shrinks the signal further. Let's measure the first factor on its own:

# %%
linear = nn.Linear(C, C, bias=False)                       # PyTorch's default initialisation
with torch.no_grad():
    ratio = (linear(x_in).std() / x_in.std()).item()       # x_in: (B, T, C), std 1
print(f"nn.Linear({C}, {C}) default init: weight variance x fan_in = "
      f"{linear.weight.var().item() * C:.3f} (1/3 = {1 / 3:.3f}); output std / input std = "
      f"{ratio:.3f} (1/sqrt(3) = {1 / math.sqrt(3):.3f})")
assert abs(ratio - 1 / math.sqrt(3)) < 0.1, "the default init should shrink the signal by about 1/sqrt(3)"

# %% [markdown]
# Two things make this fatal for training. A signal of $10^{-16}$ is next to nothing: the output,
# and so the loss, hardly depends on the input or on the weights, and the gradients are just as
# tiny (section 3 measures them). And the network's behaviour depends so steeply on the size of
# its weights that every gradient step, which changes those sizes, changes the scale of
# everything above it.
#
# ## 2. LayerNorm: every sublayer sees numbers of the same size
#
# **Layer normalisation** (Ba, Kiros & Hinton, 2016, *Layer Normalization*) takes each token's vector of $C$ numbers on its own, and shifts and
# rescales it to mean 0 and variance 1:
#
# $$\mu = \frac{1}{C}\sum_{i=1}^{C} x_i, \qquad \sigma^2 = \frac{1}{C}\sum_{i=1}^{C} (x_i - \mu)^2,
# \qquad \mathrm{LN}(x)_i = \gamma_i \, \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_i .$$
#
# - $\epsilon$ (eps, $10^{-5}$ by default) keeps the division finite when all of a token's numbers
#   are equal and $\sigma^2 = 0$.
# - The **gain** $\gamma$ and **bias** $\beta$ are learned, one number per feature. They start at 1
#   and 0 (so LN starts as a pure normalisation) and let the network choose the scale and offset of
#   each feature. The scale becomes a parameter the network sets on purpose, no longer a
#   by-product of every layer below.
# - The variance divides by $C$, not $C - 1$: it describes *these* $C$ numbers, it does not estimate
#   a population. Careful: `torch.var` and `Tensor.std` divide by $C - 1$ unless told otherwise.
#
# One token of four numbers, by hand:

# %%
# NBVAL_CHECK_OUTPUT
token = torch.tensor([3.0, 5.0, 7.0, 9.0])                 # (C,) one token, C = 4
mean = token.mean()                                        # 6
var = ((token - mean) ** 2).mean()                         # (9 + 1 + 1 + 9) / 4 = 5, dividing by C
normalised = (token - mean) / torch.sqrt(var + 1e-5)
print("token       ", token.tolist())
print(f"mean {mean.item():.1f}, variance {var.item():.1f}; torch.var's default gives "
      f"{token.var().item():.3f} (divides by C - 1)")
print("normalised  ", [round(v, 3) for v in normalised.tolist()])
print(f"its mean {normalised.mean().item():.3f}, its variance {normalised.var(unbiased=False).item():.3f}")

# %% [markdown]
# Now the same for a whole batch `(B, T, C)`. The mean and the variance are taken over the **last
# axis only**, the features of one token, with `keepdim=True` so that they broadcast back over the
# token's $C$ numbers. Then the inline version must agree with `llmlab.transformer.LayerNorm` and
# with PyTorch's `torch.nn.LayerNorm`, given the same gain and bias.

# %%
B, T = 2, 5
x = 3 * torch.randn(B, T, C) + 2                           # (B, T, C): mean 2, std 3
gain = 1 + 0.3 * torch.randn(C)                            # (C,) as if learned
bias = 0.3 * torch.randn(C)                                # (C,)

mu = x.mean(dim=-1, keepdim=True)                          # (B, T, 1): one mean per token
var = x.var(dim=-1, keepdim=True, unbiased=False)          # (B, T, 1): divide by C
ours = (x - mu) / torch.sqrt(var + 1e-5) * gain + bias     # (B, T, C)

ln_llmlab, ln_torch = LayerNorm(C), nn.LayerNorm(C)
with torch.no_grad():
    for ln in (ln_llmlab, ln_torch):
        ln.weight.copy_(gain)
        ln.bias.copy_(bias)
    torch.testing.assert_close(ln_llmlab(x), ours)
    torch.testing.assert_close(ln_torch(x), ours)
print("inline LayerNorm == llmlab.transformer.LayerNorm == torch.nn.LayerNorm")

x_hat = (x - mu) / torch.sqrt(var + 1e-5)                  # before gain and bias
print(f"every token: mean within {x_hat.mean(-1).abs().max():.1e} of 0, "
      f"variance within {(x_hat.var(-1, unbiased=False) - 1).abs().max():.1e} of 1")

# %% [markdown]
# The key property: LayerNorm does not care about the scale of its input. Multiply a token by 10,
# add 3 to every feature: the output is the same (up to the tiny eps).

# %%
with torch.no_grad():
    torch.testing.assert_close(ln_llmlab(10 * x + 3), ln_llmlab(x), atol=1e-4, rtol=1e-4)
print("LN(10 x + 3) == LN(x)")

# %% [markdown]
# Two things LayerNorm does *not* do. It does not look at other tokens: each token is normalised on
# its own, so it behaves the same for a batch of one, and it never mixes information between
# positions (the causal mask stays intact). That is the difference from *batch*
# normalisation, which computes statistics across the examples of a batch and is rarely used in
# transformers. And it does not normalise the residual stream of a GPT; it normalises what goes
# *into* each sublayer, as section 5 shows.
#
# ### Back to the stack
#
# `norm=True` puts a LayerNorm in front of attention and one in front of the MLP of every block
# (still without residual paths): `x = attn(ln_1(x)); x = mlp(ln_2(x))`. The same experiment:

# %%
ln_stds = {s: std_after_each_block(make_stack(False, True, s), x_in) for s in SCALES}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", sharey=True)
for ax, stds_by_scale, title in ((axes[0], plain_stds, "no LayerNorm"),
                                 (axes[1], ln_stds, "LayerNorm before each sublayer")):
    for s, stds in stds_by_scale.items():
        ax.plot(blocks_axis, stds, "o-", ms=3, label=f"weights × {s}")
    ax.set(yscale="log", xlabel="block", title=title, xticks=blocks_axis)
axes[0].set_ylabel("std of the signal")
axes[1].legend()
plt.show()

# %% [markdown]
# With LayerNorm the lines are flat. Every sublayer now receives numbers of variance 1 whatever
# happened below it, so nothing compounds: the scale of a block's output depends only on that
# block's own weights, and the weights' size shows as a constant offset, not as a power of 12.
#
# ## 3. Residual paths: a straight road through the stack
#
# LayerNorm fixed the scale. Is the stack healthy now? Look at *what* reaches the top rather than
# how big it is. Attention replaces every token's vector by a weighted average of token vectors;
# stack averages of averages and the tokens grow alike. We measure how alike with the mean cosine
# similarity between the vectors of different tokens in a sequence: about 0 for our random input,
# 1 if every token carries the same direction.

# %%
def token_similarity(blocks, x):
    """After each block: mean cosine similarity between different tokens of the same sequence."""
    sims = []
    with torch.no_grad():
        for block in blocks:
            x = block(x)                                   # (B, T, C)
            u = x / x.norm(dim=-1, keepdim=True)           # (B, T, C) unit vectors
            cos = u @ u.transpose(-2, -1)                  # (B, T, T)
            T = x.shape[1]
            sims.append(((cos.sum(dim=(-2, -1)) - T) / (T * (T - 1))).mean().item())  # off-diagonal
    return sims


SHOWN = (1, 3, 6, 12)                                      # blocks to print, counted from 1
ln_sims = token_similarity(make_stack(False, True), x_in)
print(f"similarity of tokens after blocks {', '.join(map(str, SHOWN))} (LayerNorm, no residual):",
      [round(ln_sims[b - 1], 2) for b in SHOWN])

# %% [markdown]
# After a handful of blocks, every token is (nearly) the same vector. A model whose last layer
# cannot tell its tokens apart predicts the same next token at every position, whatever the text.
#
# The fix is to keep each token's own vector and let a sublayer only *add* to it, the **residual
# connection** of ResNets (He et al., 2016, *Deep Residual Learning for Image Recognition*), which
# made networks of 100 and more layers trainable in vision:
#
# $$x \leftarrow x + f(x).$$
#
# The vector $x$ that runs from the embeddings to the output, collecting one update per sublayer,
# is called the **residual stream**. A sublayer reads from the stream and writes an update into it;
# it no longer replaces what was there. A block that has nothing useful to add can learn
# $f(x) \approx 0$ and let the stream pass through unchanged.
#
# The same path works backwards. The derivative of $x + f(x)$ with respect to $x$ is
# $I + \partial f / \partial x$: the identity plus whatever $f$ contributes. Backpropagation through
# $L$ blocks multiplies $L$ of these factors, and expanding the product gives a sum of paths, one of
# which is the identity all the way down. The gradient of the loss with respect to the top of the
# stream reaches the bottom unchanged, plus corrections: a **gradient highway**. Without residual
# paths, the gradient must pass through every sublayer's derivative in turn, and a product of $L$
# factors shrinks or grows geometrically, just like the signal in section 1.
#
# Let's measure both: the similarity of tokens, and the gradient that reaches each block. The loss
# is a stand-in for a language model's: a fixed random read-out of the top of the stack (after a
# final LayerNorm, as in GPT), scored with cross-entropy against random "next tokens".

# %%
def gradient_norms(blocks, x, seed=2):
    """The norm of the gradient of each block's parameters, for a stand-in next-token loss."""
    g = torch.Generator().manual_seed(seed)
    readout = torch.randn(C, 65, generator=g) / math.sqrt(C)   # (C, V): a random output layer
    targets = torch.randint(65, x.shape[:2], generator=g)       # (B, T): random next tokens
    blocks.zero_grad()
    logits = F.layer_norm(blocks(x), (C,)) @ readout            # (B, T, V)
    F.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    return [torch.cat([p.grad.flatten() for p in block.parameters()]).norm().item()
            for block in blocks]


VARIANTS = {"plain": (False, False), "LayerNorm only": (False, True),
            "residual only": (True, False), "residual + LayerNorm": (True, True)}
sims = {name: token_similarity(make_stack(*flags), x_in) for name, flags in VARIANTS.items()}
grads = {name: gradient_norms(make_stack(*flags), x_in) for name, flags in VARIANTS.items()}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
for (name, colour) in zip(VARIANTS, ["#999999", "#4c72b0", "#dd8452", "#55a868"]):
    style = dict(marker="o", ms=3, label=name, color=colour)
    axes[0].plot(blocks_axis, sims[name], **style)
    axes[1].plot(blocks_axis, grads[name], **style)
axes[0].set(xlabel="block", ylabel="mean cosine similarity of tokens", ylim=(-0.05, 1.05),
            title="do the tokens stay distinct?", xticks=blocks_axis)
axes[1].set(xlabel="block", ylabel="gradient norm", yscale="log", xticks=blocks_axis,
            title="gradient reaching each block")
axes[1].legend(loc="center right", fontsize=8)
plt.show()

# %% [markdown]
# Read the two panels together:
#
# - **Plain** (no residual, no LayerNorm): the tokens merge, and the gradient of every block is
#   about $10^{-13}$. The signal had all but vanished on the way up, so the loss barely depends on
#   any weight: nothing can learn.
# - **LayerNorm only**: gradients of a healthy size, but the tokens of a sequence still merge into
#   one vector, so the top of the stack cannot make a different prediction at each position.
# - **Residual only**: the tokens stay distinct and the gradient is about the same at every block,
#   the highway at work. But without LayerNorm the stream's scale still depends on the weights'.
# - **Residual + LayerNorm**: distinct tokens and an even gradient at every depth.
#
# How robust is each version to the size of the weights? Here is the gradient at the *first* block
# for the three weight scales of section 1:

# %%
print(f"{'gradient at block 1':>21}" + "".join(f"{'weights × ' + str(s):>14}" for s in SCALES))
for name, flags in VARIANTS.items():
    row = [gradient_norms(make_stack(*flags, weight_scale=s), x_in)[0] for s in SCALES]
    print(f"{name:>21}" + "".join(f"{g:>14.2g}" for g in row))
stream = std_after_each_block(make_stack(True, True), x_in)
print(f"\nresidual + LayerNorm, std of the stream after blocks 1, 6, 12: "
      f"{stream[0]:.2f}, {stream[5]:.2f}, {stream[11]:.2f}")

# %% [markdown]
# The plain stack's first block gets no gradient at all (0 means it underflowed) or $10^{-13}$, and
# only with doubled weights a usable one. Each fix alone leaves a weakness: LayerNorm alone keeps
# the gradient in range but loses the tokens, the residual path alone lets the stream's scale (and
# gradient) grow with the weights. With both, the first block gets a gradient between 0.3 and 2 for
# every scale.
#
# The last line is a look at the residual stream: it grows slowly with depth, because every
# sublayer adds an update to it. GPT-2 shrinks the initial
# weights of the two projections that write into the stream by $1/\sqrt{2 \cdot n_{layer}}$ to
# compensate; lesson 06's GPT does the same.
#
# ## 4. The MLP: thinking about each token on its own
#
# Attention moves information *between* positions. The second sublayer, the **feed-forward
# network** or **MLP**, works on each position separately, with the same weights at every position:
#
# $$\mathrm{MLP}(x) = W_2\, \mathrm{GELU}(W_1 x + b_1) + b_2, \qquad
#   W_1: C \to 4C, \quad W_2: 4C \to C.$$
#
# The hidden layer is 4 times wider than the stream: room for $4C$ feature detectors per token,
# whose results are folded back to width $C$. (The factor 4 comes from the original Transformer:
# 512 → 2048 → 512; GPT-2 kept it.) **GELU** is a smooth cousin of ReLU,
# $\mathrm{GELU}(x) = x\,\Phi(x)$ with $\Phi$ the normal distribution's CDF: it lets small negative
# values through a little and has no kink at 0 (Hendrycks & Gimpel, 2016, *Gaussian Error Linear
# Units*). GPT-2 uses a tanh approximation of it, and so does
# `llmlab`, so that GPT-2's weights can be loaded later.
#
# Built inline from `FeedForward`'s own weights (an `nn.Linear` stores $W$ as `(out, in)`, so
# `x @ W.T`), it must agree with `FeedForward`:

# %%
mlp = FeedForward(C)                                        # c_fc: C -> 4C, GELU, c_proj: 4C -> C
x = torch.randn(B, T, C)                                    # (B, T, C)
with torch.no_grad():
    hidden = x @ mlp.c_fc.weight.T + mlp.c_fc.bias          # (B, T, 4C)
    hidden = F.gelu(hidden, approximate="tanh")             # (B, T, 4C)
    out = hidden @ mlp.c_proj.weight.T + mlp.c_proj.bias    # (B, T, C)
    torch.testing.assert_close(mlp(x), out)
print("inline MLP == llmlab.transformer.FeedForward;", "hidden layer", tuple(hidden.shape))

# %%
z = torch.linspace(-4, 4, 201)
fig, ax = plt.subplots(figsize=(5, 3.2), layout="constrained")
ax.plot(z, F.relu(z), label="ReLU", color="grey", ls="--")
ax.plot(z, F.gelu(z), label="GELU, x·Φ(x)")
ax.plot(z, F.gelu(z, approximate="tanh"), label="GELU, tanh approximation", ls=":", lw=2.5)
ax.set(xlabel="input", ylabel="output", title="GELU: a smooth ReLU")
ax.legend()
plt.show()
print(f"largest gap between exact GELU and its tanh approximation on [-4, 4]: "
      f"{(F.gelu(z) - F.gelu(z, approximate='tanh')).abs().max():.1e}")

# %% [markdown]
# "Position-wise" is a testable claim. Change only the *first* token of a sequence and see which
# outputs change, for a causal attention layer and for the MLP:

# %%
# NBVAL_CHECK_OUTPUT
block = Block(BlockConfig(C, H)).eval()                     # a fresh block: we borrow its sublayers
x = torch.randn(1, 6, C, generator=torch.Generator().manual_seed(3))   # (1, T, C)
x_changed = x.clone()
x_changed[0, 0] += 1.0                                      # change token 0 only
with torch.no_grad():
    for name, layer in (("attention", lambda h: block.attn(h).output), ("MLP", block.mlp)):
        moved = (layer(x_changed) - layer(x)).abs().amax(dim=-1)[0] > 1e-6   # (T,)
        print(f"{name:>9}: outputs that changed at positions {moved.nonzero().flatten().tolist()}")

# %% [markdown]
# The MLP's output changed only at position 0; attention's changed everywhere, since every later
# token can see token 0. That is the division of labour inside a block: **attention lets tokens
# exchange information, the MLP processes what each token has gathered**. Attention's output is a
# weighted average of value vectors; the MLP is where each token's vector goes through a nonlinear
# function with many parameters. It holds two thirds of a block's weights (section 7), and studies
# of trained models suggest much of what a language model "knows" is stored there (Geva et al.,
# 2021, *Transformer Feed-Forward Layers Are Key-Value Memories*).
#
# ## 5. The block: pre-norm (GPT-2) and post-norm (the original Transformer)
#
# Put the pieces together. GPT-2's block is **pre-norm**: the LayerNorm sits at the *entrance* of
# each sublayer, inside the residual branch, and the stream itself is never normalised:
#
# ```python
# x = x + attn(ln_1(x))
# x = x + mlp(ln_2(x))
# ```
#
# Written with the sublayers of `llmlab`'s `Block`, it must reproduce `Block` exactly:

# %%
def pre_norm_block(block, x):
    """GPT-2's order: normalise the sublayer's input, add its output to the stream."""
    x = x + block.attn(block.ln_1(x)).output               # (B, T, C)
    x = x + block.mlp(block.ln_2(x))                       # (B, T, C)
    return x


def post_norm_block(block, x):
    """The 2017 Transformer's order: add the sublayer's output, then normalise the stream."""
    x = block.ln_1(x + block.attn(x).output)               # (B, T, C)
    x = block.ln_2(x + block.mlp(x))                       # (B, T, C)
    return x


x = 2 * torch.randn(B, T, C)                               # (B, T, C)
with torch.no_grad():
    torch.testing.assert_close(pre_norm_block(block, x), block(x))
    post = post_norm_block(block, x)
assert not torch.allclose(post, block(x), atol=1e-3)
print("pre_norm_block == llmlab's Block; the post-norm order gives a different function")
with torch.no_grad():
    print(f"std of each token's output: pre-norm {block(x).std(-1).mean():.2f}, "
          f"post-norm {post.std(-1).mean():.2f} (every token normalised)")

# %% [markdown]
# The **original Transformer** (Vaswani et al., 2017) was **post-norm**: $x \leftarrow
# \mathrm{LN}(x + \mathrm{sublayer}(x))$, so the stream is normalised after every addition. BERT
# and GPT-1 kept that order. **GPT-2** (2019) moved the LayerNorm to the input of each sublayer and
# added one final LayerNorm after the last block (`ln_f`), since the pre-norm stream reaches the
# top unnormalised (its std above is that of $x$, plus the blocks' updates). GPT-3 kept the GPT-2
# order, and most large language models since are pre-norm too. Many, Llama among them, also swap
# LayerNorm for **RMSNorm** (Zhang & Sennrich, 2019), which divides each token by the root mean
# square of its features: it has neither the mean-centering nor the bias of LayerNorm, only a gain.
#
# | | post-norm | pre-norm |
# |---|---|---|
# | one sublayer | `x = ln(x + f(x))` | `x = x + f(ln(x))` |
# | residual stream | normalised after every sublayer | never normalised; one `ln_f` at the top |
# | identity path from top to bottom | interrupted by a LayerNorm at every step | clean |
# | used by | 2017 Transformer, BERT, GPT-1 | GPT-2, GPT-3, most LLMs since |
#
# Because the pre-norm stream has a clean identity path, the gradient highway of section 3 runs
# through it undisturbed. Xiong et al. (2020, *On Layer Normalization in the Transformer
# Architecture*) showed that post-norm Transformers depend on a learning-rate warm-up to train
# well, while pre-norm ones can train without it; that robustness is why GPT-2's order won.
# (Post-norm models that do train well can end up slightly better, e.g. Liu et al., 2020, but
# pre-norm is the safe default.)
#
# ## 6. The experiment: what each piece does to training
#
# Time for the real test. We train small character-level language models on Tiny Shakespeare with
# the course's training loop (`llmlab.training.train`: AdamW, warm-up and cosine decay, gradient
# clipping), all with the same data, settings and random seed:
#
# - **full block**: 6 blocks of width 32 with 4 heads, residual paths, LayerNorm and MLP;
# - **no residual**: the same with `residual=False`;
# - **no LayerNorm**: the same with `norm=False` (and no final LayerNorm);
# - **no MLP**: every block's MLP (and the LayerNorm in front of it) removed, so each block is
#   attention only: `x = x + attn(ln_1(x))`.
#
# The model is a GPT in miniature, written out here because `llmlab.gpt.GPT` has no switches to take
# pieces away: token and position embeddings, the stack, a final LayerNorm and a linear head.
# Weights start as in GPT-2, from a normal distribution with standard deviation 0.02, biases at 0.

# %%
def attention_only(block, x):
    """A pre-norm block without its MLP: x + attn(ln_1(x))."""
    return x + block.attn(block.ln_1(x)).output             # (B, T, C)


class TinyStack(nn.Module):
    """Embeddings, n_layer Blocks (pieces switchable), a final LayerNorm and a linear head."""

    def __init__(self, vocab_size, block_size, n_layer, n_embd, n_head, residual=True,
                 norm=True, mlp=True):
        super().__init__()
        self.vocab_size = vocab_size                        # train() checks the token ids against it
        self.wte = nn.Embedding(vocab_size, n_embd)         # token -> vector
        self.wpe = nn.Embedding(block_size, n_embd)         # position -> vector (learned, lesson 04)
        config = BlockConfig(n_embd, n_head, residual=residual, norm=norm)
        self.blocks = nn.ModuleList([Block(config) for _ in range(n_layer)])
        self.use_mlp = mlp
        if not mlp:                                         # drop the MLPs' parameters altogether
            for block in self.blocks:
                del block.ln_2, block.mlp
        self.ln_f = LayerNorm(n_embd) if norm else nn.Identity()
        self.head = nn.Linear(n_embd, vocab_size)
        for module in self.modules():                       # GPT-2's initialisation
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab_size) for token ids idx (B, T), and the loss if targets are given."""
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))   # (B, T, C)
        for block in self.blocks:
            x = block(x) if self.use_mlp else attention_only(block, x)    # (B, T, C)
        logits = self.head(self.ln_f(x))                                   # (B, T, vocab_size)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())

# %% [markdown]
# The data: the first 200,000 characters of Tiny Shakespeare, the last tenth held out for
# validation. A useful yardstick is the **unigram loss**: the cross-entropy of always predicting the
# characters' overall frequencies, ignoring the input altogether. A model that does no better has
# learned nothing about context.

# %%
text = load_text("tinyshakespeare")
tokenizer = CharTokenizer.train(text)
ids = torch.tensor(tokenizer.encode(text[:200_000]))
train_ids, val_ids = train_val_split(ids, val_fraction=0.1)
counts = torch.bincount(train_ids, minlength=tokenizer.vocab_size).double() + 1   # +1: no zeros
unigram_loss = -(counts / counts.sum())[val_ids].log().mean().item()
print(f"{len(train_ids):,} training and {len(val_ids):,} validation characters, "
      f"{tokenizer.vocab_size} distinct; unigram loss {unigram_loss:.2f} nats")

# %% [markdown]
# Train the four variants. Each run takes 400 steps of 16 windows of 32 characters (80 steps in
# quick mode) and measures the validation loss 11 times, from step 0 on. On a 2-core Intel Xeon
# cloud machine the whole cell took under a minute; a recent laptop is faster.

# %%
STEPS = 80 if QUICK else 400
settings = TrainConfig(max_steps=STEPS, batch_size=16, block_size=32, lr=3e-3, min_lr=3e-4,
                       warmup_steps=STEPS // 10, eval_interval=STEPS // 10, eval_steps=5, seed=0)
experiment = {"full block": {}, "no residual": dict(residual=False),
              "no LayerNorm": dict(norm=False), "no MLP": dict(mlp=False)}
results, models = {}, {}
for name, switches in experiment.items():
    llmlab.set_seed(0)                                      # the same start for every variant
    models[name] = TinyStack(tokenizer.vocab_size, block_size=32, n_layer=6, n_embd=32, n_head=4,
                             **switches)
    start = time.perf_counter()
    results[name] = train(models[name], train_ids, val_ids, settings, progress=False)
    first, last = results[name].history[0]["val_loss"], results[name].last_val_loss
    print(f"{name:>13}: {count_parameters(models[name]):>6,} parameters, validation loss "
          f"{first:.2f} -> {last:.2f}  ({time.perf_counter() - start:.0f} s)")

full, no_residual = results["full block"].last_val_loss, results["no residual"].last_val_loss
assert full < results["full block"].history[0]["val_loss"] - 1.0, "the full block should learn"
assert full < unigram_loss - (0.3 if QUICK else 0.6), "the full block should beat the unigram"
assert no_residual > full + (0.3 if QUICK else 0.5), "without residuals the stack should lag far behind"

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
for name, result in results.items():
    steps = [row["step"] for row in result.history]
    ax.plot(steps, [row["val_loss"] for row in result.history], "o-", ms=3, label=name)
ax.axhline(unigram_loss, color="grey", ls="--", lw=1)
ax.annotate("unigram: character frequencies only", (STEPS, unigram_loss - 0.03), ha="right",
            va="top", color="grey", fontsize=8)
ax.set(xlabel="training step", ylabel="validation loss (nats)", ylim=(None, 4.4),
       title=f"6 blocks of width 32, {STEPS} steps: take one piece away")
ax.legend()
plt.show()

# %% [markdown]
# What the curves show (the numbers are from a full run; quick mode trains for 80 steps only):
#
# - **No residual paths: the model never gets past the unigram line** (3.32). It learns the
#   characters' frequencies in a few steps and then nothing more: section 3's collapse, in
#   training.
# - **No LayerNorm: it learns, but more slowly** (about 2.6 after 400 steps, against 2.4 for the
#   full block). Our weights start small (std 0.02), so without normalisation every sublayer first
#   sees tiny inputs; LayerNorm makes the start independent of that choice. With PyTorch's larger
#   default initialisation we measured no gap at all at this depth (try it: delete the
#   initialisation loop in `TinyStack`). What LayerNorm buys is robustness to the scale of the
#   weights, as in sections 2 and 3, and that counts for more the deeper the stack and the longer
#   the training.
# - **No MLP: about as good as the full block here**, with 31,041 parameters instead of 81,537.
#   A 6-block, width-32 model trained for 400 steps is limited by training time, not by capacity.
#   Real language models are the other way round, and there the MLPs' two thirds of the weights
#   earn their place.
#
# Let's confirm the diagnosis for the model without residual paths. If its last layer cannot tell
# positions apart, it must predict the same distribution everywhere. We measure how far each
# position's predicted distribution is from the model's average prediction (total variation
# distance: 0 means identical, 1 means no overlap), on 32 validation windows:

# %%
@torch.no_grad()
def prediction_spread(model, ids, n=32, seed=0):
    """Mean total variation distance between each position's prediction and the mean prediction."""
    device = next(model.parameters()).device
    starts = torch.randint(len(ids) - 32, (n,), generator=torch.Generator().manual_seed(seed))
    windows = torch.stack([ids[s:s + 32] for s in starts.tolist()]).to(device)   # (n, 32)
    probs = torch.softmax(model.eval()(windows)[0], dim=-1)                      # (n, 32, V)
    mean = probs.mean(dim=(0, 1))                                                # (V,)
    return 0.5 * (probs - mean).abs().sum(-1).mean().item()


for name in ("full block", "no residual"):
    print(f"{name:>12}: predictions move by {prediction_spread(models[name], val_ids):.3f} "
          "from position to position")

# %% [markdown]
# And in text. A short sampler (lesson 06 brings a proper one): start from a newline and draw each
# next character from the model's prediction.

# %%
@torch.no_grad()
def sample(model, n_chars=150, seed=0):
    """Draw n_chars characters from the model, starting from a newline."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    idx = torch.tensor([tokenizer.encode("\n")], device=device)     # (1, 1)
    for _ in range(n_chars):
        logits, _ = model.eval()(idx[:, -32:])                       # (1, T, V): at most 32 back
        probs = torch.softmax(logits[0, -1], dim=-1).cpu()           # (V,)
        next_id = torch.multinomial(probs, 1, generator=g).to(device)
        idx = torch.cat([idx, next_id[None]], dim=1)                 # (1, T + 1)
    return tokenizer.decode(idx[0].tolist())


for name in ("full block", "no residual"):
    print(f"--- {name} ---{sample(models[name])}\n")

# %% [markdown]
# After a full run, the full block already writes word-like pieces, line breaks and a speaker's
# name in capitals followed by a colon. The stack without residual paths writes letters in the
# right proportions, in no order at all.
#
# ## 7. Counting parameters
#
# How big is a block? Count layer by layer, for width $C$ (with biases):
#
# | piece | weights | biases / gains | total |
# |---|---|---|---|
# | `ln_1` | | $C$ gain + $C$ bias | $2C$ |
# | `attn.c_attn` ($W_q, W_k, W_v$ side by side) | $C \times 3C$ | $3C$ | $3C^2 + 3C$ |
# | `attn.c_proj` ($W_o$) | $C \times C$ | $C$ | $C^2 + C$ |
# | `ln_2` | | $C$ gain + $C$ bias | $2C$ |
# | `mlp.c_fc` | $C \times 4C$ | $4C$ | $4C^2 + 4C$ |
# | `mlp.c_proj` | $4C \times C$ | $C$ | $4C^2 + C$ |
# | **block** | | | $12C^2 + 13C$ |
#
# Attention has $4C^2 + 4C$ parameters, whatever the number of heads (lesson 04), the MLP
# $8C^2 + 5C$, the two LayerNorms $4C$. Without biases (`bias=False`), only the matrices and the
# two gains remain: $12C^2 + 2C$. Check the table against `Block` for $C = 128$, the width of
# lesson 06's model:

# %%
# NBVAL_CHECK_OUTPUT
C6 = 128
block6 = Block(BlockConfig(n_embd=C6, n_head=4))
for name, p in block6.named_parameters():
    print(f"{name:>18} {str(tuple(p.shape)):>11} {p.numel():>7,}")
by_hand = 12 * C6**2 + 13 * C6
print(f"{'total':>18} {'':>11} {count_parameters(block6):>7,}   by hand 12C² + 13C = {by_hand:,}")
assert count_parameters(block6) == by_hand == block_parameter_count(C6)
assert count_parameters(Block(BlockConfig(C6, 4, bias=False))) == 12 * C6**2 + 2 * C6

# %%
parts = {"ln_1": block6.ln_1, "attn.c_attn": block6.attn.c_attn, "attn.c_proj": block6.attn.c_proj,
         "ln_2": block6.ln_2, "mlp.c_fc": block6.mlp.c_fc, "mlp.c_proj": block6.mlp.c_proj}
sizes = {name: count_parameters(m) for name, m in parts.items()}
colours = ["#bbbbbb", "#4c72b0", "#4c72b0", "#bbbbbb", "#dd8452", "#dd8452"]
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
bars = ax.barh(list(sizes)[::-1], list(sizes.values())[::-1], color=colours[::-1])
ax.bar_label(bars, labels=[f"{n / by_hand:.1%}" for n in list(sizes.values())[::-1]], padding=3)
ax.set(xlabel="parameters", title=f"where one block's {by_hand:,} parameters live (C = {C6})",
       xlim=(0, max(sizes.values()) * 1.2))
plt.show()

# %% [markdown]
# Two thirds of a block is MLP (orange), one third attention (blue); the LayerNorms are a rounding
# error. Now a whole GPT, lesson 06's model (`GPTConfig()`: 65 characters, 64 positions, 4 blocks of
# width 128). On top of the blocks it has a token embedding table `wte` ($V \times C$), a position
# table `wpe` ($T \times C$) and a final LayerNorm `ln_f` ($2C$). Its output head reuses `wte`
# (*weight tying*, as in GPT-2), so the head adds no parameters of its own.

# %%
# NBVAL_CHECK_OUTPUT
config = GPTConfig()
V, T_max, L, C6 = config.vocab_size, config.block_size, config.n_layer, config.n_embd
pieces = {"wte (tied with the head)": V * C6, "wpe": T_max * C6,
          f"{L} blocks": L * (12 * C6**2 + 13 * C6), "ln_f": 2 * C6}
total = sum(pieces.values())
for name, n in pieces.items():
    print(f"{name:>25} {n:>9,}  {n / total:6.1%}")
print(f"{'total, by hand':>25} {total:>9,}")
gpt = GPT(config)
print(f"{'count_parameters(GPT)':>25} {count_parameters(gpt):>9,}")
assert count_parameters(gpt) == total

# %% [markdown]
# About 0.8 million parameters, 98% of them in the blocks. The same formula sizes the famous ones.
# GPT-2 (Radford et al., 2019) came in four sizes, all with $V = 50{,}257$ and 1,024 positions:
# 12 blocks of width 768, 24 of 1024, 36 of 1280 and 48 of 1600. The paper reports them as 117M,
# 345M, 762M and 1542M parameters:

# %%
# NBVAL_CHECK_OUTPUT
def gpt_size(V, T_max, L, C):
    """Parameters of a GPT-2-style model with tied embeddings: wte, wpe, L blocks, ln_f."""
    return V * C + T_max * C + L * (12 * C**2 + 13 * C) + 2 * C


GPT2_SIZES = {"small": (12, 768, 117), "medium": (24, 1024, 345), "large": (36, 1280, 762),
              "XL": (48, 1600, 1542)}                   # layers, width, size in the paper (M)
for name, (L2, C2, paper) in GPT2_SIZES.items():
    n = gpt_size(50_257, 1_024, L2, C2)
    print(f"GPT-2 {name:<6} L = {L2:2d}, C = {C2:4d}: formula {n:>13,} ({n / 1e6:,.0f}M), "
          f"paper {paper:,}M ({n / 1e6 - paper:+.1f}M)")
gpt2_small = gpt_size(50_257, 1_024, 12, 768)
gpt2_blocks = 12 * (12 * 768**2 + 13 * 768)
print(f"GPT-2 small: blocks {gpt2_blocks:,}, embeddings {gpt2_small - gpt2_blocks - 2 * 768:,}")
assert gpt2_small == 124_439_808       # what Hugging Face's "gpt2" reports for the released weights

# %% [markdown]
# The formula gives 124M, 355M, 774M and 1558M, the numbers you get by counting the released
# weights (Hugging Face's `gpt2` model reports 124,439,808), and each is 7 to 16 million above the
# paper's figure. The paper does not say how it counted; the usual explanation is that the
# embeddings were counted differently (or miscounted), but that is a guess, so quote both numbers
# when it matters. For GPT-2 small the picture is different from our model: with 50,257 tokens,
# almost a third of the model is the embedding table. Scaling-law papers therefore count only the
# non-embedding parameters, about $12 L C^2$ (85 million for GPT-2 small).
#
# ## 8. Exercises
#
# Each exercise has a function to complete and a check that runs it on test cases and explains what
# went wrong. A wrong answer never raises: it gives you a hint. The checks use sizes different from
# this lesson's, so read every size from the arguments.
#
# ### Exercise 1: LayerNorm
#
# Write `my_layer_norm(x, gain, bias, eps)`: normalise every token of `x` (shape `(..., C)`) over
# its $C$ features to mean 0 and variance 1, with eps inside the square root, then multiply by
# `gain` and add `bias` (both of shape `(C,)`). Use the biased variance (divide by $C$).

# %%
def my_layer_norm(x, gain, bias, eps):
    """(..., C) -> (..., C): (x - mean) / sqrt(var + eps) * gain + bias, over the last axis."""
    # Your code here (about 4 lines).
    raise NotImplementedError


checks.check_layer_norm(my_layer_norm)

# %% [markdown]
# ### Exercise 2: the pre-norm block
#
# Write `my_block_forward(x, ln_1, attn, ln_2, mlp)`, GPT-2's block. The four arguments are
# functions that map `(B, T, C)` to `(B, T, C)`: two LayerNorms, causal self-attention (already
# returning a tensor) and the MLP. Use each of them once.

# %%
def my_block_forward(x, ln_1, attn, ln_2, mlp):
    """(B, T, C) -> (B, T, C): the pre-norm transformer block."""
    # Your code here (2 or 3 lines).
    raise NotImplementedError


checks.check_block_forward(my_block_forward)

# %% [markdown]
# ### Exercise 3: count a block's parameters
#
# Write `my_count_block_parameters(C, bias)`, the number of parameters of one `Block` of width `C`,
# with biases in every Linear layer and LayerNorm when `bias` is True and in none when it is False.
# Count piece by piece, as in the table of section 7, rather than typing in the final formula.

# %%
def my_count_block_parameters(C, bias):
    """Parameters of one Block: two LayerNorms, attention (c_attn, c_proj), MLP (c_fc, c_proj)."""
    # Your code here (about 5 lines).
    raise NotImplementedError


checks.check_count_block_parameters(my_count_block_parameters)

# %% [markdown]
# ## Recap
#
# - A tall stack of plain attention + MLP layers fails twice over: the **scale** of its signal
#   multiplies by the same factor at every layer (vanishing or exploding), and repeated attention
#   averages make all **tokens alike**.
# - **LayerNorm** normalises each token over its features (mean 0, biased variance 1, eps inside
#   the square root), then applies a learned gain and bias. It is blind to the scale of its input,
#   so every sublayer sees numbers of the same size.
# - A **residual path** $x + f(x)$ keeps each token's own vector in the **residual stream** and
#   gives the gradient a direct route to every layer ($I + \partial f/\partial x$).
# - The **MLP** ($C \to 4C \to C$ with GELU) works on each position separately: attention mixes
#   tokens, the MLP transforms each one. It holds two thirds of a block's parameters.
# - GPT-2's **pre-norm** block: `x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))`, with one final
#   `ln_f`. The original Transformer, BERT and GPT-1 are **post-norm**: `x = ln(x + f(x))`.
# - In training on Shakespeare, removing the residual paths left a 6-block model stuck at the
#   unigram loss; removing LayerNorm slowed it down; removing the MLP made little difference at this
#   tiny size.
# - A block has $12C^2 + 13C$ parameters ($4C^2 + 4C$ attention, $8C^2 + 5C$ MLP, $4C$ LayerNorm);
#   a GPT adds $VC$ for tied token embeddings, $TC$ for positions and $2C$ for `ln_f`.
#
# ## What's next
#
# Lesson 06, **the mini-GPT**, stacks these blocks into `llmlab.gpt.GPT`, trains it on Tiny
# Shakespeare with a live loss plot, generates text with temperature and top-k sampling, and opens
# every layer and head of the trained model in the attention explorer.
