# %% [markdown]
# # 03 · Scaled dot-product attention
#
# Lesson 02 ended with a model that predicts the next token from the previous token alone, and
# it stayed stuck there: whatever came earlier in the text was invisible to it. Lesson 02 also named
# the earlier fixes, fixed-window neural networks and recurrent networks; this lesson builds the one
# that transformers are made of, **attention**. With attention, every token builds a new vector for
# itself as a **weighted average** of the vectors of the other tokens in the text, and the weights
# come from comparing the tokens' contents.
# Nothing in that average is tied to a fixed distance, so a token can draw on a word three or
# three hundred positions back.
#
# This lesson builds one attention operation, the formula at the heart of every transformer
# (Vaswani et al., 2017, "Attention Is All You Need"; attention itself was introduced for
# translation with recurrent networks by Bahdanau, Cho & Bengio, 2015):
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V .$$
#
# You will compute it by hand on the sentence "The cat sat on the mat", then look hard at its two
# subtle parts: the division by $\sqrt{d_k}$ and the masks.
#
# **What you will learn**
#
# - to read attention as a learned weighted average, with queries, keys and values;
# - to compute $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ step by step in NumPy, then in PyTorch,
#   and to check both against `llmlab.attention`;
# - to read an attention heatmap: which token attends from where, to where;
# - *why* the scores are divided by $\sqrt{d_k}$, shown with three measurements: the variance of
#   dot products, saturating softmaxes and vanishing gradients;
# - to apply causal and padding masks, combine them, and explain why masking happens *before*
#   the softmax;
# - to explore all of this in the attention playground, an interactive widget.
#
# **Prerequisites:** lessons 01 (tokens and embeddings) and 02 (softmax, the bigram model).
# Matrix multiplication, and what a dot product measures, are all the maths you need.
#
# **Estimated time:** about 50 minutes. The notebook runs in under a minute on a laptop CPU.

# %%
%matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

import llmlab
from llmlab import checks
from llmlab.attention import attention_steps, causal_mask, padding_mask, scaled_dot_product_attention
from llmlab.attention import softmax as llmlab_softmax
from llmlab.cat_sentence import FEATURES, sentence_embeddings
from llmlab.gpt import GPTConfig
from llmlab.viz import AttentionPlayground, plot_attention, plot_attention_steps

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: fewer points on one plot
llmlab.set_seed(0)
torch.set_num_threads(2)  # the course is sized for a 2-core laptop
print(f"quick mode: {QUICK}")


def show(matrix, rows, cols, digits=2, width=7):
    """Print a matrix with labelled rows and columns, rounded to `digits` decimals."""
    m = np.asarray(matrix, dtype=float)
    print(" " * width + "".join(f"{c:>{width}}" for c in cols))
    for name, row in zip(rows, m):
        # + 0.0 turns -0.0 into 0.0, so a printed table never shows "-0.00".
        print(f"{name:>{width}}" + "".join(f"{v + 0.0:>{width}.{digits}f}" for v in row))

# %% [markdown]
# ## 1. Where the bigram gets stuck
#
# Here is a two-sentence corpus, split into words. In both sentences the word after the second
# "the" is fixed by the *subject* of the sentence, four words earlier: a cat sits on a mat, a dog
# on a log. A bigram model (lesson 02) conditions on the previous word only, so it gives the same
# prediction after "... the cat sat on the" as after "... the dog sat on the".

# %%
# NBVAL_CHECK_OUTPUT
corpus = "the cat sat on the mat . the dog sat on the log .".split()
pairs = list(zip(corpus[:-1], corpus[1:]))           # (previous word, next word)
after_the = [nxt for prev, nxt in pairs if prev == "the"]
bigram = {w: after_the.count(w) / len(after_the) for w in sorted(set(after_the))}

for context in ("the cat sat on the", "the dog sat on the"):
    print(f"{context!r:24} -> bigram: {bigram}")

# %% [markdown]
# The right answer is "mat" in the first case and "log" in the second, but the bigram spreads its
# bets over every word that ever followed "the". To do better, the vector that the model uses at
# the last "the" must carry information from "cat" or "dog", four positions back. Counting longer
# contexts does not scale (lesson 02 showed why). Attention does it differently: it lets each
# position *collect* information from any other position, choosing where to look by content.
#
# ## 2. Attention is a weighted average
#
# Give each token $j$ of the text a vector $v_j$, its **value**. Attention gives token $i$ the new
# vector
#
# $$y_i = \sum_j w_{ij}\, v_j, \qquad w_{ij} \ge 0, \quad \sum_j w_{ij} = 1 .$$
#
# With equal weights, $y_i$ would be the plain average of the text (a "bag of words"). The
# point of attention is that the weights depend on the tokens. Token $i$ asks a question, its
# **query** $q_i$; every token $j$ advertises what it has to offer, its **key** $k_j$. The better
# they match, the larger the dot product $q_i \cdot k_j$, and a softmax over $j$ turns the row of
# dot products into weights:
#
# $$w_{ij} = \mathrm{softmax}_j\!\left(\frac{q_i \cdot k_j}{\sqrt{d_k}}\right),$$
#
# where $d_k$ is the length of the query and key vectors (section 4 explains the $\sqrt{d_k}$).
# Queries, keys and values are three different linear maps of the same embedding $x_j$:
# $q_j = x_j W_q$, $k_j = x_j W_k$, $v_j = x_j W_v$. Separating them lets a token look for one
# thing (its query), be found for another (its key) and hand over a third (its value). In a trained
# model $W_q$, $W_k$, $W_v$ are learned. Here we write them by hand, so that every number can be
# checked by eye.
#
# **The embeddings.** We give each word 6 features, $d_{model} = 6$: is it a determiner, a noun, a
# verb, a preposition; is it an animal, is it a place. "The" and "the" are the same word, so they
# get the same vector (a real tokenizer may give them different ids, but nothing changes here).

# %%
# NBVAL_CHECK_OUTPUT
tokens = ["The", "cat", "sat", "on", "the", "mat"]
features = ["det", "noun", "verb", "prep", "animal", "place"]
vocab = {               # det noun verb prep animal place
    "the": [1, 0, 0, 0, 0, 0],
    "cat": [0, 1, 0, 0, 1, 0],
    "sat": [0, 0, 1, 0, 0, 0],
    "on":  [0, 0, 0, 1, 0, 0],
    "mat": [0, 1, 0, 0, 0, 1],
}
X = np.array([vocab[t.lower()] for t in tokens], dtype=float)  # (T, d_model) = (6, 6)
T, d_model = X.shape
# The same table lives in llmlab.cat_sentence, so that lesson 04 can reuse it: check they agree.
assert X.tolist() == sentence_embeddings(tokens).tolist() and tuple(features) == FEATURES
show(X, tokens, features, digits=0)

# %% [markdown]
# **The projections.** Keys and queries get $d_k = 4$ dimensions, one per thing a token can be
# looked for: *an animal*, *a place*, *a determiner*, *a verb*. $W_k$ copies those features into the
# key. $W_q$ decides what each kind of word looks for: a verb looks for an animal (its subject), a
# preposition for a place (its object), a noun for a determiner. Determiners look for nothing:
# their query is zero. The 4 is the *strength* of each preference. The values carry four
# features onward: noun, verb, animal, place.

# %%
d_k = d_v = 4
F = {name: i for i, name in enumerate(features)}  # feature name -> row of the matrices
W_k = np.zeros((d_model, d_k))    # key dims:   0 animal, 1 place, 2 determiner, 3 verb
W_k[F["animal"], 0] = W_k[F["place"], 1] = W_k[F["det"], 2] = W_k[F["verb"], 3] = 1.0
W_q = np.zeros((d_model, d_k))    # query dims: the same four, "I am looking for ..."
W_q[F["verb"], 0] = 4.0           # a verb looks for an animal (its subject)
W_q[F["prep"], 1] = 4.0           # a preposition looks for a place
W_q[F["noun"], 2] = 4.0           # a noun looks for its determiner
W_v = np.zeros((d_model, d_v))    # value dims: 0 noun, 1 verb, 2 animal, 3 place
W_v[F["noun"], 0] = W_v[F["verb"], 1] = W_v[F["animal"], 2] = W_v[F["place"], 3] = 1.0

Q, K, V = X @ W_q, X @ W_k, X @ W_v   # each (T, 4)
print("queries Q = X W_q")
show(Q, tokens, ["animal?", "place?", "det?", "verb?"], digits=0, width=8)

# %% [markdown]
# ## 3. Attention by hand, in NumPy
#
# **Step 1: scores.** Every query meets every key: $S = QK^\top$, a $T \times T$ table whose row
# $i$ holds $q_i \cdot k_j$ for all $j$. Rows are the tokens *attending from* (queries), columns the
# tokens *attended to* (keys). Take one entry by hand: $q_{\text{sat}} = (4, 0, 0, 0)$ and
# $k_{\text{cat}} = (1, 0, 0, 0)$, so $S_{\text{sat},\text{cat}} = 4 \cdot 1 = 4$.

# %%
# NBVAL_CHECK_OUTPUT
scores = Q @ K.T                                  # (T, T): scores[i, j] = q_i · k_j
show(scores, tokens, tokens, digits=1)

# %% [markdown]
# **Step 2: scale.** Divide by $\sqrt{d_k} = \sqrt{4} = 2$.
#
# **Step 3: softmax along each row.** Each query's scores become positive weights that sum to 1.
# As in lesson 02, subtract the row's maximum first: it changes nothing mathematically
# (softmax(x) = softmax(x − c)) and keeps `exp` from overflowing.
#
# For "sat" the scaled scores are 2 for "cat" and 0 for the five others, so its weight on "cat" is
# $e^2 / (e^2 + 5e^0) = 7.389 / 12.389 = 0.596$, and $1 / 12.389 = 0.081$ on each of the others.

# %%
# NBVAL_CHECK_OUTPUT
scaled = scores / np.sqrt(d_k)                          # (T, T)
shifted = scaled - scaled.max(axis=-1, keepdims=True)   # (T, T) each row's largest is now 0
weights = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)  # (T, T)
show(weights, tokens, tokens, digits=3)
print("row sums:", weights.sum(axis=-1).round(6))

# %% [markdown]
# **Step 4: weighted average of the values.** $Y = WV$: row $i$ of the output mixes the value rows
# with token $i$'s weights. Look at "sat": 0.596 of its new vector comes from "cat", so it now
# carries *animal = 0.60*. The verb has learned something about its subject, which is exactly the
# kind of information a bigram could never see.

# %%
# NBVAL_CHECK_OUTPUT
out = weights @ V                                       # (T, d_v)
show(out, tokens, ["noun", "verb", "animal", "place"], digits=3)

# %% [markdown]
# ### The same in PyTorch, then with `llmlab`
#
# In PyTorch the steps are the same, with `k.transpose(-2, -1)` instead of `.T` (it transposes
# only the last two axes, so it also works for batches shaped `(B, T, d_k)`). Then the tested
# version from the course package, `llmlab.attention.scaled_dot_product_attention`, which returns
# both the output and the weights. The three must agree; the assertions below fail loudly if
# they do not.

# %%
q, k, v = (torch.tensor(a) for a in (Q, K, V))          # float64 tensors, (T, 4) each
s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])    # (T, T) d_k read from the data
w_torch = torch.softmax(s, dim=-1)                      # (T, T) softmax over the keys
out_torch = w_torch @ v                                 # (T, d_v)

result = scaled_dot_product_attention(q, k, v)          # AttentionOutput(output, weights)
np.testing.assert_allclose(w_torch.numpy(), weights, atol=1e-12)   # PyTorch == NumPy
np.testing.assert_allclose(out_torch.numpy(), out, atol=1e-12)
torch.testing.assert_close(result.weights, w_torch)                # llmlab == PyTorch
torch.testing.assert_close(result.output, out_torch)
print("NumPy, PyTorch and llmlab agree:", tuple(result.output.shape), tuple(result.weights.shape))

# %% [markdown]
# ### Reading an attention heatmap
#
# A heatmap shows the whole weight table at once. Each **row is a query** (the token attending
# from), each **column a key** (the token attended to), and every row sums to 1. The colour scale is
# fixed from 0 to 1, so pictures of different heads or inputs can be compared directly.

# %%
fig = plot_attention(result.weights, tokens, annotate=True)
fig.axes[0].set_title("our hand-made attention head, no mask", loc="left")
fig

# %% [markdown]
# Three things to notice:
#
# - **"sat" → "cat"** and **"on" → "mat"**: the verb finds its subject and the preposition its
#   object, because of how we built $W_q$ and $W_k$. These matrices are an illustration. A trained
#   model learns its $W_q$ and $W_k$ from data, and its heads are rarely this clean: most mix
#   several patterns and have no one-word description.
# - **"The" and "the" have identical rows.** Attention compares contents only; nothing in it knows
#   *where* a token is. Lesson 04 adds positions to fix this.
# - **"cat" attends to the second "the" as much as to the first**, although that "the" comes
#   *after* it. A model that predicts the next word must not look ahead; section 5 adds the mask
#   that stops it.
#
# A caution for every heatmap in this course: an attention weight says *where a head reads from*,
# not *why the model predicts what it predicts*. What a head passes on also depends on the value
# vectors it averages, and later layers can use or ignore it. Jain & Wallace (2019, "Attention is
# not Explanation") found that quite different attention weights can give the same predictions;
# Wiegreffe & Pinter (2019, "Attention is not not Explanation") showed when weights do carry
# information. Read a heatmap as one clue, not as the model's reasoning.
#
# ## 4. Why divide by $\sqrt{d_k}$?
#
# The argument in the transformer paper makes an **assumption**: the components of $q$ and $k$ are
# independent, with mean 0 and variance 1. Then the score $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ is
# a sum of $d_k$ independent products, each with mean 0 and variance
# $\mathbb{E}[q_i^2]\,\mathbb{E}[k_i^2] = 1$. Variances of independent terms add, so
#
# $$\mathrm{Var}(q \cdot k) = d_k, \qquad \mathrm{Var}\!\left(\frac{q \cdot k}{\sqrt{d_k}}\right) = 1 .$$
#
# With $d_k = 1024$ the raw scores have a standard deviation of 32, and a softmax of numbers that
# far apart is essentially an argmax: one weight near 1, the rest near 0. That matters for
# learning. The gradient of a softmax is $\partial w_i / \partial s_j = w_i(\delta_{ij} - w_j)$,
# which is nearly zero everywhere when the weights are nearly one-hot: a saturated attention head
# barely learns.
#
# Real networks need not have unit-variance queries and keys (we measure the course's own
# initialisation below), but the part of the argument that does not depend on the assumption is
# the one that matters: if every component of $q$ and $k$ has variance $\sigma^2$, whatever
# $\sigma^2$ is, then $\mathrm{Var}(q \cdot k) = d_k \sigma^4$ grows linearly with the head width
# $d_k$, and $\mathrm{Var}(q \cdot k / \sqrt{d_k}) = \sigma^4$ does not depend on it. The scale
# makes the spread of the scores independent of how wide the heads are.
#
# Let's measure all three claims rather than trust them. For each $d_k$ we draw 4,000 random
# queries, each with 8 random keys, and record (a) the variance of the scores, (b) how peaked the
# softmax is, and (c) the size of the gradient that reaches the scores, computed by autograd
# through a random downstream loss. Medians describe a typical query.

# %%
def saturation_stats(d_k, n_queries=4000, n_keys=8, seed=0):
    """Score variance, median max weight, entropy and score-gradient norm, unscaled vs scaled."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(n_queries, d_k, 1, generator=gen)                            # (N, d_k, 1)
    k = torch.randn(n_queries, n_keys, d_k, generator=gen)                       # (N, n_keys, d_k)
    upstream = torch.randn(n_queries, n_keys, generator=gen, dtype=torch.float64)  # dLoss/dweights
    # float64 from here on: saturated weights differ from 0 and 1 by less than float32 can show.
    raw = (k @ q).squeeze(-1).double()                                           # (N, n_keys)
    stats = {"var": raw.var().item()}
    for name, divide_by in (("unscaled", 1.0), ("scaled", math.sqrt(d_k))):
        s = (raw / divide_by).requires_grad_()                                   # (N, n_keys)
        w = llmlab_softmax(s, dim=-1)                                            # (N, n_keys)
        (w * upstream).sum().backward()            # s.grad[n] = how the loss moves with query n's scores
        entropy = -(w * w.clamp_min(1e-300).log()).sum(-1)                       # (N,)
        stats[name] = {"var": s.var().item(), "max_w": w.max(-1).values.median().item(),
                       "entropy": entropy.median().item(),
                       "grad": s.grad.norm(dim=-1).median().item()}
    return stats


# %%
# NBVAL_CHECK_OUTPUT
widths = (4, 16, 64, 256, 1024)
table = {d: saturation_stats(d) for d in widths}
print(f"{'d_k':>5} {'Var(q·k)':>10} {'Var(q·k / √d_k)':>16}")
for d, st in table.items():
    print(f"{d:>5} {st['var']:>10.1f} {st['scaled']['var']:>16.2f}")
print()
print(f"{'':5} {'median max weight':>22} {'median entropy (nats)':>24} {'median |grad|':>24}")
print(f"{'d_k':>5} {'unscaled':>11}{'scaled':>11} {'unscaled':>12}{'scaled':>12} "
      f"{'unscaled':>12}{'scaled':>12}")
for d, st in table.items():
    u, c = st["unscaled"], st["scaled"]
    print(f"{d:>5} {u['max_w']:>11.3f}{c['max_w']:>11.3f} {u['entropy']:>12.3f}{c['entropy']:>12.3f} "
          f"{u['grad']:>12.2e}{c['grad']:>12.2e}")
print(f"\n(uniform weights over 8 keys: max weight 0.125, entropy ln 8 = {math.log(8):.3f} nats)")

# %% [markdown]
# With unit-variance components, as drawn here, the variance of the raw scores grows like $d_k$,
# while the scaled scores keep a variance of 1.
# Without scaling, the typical query puts almost all its weight on one key once $d_k$ reaches a
# few hundred, its entropy collapses towards 0, and the gradient reaching its scores shrinks by
# orders of magnitude. With scaling, all three stay put, whatever the width. The plot below shows
# the same measurements on a log scale (over more widths in full mode).

# %%
plot_widths = widths if QUICK else tuple(2 ** p for p in range(1, 11))
curves = {d: table.get(d) or saturation_stats(d) for d in plot_widths}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4), layout="constrained")
xs = list(curves)
axes[0].loglog(xs, [curves[d]["var"] for d in xs], "o-", label="q·k")
axes[0].loglog(xs, [curves[d]["scaled"]["var"] for d in xs], "s-", label="q·k / √d_k")
axes[0].loglog(xs, xs, "k:", lw=1, label="y = d_k")
axes[0].set(title="(a) variance of the scores", xlabel="d_k", ylabel="variance")
for label, key, marker in (("unscaled", "unscaled", "o-"), ("scaled by √d_k", "scaled", "s-")):
    axes[1].semilogx(xs, [curves[d][key]["max_w"] for d in xs], marker, label=label)
    axes[2].loglog(xs, [curves[d][key]["grad"] for d in xs], marker, label=label)
axes[1].axhline(1 / 8, color="grey", ls=":", lw=1, label="uniform (1/8)")
axes[1].set(title="(b) median largest weight", xlabel="d_k", ylabel="weight", ylim=(0, 1.05))
axes[2].set(title="(c) median gradient norm at the scores", xlabel="d_k", ylabel="‖∂loss/∂scores‖")
for ax in axes:
    ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Two precise points:
#
# - **It is $d_k$, the width of one query/key vector, not the model width.** In multi-head
#   attention (lesson 04) the model width $d_{model}$ is split into heads of width
#   $d_k = d_{model} / n_{heads}$, and each head divides by $\sqrt{d_k}$ of its own vectors.
#   `llmlab` reads it from the data, `q.shape[-1]`, so it cannot drift from the real width.
# - **The scaling is not a hard limit.** A model can still learn large queries and sharp
#   attention (our hand-made $W_q$ uses a strength of 4 for exactly that). What $\sqrt{d_k}$ buys is
#   a *starting point* whose spread does not depend on the head width: widen the heads and attention
#   at initialisation is as spread out as before, so gradients flow and learning can begin.
#
# ### The course's own initialisation
#
# The unit-variance assumption is not what the course's GPT starts from. Its weight matrices start
# as $\mathcal{N}(0, 0.02^2)$ (GPT-2's recipe, lesson 06), and the vectors entering attention have
# components of variance about 1 (layer normalisation, lesson 05, sees to that). A query component
# is then a sum of $d_{model}$ products, with variance $\sigma^2 = d_{model} \cdot 0.02^2$. Let's
# measure it for lesson 06's width, $d_{model} = 128$, and heads of several widths.

# %%
def init_score_stats(d_k, d_model, std=0.02, n=4000, seed=0):
    """Variance of a query component, of q·k and of q·k/√d_k, for N(0, std²) weights on unit-variance inputs."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n, d_model, generator=gen)          # (2, N, d_model): query tokens, key tokens
    w_q = std * torch.randn(d_model, d_k, generator=gen)   # (d_model, d_k)
    w_k = std * torch.randn(d_model, d_k, generator=gen)   # (d_model, d_k)
    q, k = x[0] @ w_q, x[1] @ w_k                          # (N, d_k) each
    dot = (q * k).sum(-1)                                  # (N,) one score per (query, key) pair
    return q.var().item(), dot.var().item(), (dot / math.sqrt(d_k)).var().item()


d_model_gpt = GPTConfig().n_embd
sigma2 = d_model_gpt * 0.02 ** 2                           # predicted variance of a query component
print(f"d_model = {d_model_gpt}: predicted component variance σ² = {sigma2:.4f}, σ⁴ = {sigma2 ** 2:.5f}")
print(f"{'d_k':>5} {'Var(q_i)':>10} {'Var(q·k)':>10} {'Var(q·k/√d_k)':>14}")
init_table = {d: init_score_stats(d, d_model_gpt) for d in (16, 32, 64, 128)}
for d, (var_q, var_dot, var_scaled) in init_table.items():
    print(f"{d:>5} {var_q:>10.4f} {var_dot:>10.5f} {var_scaled:>14.5f}")
raw_growth = init_table[128][1] / init_table[16][1]
scaled_growth = init_table[128][2] / init_table[16][2]
print(f"from d_k = 16 to 128: raw score variance x{raw_growth:.1f}, scaled score variance x{scaled_growth:.2f}")
assert all(abs(v[2] / sigma2 ** 2 - 1) < 0.3 for v in init_table.values())   # scaled ≈ σ⁴ at every width
assert raw_growth > 5 and 0.7 < scaled_growth < 1.4

# What scores of that spread (standard deviation σ²) do to a softmax over 8 keys:
init_weights = torch.softmax(sigma2 * torch.randn(4000, 8, generator=torch.Generator().manual_seed(1)), -1)
init_max_w = init_weights.max(-1).values.median().item()                 # (4000, 8) -> one number
print(f"median largest weight over 8 keys at initialisation: {init_max_w:.3f} (uniform: {1 / 8:.3f})")
assert init_max_w < 0.15

# %% [markdown]
# The components have a variance near $\sigma^2 \approx 0.05$, not 1, so the scaled scores have a
# variance near $\sigma^4 \approx 0.003$: at initialisation the course's attention is nearly uniform
# (a largest weight of about 0.13 over 8 keys, against 0.125 for uniform), far from saturation,
# whatever the head width. The assumption of the paper's argument does not
# hold here, but its robust part does: the raw scores' variance grows with $d_k$ (about eightfold
# from 16 to 128), and dividing by $\sqrt{d_k}$ removes that growth.
#
# ## 5. Masks: what a query is not allowed to see
#
# A mask is a table of booleans with the shape of the scores: **True means "this query may attend
# to this key"**, the convention of `llmlab` and of `torch.nn.functional.scaled_dot_product_attention`
# (beware: `torch.nn.MultiheadAttention` uses the opposite, True = hidden). Masked scores are set to
# $-\infty$ *before* the softmax; since $e^{-\infty} = 0$, those keys get exactly zero weight, and
# the remaining weights still sum to 1.
#
# ### The causal mask
#
# A language model is trained to predict, at *every* position $t$ at once, the token at $t+1$
# (lesson 02's targets, shifted by one). If position $t$ could attend to position $t+1$, it could
# read the answer instead of predicting it, and at generation time the future it relied on does
# not exist yet. So in a GPT each token may attend only to itself and to earlier tokens: query $i$
# sees keys $j \le i$, the lower triangle of the table.

# %%
# NBVAL_CHECK_OUTPUT
mask = causal_mask(T)                                   # (T, T) bool, True = may attend
show(mask.int(), tokens, tokens, digits=0)

# %%
# NBVAL_CHECK_OUTPUT
steps = attention_steps(q, k, v, mask=mask)             # every intermediate result, for teaching
print("masked scores (scaled, -inf where the mask is False):")
show(steps.masked_scores, tokens, tokens, digits=1)
print("\nweights:")
show(steps.weights, tokens, tokens, digits=3)
assert (steps.weights[~mask] == 0).all()                # masked keys: exactly zero, not just small
torch.testing.assert_close(steps.weights.sum(-1), torch.ones(T, dtype=torch.float64))

# %% [markdown]
# "cat" can no longer see the second "the": its weight moves to the first "The" (0.881). On the
# heatmap, masked cells are drawn hatched grey: they are not weights of zero that the model
# computed, they are cells the query was never allowed to look at.

# %%
fig = plot_attention(steps.weights, tokens, masked=~mask, annotate=True)  # masked = True where hidden
fig.axes[0].set_title("the same head with a causal mask", loc="left")
fig

# %% [markdown]
# ### Mask before the softmax, not after
#
# Two tempting shortcuts go wrong:
#
# - **Zeroing weights after the softmax.** The visible weights were normalised together with the
#   hidden ones, so the row no longer sums to 1. (Dividing by the new row sum would repair it and
#   gives the same numbers as masking first; filling with $-\infty$ before the softmax does it in
#   one step, and it is what every implementation does.)
# - **Filling masked scores with 0 instead of $-\infty$.** A score of 0 is an ordinary score:
#   $e^0 = 1$, so the hidden key still gets weight.

# %%
# NBVAL_CHECK_OUTPUT
after = torch.softmax(steps.scaled_scores, dim=-1) * mask              # (T, T) masked too late
zero_filled = torch.softmax(steps.scaled_scores.masked_fill(~mask, 0.0), dim=-1)
print("row sums, masked after softmax:  ", after.sum(-1).numpy().round(3))
print("row sums, masked with -inf first:", steps.weights.sum(-1).numpy().round(3))
print("weight on hidden keys with 0 instead of -inf:", round(zero_filled[~mask].sum().item(), 3))

# %% [markdown]
# ### Padding masks, for batches of different lengths
#
# To process several sentences at once we stack them into one tensor, so shorter ones are
# padded to the longest length with a `<pad>` token. Padding is not text: no real token may attend
# to it. `padding_mask(lengths, T)` marks the first `lengths[b]` positions of sequence `b` as
# real. Its shape is `(B, 1, 1, T)`: one row that is the same for every query (and every head), so
# it broadcasts against scores shaped `(B, heads, T, T)`. Combining it with the causal mask is a
# logical AND, `&`: a key must be both real *and* not in the future.

# %%
# NBVAL_CHECK_OUTPUT
batch_tokens = [tokens, ["The", "cat", "sat", "<pad>", "<pad>", "<pad>"]]
lengths = [6, 3]
pad_vec = np.zeros(d_model)                                   # <pad> gets a vector like any token
Xb = np.stack([np.array([vocab[t.lower()] if t != "<pad>" else pad_vec for t in seq])
               for seq in batch_tokens])                      # (B, T, d_model) = (2, 6, 6)
qb, kb, vb = (torch.tensor(Xb @ W)[:, None] for W in (W_q, W_k, W_v))  # (B, 1, T, 4): one head

pad = padding_mask(lengths, T)                                # (B, 1, 1, T)
both = pad & causal_mask(T)                                   # (B, 1, T, T) by broadcasting
print("padding mask", tuple(pad.shape), "& causal", tuple(causal_mask(T).shape), "->", tuple(both.shape))

unmasked_b = scaled_dot_product_attention(qb, kb, vb).weights               # (B, 1, T, T)
padded_b = scaled_dot_product_attention(qb, kb, vb, mask=pad).weights       # (B, 1, T, T)
causal_b = scaled_dot_product_attention(qb, kb, vb, mask=causal_mask(T)).weights
both_b = scaled_dot_product_attention(qb, kb, vb, mask=both).weights
assert (both_b[~both.expand_as(both_b)] == 0).all()           # no weight ever reaches a masked key
# Padding the second sentence changes nothing for the first: same weights as without a batch.
torch.testing.assert_close(both_b[0, 0], steps.weights)
real_to_pad = (slice(0, 3), slice(3, T))              # sentence 2: real queries, padded keys
print(f"weight a real token of sentence 2 puts on padding: "
      f"{unmasked_b[1, 0][real_to_pad].sum(-1).mean():.3f} without a mask, "
      f"{padded_b[1, 0][real_to_pad].sum(-1).mean():.3f} with the padding mask")

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.9), layout="constrained")
panels = ((padded_b, pad, "padding mask"), (causal_b, causal_mask(T), "causal mask"),
          (both_b, both, "padding & causal"))
for ax, (w, m, title) in zip(axes, panels):
    hidden = ~m.expand(2, 1, T, T)[1, 0]                      # (T, T) True = hidden, sentence 2
    plot_attention(w[1, 0], batch_tokens[1], masked=hidden, ax=ax, annotate=True,
                   colorbar=ax is axes[-1])
    ax.set_title(title, loc="left", fontsize=10)
fig.suptitle("sentence 2, \"The cat sat\" + 3 pads: hatched cells are masked (hidden from the query)")
plt.show()

# %% [markdown]
# In the padded sentence the rows of the `<pad>` queries still attend to the real tokens. That is
# harmless: their outputs are thrown away (the loss ignores padded positions). What matters is that
# no real token's output depends on padding, which the assertion above checks.
#
# ### A query that may see nothing
#
# With *left* padding and a causal mask, the first `<pad>` query may only look at itself, and it is
# padding: every key in its row is masked. The softmax of a row of $-\infty$ is $0/0$, which a
# naive implementation turns into NaN, and NaNs spread through everything they touch.
# `llmlab.attention.softmax` documents a choice instead: a fully masked row gets all-zero weights
# and a zero output.

# %%
# NBVAL_CHECK_OUTPUT
row = torch.full((4,), float("-inf"))                  # a query whose every key is masked
print("torch.softmax: ", torch.softmax(row, dim=-1))
print("llmlab softmax:", llmlab_softmax(row, dim=-1))

# %% [markdown]
# ## 6. The attention playground
#
# Time to play. The widget below runs the same computation, with
# `llmlab.attention.attention_steps`, on our sentence. Pick a query token, edit its query vector
# with the sliders, and switch the scaling and the causal mask on and off. On the left you follow
# the chosen query through the four steps; on the right you see every query's weights, with the
# chosen row outlined. Things to try:
#
# 1. Query "sat": untick **divide by √d_k**. The scores are no longer halved and the weight on
#    "cat" jumps from 0.60 to 0.92.
# 2. Query "cat": tick **causal mask** and watch the second "the" disappear from its choices.
# 3. Query "the" (4): its query is zero, so it attends uniformly. Drag `q[0]` (looks for an animal)
#    to 2, then to 4. Which word does it pick?
# 4. Move **× every q** to 10, then to 0.1. Longer queries make attention sharper, shorter ones
#    flatter: this is the knob that the $\sqrt{d_k}$ scaling turns for you.

# %%
playground = AttentionPlayground(tokens, q, k, v, query_index=2)
playground

# %% [markdown]
# The same view as a plain figure, for where widgets do not render (for example on GitHub). It
# shows the settings the playground had when the figure was drawn.

# %%
plot_attention_steps(playground.current_steps, tokens, playground.query.value)

# %% [markdown]
# ## 7. Exercises
#
# Each exercise has a function to complete and a check that runs it on test cases and explains
# what went wrong. A wrong answer never raises: it gives you a hint. Work with PyTorch tensors.
#
# ### Exercise 1: a numerically stable softmax
#
# Write `my_softmax(x)`: the softmax over the **last** axis of a tensor of any shape. It must
# survive logits like `[1000., 1001., 1002.]` (think about what `exp(1000)` is), and entries of
# `-inf` must get weight exactly 0. Do not modify `x` in place.

# %%
def my_softmax(x):
    """Softmax of x over its last axis, safe for huge values."""
    # Your code here (3 lines): subtract each row's max, exponentiate, divide by each row's sum.
    raise NotImplementedError


checks.check_softmax(my_softmax)

# %% [markdown]
# ### Exercise 2: attention from scratch
#
# Write `my_attention(q, k, v)` returning `(output, weights)` for `q` of shape `(..., T_q, d_k)`,
# `k` of shape `(..., T_k, d_k)` and `v` of shape `(..., T_k, d_v)`. It must work for one sequence,
# for a batch, and for the 4-D `(B, H, T, d)` input of multi-head attention (lesson 04). The check
# draws new sizes each time it runs, so read $d_k$ from the tensors.

# %%
def my_attention(q, k, v):
    """softmax(q kᵀ / √d_k) v, returned together with the weights."""
    # Your code here: scores, scale, softmax over the keys, weighted sum of the values.
    raise NotImplementedError


checks.check_attention(my_attention)

# %% [markdown]
# ### Exercise 3: the causal mask
#
# Write `my_causal_mask(T)`: a bool tensor of shape `(T, T)` that is True where query $i$ (the
# row) may attend to key $j$ (the column). Compare with the printed mask in section 5.

# %%
def my_causal_mask(T):
    """Bool (T, T): True where query i may attend to key j."""
    # Your code here (1 line). Hint: torch.tril.
    raise NotImplementedError


checks.check_causal_mask(my_causal_mask)

# %% [markdown]
# ### Exercise 4: masked attention
#
# Write `my_masked_attention(q, k, v, mask)`, returning `(output, weights)`. `mask` is a bool tensor
# that broadcasts to the scores, True = may attend; the check uses a causal mask and a
# causal-and-padding mask on a batch. Every row it uses has at least one visible key.

# %%
def my_masked_attention(q, k, v, mask):
    """Attention in which keys with mask False get exactly zero weight."""
    # Your code here: like my_attention, with one extra line before the softmax.
    raise NotImplementedError


checks.check_masked_attention(my_masked_attention)

# %% [markdown]
# ## Recap
#
# - Attention gives each token a **weighted average of value vectors**; the weights are a softmax
#   over query·key scores, so *where* a token looks depends on *what* the tokens are.
# - $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ is four steps: scores, scale, softmax along each row,
#   weighted sum. Rows are queries (attending from), columns are keys (attended to), and each row of
#   weights sums to 1.
# - Dividing by $\sqrt{d_k}$ makes the scores' spread independent of the query/key width $d_k$ (not
#   $d_{model}$): at any fixed component variance $\sigma^2$, $\mathrm{Var}(q \cdot k) = d_k\sigma^4$.
#   With unit-variance components (the paper's assumption) the scaled variance is 1, and without
#   the scale softmax saturates and its gradient vanishes, as we measured. The course's
#   $\mathcal{N}(0, 0.02^2)$ initialisation gives much smaller scores, nearly uniform attention.
# - Masks are booleans, True = may attend, applied as $-\infty$ **before** the softmax. The causal
#   mask keeps a language model from seeing the future; padding masks hide filler tokens; `&`
#   combines them. In `llmlab` a query with nothing to see gets zero weights, not NaN.
# - Attention alone ignores word order: "The" and "the" got identical rows.
#
# ## What's next
#
# Lesson 04, **multi-head attention**, runs several attention heads side by side, each with its own
# $W_q$, $W_k$, $W_v$ of width $d_k = d_{model} / n_{heads}$, so that one head can track subjects
# while another tracks places. It builds causal self-attention and cross-attention, and then fixes
# the blindness to order you saw here with positional encodings: sinusoidal, learned and rotary.
