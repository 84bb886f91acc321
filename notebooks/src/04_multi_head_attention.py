# %% [markdown]
# # 04 · Multi-head attention
#
# In lesson 03 one attention head let "sat" find its subject "cat". But a word usually needs
# several things from its context at once: its subject, its object, the word just before it, the
# topic of the sentence. One head computes **one** set of weights per query, a single weighted
# average, so it has to choose. Multi-head attention runs several heads side by side, each with its
# own queries, keys and values, and lets each look for something different. This is the attention
# inside GPT, BERT, T5 and every other transformer.
#
# Then we meet a surprising blind spot: attention, by itself, cannot tell "dog bites man" from
# "man bites dog". We prove it for one layer, measure how a stack of causal layers leaks some
# order through its mask, and fix the blind spot three ways. Finally you train a tiny model and
# watch its heads split a job between them.
#
# **What you will learn**
#
# - to split the model width $d_{model}$ into $H$ heads of width $d_k = d_{model}/H$, attend in
#   every head at once, concatenate and project; to build it from scratch and check it against
#   `llmlab.attention.MultiHeadAttention`;
# - why more heads cost no more parameters;
# - causal self-attention (the kind GPT uses) and cross-attention (the kind encoder–decoder
#   models use), and the shapes of their weights;
# - that attention is *permutation-equivariant*, blind to word order, shown with a test;
# - three ways to give it positions: sinusoidal, learned and rotary (RoPE) encodings, and why with
#   RoPE the score depends only on how far apart two tokens are;
# - to train a small attention-only model and see, in the head explorer, each head take on a
#   different job.
#
# **Prerequisites:** lesson 03 ($\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$, causal masks, reading
# an attention heatmap). From PyTorch: `view`, `transpose` and `nn.Linear`.
#
# **Estimated time:** about 60 minutes. The notebook itself runs in under a minute on a laptop CPU.

# %%
%matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import torch

import llmlab
from llmlab import checks
from llmlab.attention import AttentionConfig, MultiHeadAttention, scaled_dot_product_attention
from llmlab.positional import LearnedPositionalEmbedding, apply_rope, sinusoidal_encoding
from llmlab.lookup_task import (AttentionOnlyConfig, AttentionOnlyModel, LookupTask, lookup_accuracy,
                        lookup_scores, train_lookup_model)
from llmlab.cat_sentence import FEATURES, SENTENCE, sentence_embeddings
from llmlab.viz import AttentionExplorer, plot_attention, plot_attention_grid

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: shorter training in section 6
llmlab.set_seed(0)
torch.set_num_threads(1)  # these tensors are tiny: one thread is as fast as two, and leaves a core free
print(f"quick mode: {QUICK}")


def show(matrix, rows, cols, digits=2, width=7):
    """Print a matrix with labelled rows and columns, rounded to `digits` decimals."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    print(" " * width + "".join(f"{c:>{width}}" for c in cols))
    for name, row in zip(rows, m.tolist()):
        # + 0.0 turns -0.0 into 0.0, so a printed table never shows "-0.00".
        print(f"{name:>{width}}" + "".join(f"{v + 0.0:>{width}.{digits}f}" for v in row))

# %% [markdown]
# ## 1. From one head to many
#
# A single head maps every token vector $x$ (width $d_{model}$) to a query, a key and a value, and
# attends. Multi-head attention with $H$ heads does this $H$ times, with smaller vectors:
#
# $$\mathrm{head}_h = \mathrm{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{d_k}}\right) V_h,
# \qquad Q_h = X W_q^{(h)},\; K_h = X W_k^{(h)},\; V_h = X W_v^{(h)},$$
#
# where each $W^{(h)}$ is $d_{model} \times d_k$ with $d_k = d_{model} / H$. The $H$ outputs, each
# of width $d_k$, are concatenated back to width $d_{model}$ and mixed by one more matrix, the
# **output projection** $W_o$:
#
# $$\mathrm{MultiHead}(X) = [\mathrm{head}_1, \dots, \mathrm{head}_H]\, W_o .$$
#
# In code nobody keeps $3H$ small matrices. Put the heads' $W_q^{(h)}$ side by side and you get one
# $d_{model} \times d_{model}$ matrix $W_q$: one matrix product computes every head's query, and
# head $h$ owns columns $h\,d_k$ to $(h+1)\,d_k - 1$ of the result. What remains is bookkeeping:
# cut each token's $d_{model}$ numbers into $H$ blocks and make the heads a batch dimension, so
# that one batched matrix product attends within every head at once.
#
# Watch the bookkeeping on numbers you can follow: two tokens of width 12, three heads of width 4.
# Think of `x` below as the two tokens' *queries* $XW_q$ (the keys and values are cut the same
# way). Token 1 holds token 0's numbers plus 100.

# %%
# NBVAL_CHECK_OUTPUT
B, T, C, H = 1, 2, 12, 3                       # one sequence of two tokens, d_model = 12, 3 heads
d_k = C // H                                   # 4 numbers per head
x = torch.stack([torch.arange(C), 100 + torch.arange(C)])[None]   # (B, T, C)
split = x.view(B, T, H, d_k)                   # (B, T, H, d_k): each token cut into 3 blocks
heads = split.transpose(1, 2)                  # (B, H, T, d_k): heads next to the batch
print("x[0] =\n", x[0], "\n")
for h in range(H):
    print(f"head {h} gets\n{heads[0, h]}")

# %% [markdown]
# Each head sees *every* token, but only its own slice of each token's query, key and value. Those
# are projections: every one of the $d_{model}$ numbers of $XW_q$ is a weighted sum of *all* the
# token's features, so a head is not restricted to some of the features; it sees all of them
# through its own $d_k$ columns of $W_q$, $W_k$ and $W_v$. Two steps, and both matter:
#
# - `view(B, T, H, d_k)` cuts each token's numbers into blocks; it changes nothing in memory.
# - `transpose(1, 2)` moves the head axis next to the batch. A batched matrix product `@` treats
#   every axis but the last two as a batch, so `(B, H, T, d_k) @ (B, H, d_k, T)` gives one
#   `(T, T)` score table per sequence *and per head*.
#
# A tempting shortcut is to `view` straight to `(B, H, T, d_k)`. The shape comes out right, but the
# numbers do not: a tensor is stored token after token, so the first block of memory that the view
# calls "head 0, token 1" is really the second block of token 0.

# %%
# NBVAL_CHECK_OUTPUT
wrong = x.view(B, H, T, d_k)                   # (B, H, T, d_k), and wrong
print("head 0 after a straight view:\n", wrong[0, 0])

# %% [markdown]
# ### Multi-head attention, twice by hand and once from `llmlab`
#
# Now the real thing, on random data: two sequences of five tokens, $d_{model} = 12$, three heads.
# First a plain loop, one head at a time, using lesson 03's `scaled_dot_product_attention` on
# column slices. Then the reshape trick, which runs all heads in one call. The two must agree.

# %%
B, T, d_model, n_heads = 2, 5, 12, 3
d_k = d_model // n_heads                                             # 4
x = torch.randn(B, T, d_model)                                       # (B, T, C)
W_q, W_k, W_v, W_o = (torch.randn(d_model, d_model) / math.sqrt(d_model) for _ in range(4))  # (C, C)
q, k, v = x @ W_q, x @ W_k, x @ W_v                                  # (B, T, C) each: all heads at once

# (a) A loop over heads: head h owns columns h*d_k .. (h+1)*d_k - 1 of q, k and v.
outputs, weights = [], []
for h in range(n_heads):
    cols = slice(h * d_k, (h + 1) * d_k)
    out_h = scaled_dot_product_attention(q[..., cols], k[..., cols], v[..., cols])
    outputs.append(out_h.output)                                     # (B, T, d_k)
    weights.append(out_h.weights)                                    # (B, T, T)
y_loop = torch.cat(outputs, dim=-1) @ W_o                            # (B, T, C): concatenate, project
w_loop = torch.stack(weights, dim=1)                                 # (B, H, T, T)

# (b) All heads in one call: the heads become a batch dimension.
q_h, k_h, v_h = (t.view(B, T, n_heads, d_k).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d_k)
att = scaled_dot_product_attention(q_h, k_h, v_h)                    # output (B, H, T, d_k)
merged = att.output.transpose(1, 2).reshape(B, T, d_model)          # (B, T, C): heads side by side
y_batched = merged @ W_o                                             # (B, T, C)

torch.testing.assert_close(y_batched, y_loop)
torch.testing.assert_close(att.weights, w_loop)
print("loop over heads == all heads at once; weights", tuple(att.weights.shape), "= (B, H, T, T)")

# %% [markdown]
# Two details in (b). Each head divides its scores by $\sqrt{d_k} = \sqrt{4}$, the width of *its*
# vectors, not by $\sqrt{d_{model}}$: `scaled_dot_product_attention` reads $d_k$ from `q.shape[-1]`,
# which is 4 after the split. And merging needs `reshape`, not `view`: after `transpose` the numbers
# are no longer stored in the order `(B, T, H, d_k)`, so they must be copied (exercise 2 shows the
# error `view` gives).
#
# `llmlab.attention.MultiHeadAttention` is the tested version. Like GPT-2, it keeps $W_q, W_k, W_v$
# in one `nn.Linear` called `c_attn` and $W_o$ in `c_proj`. An `nn.Linear` computes $x W^\top + b$,
# so it stores our matrices transposed. Copy our weights in, and it must give the same numbers, on
# its explicit path (which returns the weights) and on PyTorch's fused kernel.

# %%
def load_weights(layer, W_q, W_k, W_v, W_o, b_q=None):
    """Copy x @ W-style (C, C) matrices into a MultiHeadAttention (nn.Linear stores W transposed)."""
    with torch.no_grad():
        layer.c_attn.weight.copy_(torch.cat([W_q, W_k, W_v], dim=1).T)  # (3C, C): rows [q; k; v]
        layer.c_proj.weight.copy_(W_o.T)                                # (C, C)
        if layer.c_attn.bias is not None:                               # only the queries get a bias
            layer.c_attn.bias.zero_()
            layer.c_proj.bias.zero_()
            if b_q is not None:
                layer.c_attn.bias[: len(b_q)].copy_(b_q)
    return layer


mha = load_weights(MultiHeadAttention(AttentionConfig(d_model, n_heads, bias=False)), W_q, W_k, W_v, W_o)
with torch.no_grad():
    explicit = mha(x, return_weights=True)                           # AttentionOutput(output, weights)
    fused = mha(x)                                                   # torch's fused kernel, no weights
torch.testing.assert_close(explicit.output, y_batched)
torch.testing.assert_close(explicit.weights, att.weights)
torch.testing.assert_close(fused.output, y_batched)
print("our multi-head attention == llmlab's, explicit and fused paths")

# %% [markdown]
# ### More heads, same parameters
#
# Splitting into heads changes how the numbers are *grouped*, not how many there are: $W_q$, $W_k$,
# $W_v$ and $W_o$ are $d_{model} \times d_{model}$ whatever $H$ is, and so is the work of the
# projections. The score computation costs $H \cdot T^2 \cdot d_k = T^2 \cdot d_{model}$
# multiply-adds for any $H$. What grows with $H$ is the number of attention weights, $H \cdot T^2$
# per sequence: more heads buy more *patterns* per layer, each with narrower vectors.

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'heads':>5} {'d_k':>4} {'parameters':>11} {'weights per sequence (T = 5)':>29}")
for n in (1, 2, 3, 4, 6, 12):
    layer = MultiHeadAttention(AttentionConfig(d_model, n))
    n_params = sum(p.numel() for p in layer.parameters())           # 4 (C x C) matrices + 4 biases
    print(f"{n:>5} {d_model // n:>4} {n_params:>11} {n * T * T:>29}")

# %% [markdown]
# ## 2. Causal self-attention, head by head
#
# In a GPT every layer is **causal self-attention**: queries, keys and values all come from the same
# sequence, and each token may attend only to itself and to earlier tokens (lesson 03's causal
# mask, now applied in every head). `AttentionConfig(causal=True)` does that.
#
# To see what separate heads can do, let's build a two-head layer by hand for lesson 03's sentence,
# with lesson 03's six features: $d_{model} = 6$, so each head has $d_k = 3$.
#
# - **Head 0 has lesson 03's preferences**: a verb looks for an animal (its subject), a preposition
#   for a place, a noun for a determiner. (Lesson 03's fourth key dimension, "verb", was never
#   looked for, so three are enough here.)
# - **Head 1 looks for nouns**, from every token. Its query does not depend on the token at all: it
#   comes from the query *bias*, which is the same for every position. It answers "what is this
#   sentence about so far?"
#
# Both heads pass on the same value features, (noun, animal, place), and $W_o$ is the identity, so
# the output is simply the two heads' results side by side.

# %%
tokens, features = list(SENTENCE), list(FEATURES)    # lesson 03's sentence and its 6 features
F = {name: i for i, name in enumerate(features)}      # feature name -> row of the matrices
X = sentence_embeddings(tokens)[None]                 # (1, T, 6): lesson 03's table, one batch

W_q, W_k, W_v = torch.zeros(6, 6), torch.zeros(6, 6), torch.zeros(6, 6)  # columns 0-2 head 0, 3-5 head 1
b_q = torch.zeros(6)
# head 0, lesson 03's grammar preferences. Key dims: 0 animal, 1 place, 2 determiner.
W_k[F["animal"], 0] = W_k[F["place"], 1] = W_k[F["det"], 2] = 1.0
W_q[F["verb"], 0] = W_q[F["prep"], 1] = W_q[F["noun"], 2] = 4.0
# head 1, the noun tracker. Key dim 3: noun. Every token's query is the bias (4, 0, 0).
W_k[F["noun"], 3] = 1.0
b_q[3] = 4.0
for h in (0, 1):                                      # both heads pass on (noun, animal, place)
    W_v[F["noun"], 3 * h] = W_v[F["animal"], 3 * h + 1] = W_v[F["place"], 3 * h + 2] = 1.0

causal_layer = MultiHeadAttention(AttentionConfig(d_model=6, n_heads=2, causal=True))
load_weights(causal_layer, W_q, W_k, W_v, torch.eye(6), b_q)
with torch.no_grad():
    sentence = causal_layer(X, return_weights=True)
print("output", tuple(sentence.output.shape), "= (B, T, C); weights", tuple(sentence.weights.shape),
      "= (B, H, T, T)")

# %% [markdown]
# `plot_attention_grid` draws every head of a layer on one 0–1 colour scale, so the heads compare
# directly. Hatched cells are hidden by the causal mask.

# %%
fig = plot_attention_grid(sentence.weights[0], tokens, masked="causal")
fig

# %%
# NBVAL_CHECK_OUTPUT
for h in (0, 1):
    print(f"head {h}")
    show(sentence.weights[0, h], tokens, tokens)

# %% [markdown]
# Read the two heads row by row:
#
# - In head 0, **"sat" still finds "cat"** (0.83), since the subject comes first. But **"on" no
#   longer finds "mat"**: "mat" comes later and is masked, so "on" spreads its weight over what it
#   can see. A causal model cannot look up the object of a preposition; it has to *predict* it.
# - Head 1 follows the nouns: from "cat" on, every token puts most of its weight on "cat", and "mat"
#   splits between the two nouns it can see. "The" has only itself to look at: the first row of a
#   causal head is always a single 1.
#
# Now compare the two heads on the same query. For "mat", head 0 splits its weight between the
# two determiners and head 1 between the two nouns: two different weighted averages of the same
# tokens, computed side by side. A single head gives each query one set of weights, so it would
# have had to choose. The output holds both results in separate columns (0–2 from head 0, 3–5 from
# head 1), and in a trained model $W_o$ learns how to combine them.
#
# ## 3. Cross-attention: queries from one sequence, keys from another
#
# In self-attention, $Q$, $K$ and $V$ come from the same tokens. In **cross-attention** the queries
# come from one sequence and the keys and values from another. It lives in **encoder–decoder**
# models such as the original Transformer (2017, built for translation), T5, BART and Whisper: an
# encoder reads the whole source (a sentence, or audio for Whisper), and every decoder layer has a
# cross-attention sublayer whose queries are the decoder's tokens and whose keys and values are the
# encoder's outputs. GPT is **decoder-only**: it has no encoder and no cross-attention, only causal
# self-attention.
#
# Two consequences you can see in the shapes:
#
# - the weight table is $T_{target} \times T_{source}$, not square;
# - it needs no causal mask: the whole source is known before the decoder starts. (The decoder's
#   *self*-attention stays causal.)
#
# Here is a hand-made alignment between the English source "the cat sat on the mat" and its French
# translation "le chat était assis sur le tapis". Each word gets one-hot *meaning* features, the
# queries and keys both read them, and the values pass them on.

# %%
meanings = ["det", "cat", "sit", "on", "mat"]
english = ["the", "cat", "sat", "on", "the", "mat"]
french = ["le", "chat", "était", "assis", "sur", "le", "tapis"]
sense = {"the": "det", "cat": "cat", "sat": "sit", "on": "on", "mat": "mat",
         "le": "det", "chat": "cat", "était": "sit", "assis": "sit", "sur": "on", "tapis": "mat"}


def one_hot(words):
    """(1, T, 5) meaning vectors of a list of words."""
    return torch.eye(len(meanings))[[meanings.index(sense[w]) for w in words]][None]


source, target = one_hot(english), one_hot(french)       # (1, 6, 5) encoder side, (1, 7, 5) decoder side
cross = MultiHeadAttention(AttentionConfig(d_model=5, n_heads=1, d_kv=5, bias=False))
with torch.no_grad():                                    # queries and keys match meanings, strength 3
    cross.q_attn.weight.copy_(3 * torch.eye(5))          # (C, C)
    cross.kv_attn.weight.copy_(torch.cat([3 * torch.eye(5), torch.eye(5)]))  # (2C, d_kv): [k; v]
    cross.c_proj.weight.copy_(torch.eye(5))
    aligned = cross(target, context=source, return_weights=True)
print("decoder tokens", tuple(target.shape), "attend to encoder tokens", tuple(source.shape))
print("weights", tuple(aligned.weights.shape), "= (B, H, T_target, T_source)")

# %%
fig = plot_attention(aligned.weights[0, 0], query_tokens=french, key_tokens=english, annotate=True)
fig.axes[0].set_title("cross-attention: French queries, English keys", loc="left")
fig

# %% [markdown]
# Each French word finds the English word with its meaning: "chat" → "cat", "sur" → "on",
# "tapis" → "mat". The alignment need not be one-to-one: "était" and "assis" both point to "sat".
# In a trained translation model nobody writes these matrices; the cross-attention heads *learn*
# alignments like this one from pairs of translated sentences (Bahdanau, Cho & Bengio, 2015, drew
# the first such learned alignments, with recurrent networks).
#
# Look at the two "le" rows: each splits its weight equally between the two "the"s. The first "le"
# belongs with the first "the", but attention has no way to know that. That is the next section.
#
# `AttentionConfig(d_kv=...)` builds the separate query (`q_attn`) and key/value (`kv_attn`)
# projections of a cross-attention layer; `d_kv` is the encoder's width, which may differ from the
# decoder's.
#
# ## 4. Attention is blind to word order
#
# Swap two tokens of the input, and what happens to self-attention's output? Write the swap (any
# reordering) as a permutation matrix $P$, so the input becomes $PX$. Then $Q, K, V$ become
# $PQ, PK, PV$, the scores become $PQK^\top P^\top$ (rows *and* columns reordered), the row-wise
# softmax does not care in which order the columns come, and
#
# $$\mathrm{softmax}\!\left(\frac{PQ (PK)^\top}{\sqrt{d_k}}\right) PV
#   = P\,\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) P^\top P\, V
#   = P \cdot \mathrm{Attention}(Q, K, V),$$
#
# since $P^\top P = I$. Self-attention is **permutation-equivariant**: reorder the tokens and you get
# exactly the same output vectors, reordered the same way. Every token sees a *set* of tokens, not a
# sequence. Let's check it on "dog bites man ." and "man bites dog .", with a random 4-head layer.

# %%
d = 16
gen = torch.Generator().manual_seed(4)
word_vectors = {w: torch.randn(d, generator=gen) for w in ["dog", "bites", "man", "."]}


def embed(text):
    """(1, T, d) vectors of the words of a text, with no position information at all."""
    return torch.stack([word_vectors[w] for w in text.split()])[None]


dog_man, man_dog = embed("dog bites man ."), embed("man bites dog .")
swap = [2, 1, 0, 3]                                        # "man bites dog ." = "dog bites man ." reordered
torch.testing.assert_close(man_dog, dog_man[:, swap])

self_attn = MultiHeadAttention(AttentionConfig(d, n_heads=4)).eval()
with torch.no_grad():
    y1, y2 = self_attn(dog_man).output, self_attn(man_dog).output  # (1, 4, d) each
torch.testing.assert_close(y2, y1[:, swap])                # the same vectors, reordered
print("'man bites dog .' gives the outputs of 'dog bites man .', reordered the same way")

# A random reordering of a longer random sequence, to be sure it is no accident of this example:
x_long = torch.randn(2, 9, d)                              # (B, T, d)
perm = torch.randperm(9)
with torch.no_grad():
    torch.testing.assert_close(self_attn(x_long[:, perm]).output, self_attn(x_long).output[:, perm])
print("attention(x[:, perm]) == attention(x)[:, perm] for perm =", perm.tolist())

# %% [markdown]
# "dog" gets exactly the same vector whether it bites or is bitten.
#
# A causal layer is not fully blind, because the mask itself depends on position: token $t$ averages
# over $t + 1$ tokens. In *one* layer, though, order is still invisible within what a token can see.
# The "." at the end sees all four words in both sentences and gets the *same* vector:

# %%
gpt_like = MultiHeadAttention(AttentionConfig(d, n_heads=4, causal=True)).eval()
with torch.no_grad():
    c1, c2 = gpt_like(dog_man).output, gpt_like(man_dog).output  # (1, 4, d) each
torch.testing.assert_close(c1[:, -1], c2[:, -1])           # "." sees {dog, bites, man, .} either way
print("causal layer, output at '.':       identical for both sentences")
print("causal layer, output at 'bites':   differs, since it sees 'dog bites' or 'man bites':",
      not torch.allclose(c1[:, 1], c2[:, 1]))

# %% [markdown]
# So does a GPT without positions predict the same word after both sentences? Only if it has a
# single layer. Stack a second causal layer on the first (the output of one is the input of the
# next; a GPT's blocks have more parts, lesson 05, but the argument below holds for them too) and
# measure the difference at "." again:

# %%
def causal_stack(n_layers, seed=0):
    """A function running n_layers causal 4-head attention layers in a row, with no positions."""
    with torch.random.fork_rng():       # a fixed seed, leaving the random numbers of later cells alone
        torch.manual_seed(seed)
        layers = [MultiHeadAttention(AttentionConfig(d, n_heads=4, causal=True)).eval()
                  for _ in range(n_layers)]

    def run(x):
        with torch.no_grad():
            for layer in layers:
                x = layer(x).output                        # (1, T, d): the next layer's input
        return x

    return run


leak = {}
for n_layers in (1, 2):
    stack = causal_stack(n_layers)
    at_dot_1, at_dot_2 = stack(dog_man)[0, -1], stack(man_dog)[0, -1]   # (d,) each
    leak[n_layers] = (at_dot_1 - at_dot_2).abs().max().item()
    print(f"{n_layers} causal layer(s): largest difference at '.' between the sentences = "
          f"{leak[n_layers]:.1e}  (size of the vector: {at_dot_1.norm():.2f})")
assert leak[1] < 1e-5    # one layer: the same vector, up to float rounding
assert leak[2] > 1e-3    # two layers: the mask has leaked the order

# %% [markdown]
# One layer gives a difference at the level of float rounding; two layers give a clear one. The
# reason is the causal mask. At layer 2, the vector at position $i$ is computed from the layer-1
# outputs at positions $\le i$, and those depend on which *prefix* each token saw. In
# "dog bites man ." the layer-1 vector at position 0 is "dog" having seen only itself, and at
# position 2 "man" having seen "dog bites man"; in "man bites dog ." it is "man" alone at position 0
# and "dog" having seen "man bites dog" at position 2. So the "." at layer 2 averages a different set of vectors in
# the two sentences. Deep causal models can learn to use this leak: language models trained with no
# positional encoding at all still pick up some position information (Haviv et al., 2022).
#
# The main point stands: attention by itself is (nearly) blind to order. One causal layer gives
# "." the same vector in both sentences, and what a stack can tell comes only indirectly, through
# which prefix each earlier position saw; nothing in it says "the word two positions back". So
# transformers give attention positions explicitly.

# %% [markdown]
# ## 5. Giving attention a sense of order
#
# The fix is to make a token's position part of what attention compares. There are two families:
# **absolute** encodings add a vector that depends on the position $p$ to each token's embedding
# before the first layer (sinusoidal and learned), and **relative** ones change the scores so that
# they depend on the offset between query and key (RoPE, applied inside every head).
#
# ### Sinusoidal encodings (the original Transformer)
#
# The 2017 Transformer (Vaswani et al.) adds a fixed table with one row per position:
#
# $$PE_{p,\,2i} = \sin\!\left(\frac{p}{10000^{2i/d_{model}}}\right), \qquad
#   PE_{p,\,2i+1} = \cos\!\left(\frac{p}{10000^{2i/d_{model}}}\right).$$
#
# Each pair of columns $(2i, 2i+1)$ is a point going round a circle as $p$ grows, at its own speed
# $\omega_i = 1/10000^{2i/d_{model}}$ radians per position: pair 0 turns by one radian per position,
# and the slowest pairs need nearly $2\pi \cdot 10000 \approx 63{,}000$ positions to go round once.
# Like the hands of a clock, the fast pairs tell nearby positions apart and the slow ones
# far-apart positions. Because every pair turns at a steady speed, the dot product of two rows
# depends only on their offset: $PE_p \cdot PE_{p'} = \sum_i \cos\big((p - p')\,\omega_i\big)$.

# %%
pe = sinusoidal_encoding(64, 64)                           # (T, d_model)
fig, axes = plt.subplots(1, 2, figsize=(10, 4.0), layout="constrained")
im = axes[0].imshow(pe, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
axes[0].set(title="sinusoidal encoding PE[p, j]", xlabel="dimension j  (sin, cos, sin, cos, ...)",
            ylabel="position p")
fig.colorbar(im, ax=axes[0], shrink=0.8)
im = axes[1].imshow(pe @ pe.T, cmap="viridis", aspect="auto", interpolation="nearest")
axes[1].set(title="PE[p] · PE[p′]: the same along every diagonal", xlabel="position p′",
            ylabel="position p")
fig.colorbar(im, ax=axes[1], shrink=0.8)
plt.show()

# %% [markdown]
# Add the table to the word vectors and the symmetry is gone: the "." of the two sentences now gets
# different vectors, because "dog" arrives with position 0 in one sentence and position 2 in the
# other.

# %%
pe_d = sinusoidal_encoding(4, d)                           # (T, d) for our 4-word sentences
with torch.no_grad():
    s1 = gpt_like(dog_man + pe_d).output                   # (1, 4, d)
    s2 = gpt_like(man_dog + pe_d).output
    assert not torch.allclose(s1[:, -1], s2[:, -1])
    p1 = self_attn(dog_man + pe_d).output                  # the non-causal layer too
    p2 = self_attn(man_dog + pe_d).output
    assert not torch.allclose(p2, p1[:, swap])             # no longer just a reordering
print(f"output at '.', largest difference between the sentences: "
      f"{(s1[:, -1] - s2[:, -1]).abs().max():.3f} (it was 0 without positions)")

# %% [markdown]
# ### Learned positions (GPT-2)
#
# GPT-2 (Radford et al., 2019) does not fix the table: it *learns* one vector per position, a second
# embedding table `wpe` (1,024 positions × 768 numbers in the smallest GPT-2), trained along with
# everything else. `llmlab.positional.LearnedPositionalEmbedding` is that table. It starts as small
# random vectors (standard deviation 0.02, as in GPT-2) and is added to the token embeddings in the
# same way. It is flexible, but it knows only the positions it was trained on: ask it for position
# `max_len` and there is no row to return.

# %%
# NBVAL_CHECK_OUTPUT
wpe = LearnedPositionalEmbedding(max_len=8, d_model=d)    # 8 trainable vectors of width 16
print("positions 0-3:", tuple(wpe(4).shape), "  trainable parameters:",
      sum(p.numel() for p in wpe.parameters()))
try:
    wpe(10)
except ValueError as err:
    print("wpe(10) ->", err)

# %%
with torch.no_grad():
    l1 = self_attn(dog_man + wpe(4)).output                 # (1, 4, d)
    l2 = self_attn(man_dog + wpe(4)).output
assert not torch.allclose(l2, l1[:, swap], atol=1e-6)       # reordering the input no longer just reorders
print(f"largest change beyond the reordering: {(l2 - l1[:, swap]).abs().max():.4f}")
print("(small: the untrained position vectors are small; training makes them matter)")

# %% [markdown]
# ### Rotary position embeddings (RoPE)
#
# **RoPE** (Su et al., 2021, the RoFormer paper) is what most recent open models (Llama, Mistral,
# Qwen, GPT-NeoX among them) use. It adds nothing
# to the embeddings. Instead, inside every head, after the split, it *rotates* the query and the key
# of the token at position $p$: the head's $d_k$ numbers are taken as $d_k/2$ pairs, and pair $j$ is
# turned by the angle $p\,\theta_j$, with speeds $\theta_j$ like the sinusoidal ones. The values are
# left alone. A rotation keeps lengths, and the angle between two rotated vectors changes by the
# difference of their rotations, so the score of a query at position $m$ and a key at position $n$
# is
#
# $$\mathrm{rot}_m(q) \cdot \mathrm{rot}_n(k) = \mathrm{rot}_{m-n}(q) \cdot k ,$$
#
# which depends on the positions only through the offset $m - n$. Check it: put the *same* query and
# key vectors at every pair of positions $(m, n)$ and compute all the scores.

# %%
head_dim, n_pos = 8, 16
gen = torch.Generator().manual_seed(1)
q1, k1 = torch.randn(head_dim, generator=gen), torch.randn(head_dim, generator=gen)
q_rot = apply_rope(q1.expand(n_pos, head_dim))             # (n_pos, head_dim): q at positions 0..15
k_rot = apply_rope(k1.expand(n_pos, head_dim))             # (n_pos, head_dim)
scores = q_rot @ k_rot.T                                   # (n_pos, n_pos): scores[m, n]
torch.testing.assert_close(scores[1:, 1:], scores[:-1, :-1])   # move both by one: nothing changes
torch.testing.assert_close(q_rot.norm(dim=-1), q1.norm().expand(n_pos))  # rotations keep lengths
print("RoPE scores depend only on m - n; lengths unchanged")

fig, ax = plt.subplots(figsize=(4.8, 4.2), layout="constrained")
im = ax.imshow(scores, cmap="viridis", interpolation="nearest")
ax.set(title="q at position m, k at position n:\nthe same q·k along every diagonal",
       xlabel="key position n", ylabel="query position m",
       xticks=range(0, n_pos, 3), yticks=range(0, n_pos, 3))
fig.colorbar(im, ax=ax, shrink=0.8, label="score")
plt.show()

# %% [markdown]
# Because a score depends on positions only through their offset, a RoPE head that learns "look one
# token back" does so at every position alike. To use RoPE in a layer, apply it to $q$ and $k$
# between the split into heads and the scores. A small inline version with the weights of our
# `self_attn` layer shows that it, too, breaks the blindness to order:

# %%
def rope_self_attention(layer, x):
    """Self-attention with the weights of `layer`, RoPE applied to every head's queries and keys."""
    B, T, C = x.shape
    H = layer.config.n_heads
    q, k, v = layer.c_attn(x).split(C, dim=-1)                             # (B, T, C) each
    q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d_k)
    q, k = apply_rope(q), apply_rope(k)                    # rotate by position 0..T-1; values untouched
    y = scaled_dot_product_attention(q, k, v).output      # (B, H, T, d_k)
    return layer.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


with torch.no_grad():
    r1, r2 = rope_self_attention(self_attn, dog_man), rope_self_attention(self_attn, man_dog)
assert not torch.allclose(r2, r1[:, swap], atol=1e-4)
print(f"with RoPE, largest change beyond the reordering: {(r2 - r1[:, swap]).abs().max():.3f}")

# %% [markdown]
# | | sinusoidal | learned | rotary (RoPE) |
# |---|---|---|---|
# | where | added to the embeddings, once | added to the embeddings, once | inside every head, to $q$ and $k$ |
# | trained? | no, a fixed table | yes, one vector per position | no, fixed rotations |
# | what scores see | absolute positions, mixed with content | absolute positions, mixed with content | only the offset $m - n$ |
# | longer than in training? | defined, but untested | impossible: no row to look up | defined, but untested |
# | used by | the 2017 Transformer | GPT-2, BERT | Llama, Mistral, Qwen, GPT-NeoX |
#
# ## 6. Heads that divide the work
#
# Hand-made heads show what is *possible*. Do trained heads really specialise? Let's train a tiny
# model on a task built to need several heads.
#
# **The task.** The input is a random string of 12 letters from a–j. At every position the model
# must report three things at once: the **previous** letter, the letter **two back**, and the
# **first** letter of the string. Each answer is one letter read from one position, and a head reads
# (roughly) one position at a time, so three lookups call for three heads.
#
# **The model** (`llmlab.lookup_task.AttentionOnlyModel`): token embeddings plus learned position embeddings,
# *one* causal multi-head attention layer ($d_{model} = 48$, three heads of $d_k = 16$), and a linear
# readout per lookup. It has no residual path and no MLP, so everything a readout knows came through
# an attention head.

# %%
# NBVAL_CHECK_OUTPUT
task = LookupTask(vocab_size=10, seq_len=12, lookups=("previous", "two back", "first"))
example, answers = task.batch(1, torch.Generator().manual_seed(7))     # (1, 12), (1, 12, 3)
print(f"{'input':>9}", " ".join(task.decode(example[0])))
for j, name in enumerate(task.lookups):
    row = ["·" if a < 0 else task.letters[a] for a in answers[0, :, j].tolist()]
    print(f"{name:>9}", " ".join(row))
print("(· = nothing to look up)")

# %% [markdown]
# Train it (the same gradient-descent loop as lesson 02, on fresh random strings every step) and,
# for comparison, the same model with **one** head of width 48. Section 1 showed that both have
# exactly the same number of parameters; only the grouping differs.

# %%
STEPS = 150 if QUICK else 600
models, histories = {}, {}
for n_heads in (3, 1):
    llmlab.set_seed(0)                                     # the same start for both
    models[n_heads] = AttentionOnlyModel(AttentionOnlyConfig(
        vocab_size=task.vocab_size, seq_len=task.seq_len, n_outputs=len(task.lookups),
        d_model=48, n_heads=n_heads))
    histories[n_heads] = train_lookup_model(models[n_heads], task, steps=STEPS, lr=3e-2)

accuracy = {n: lookup_accuracy(models[n], task) for n in models}  # on 1,000 fresh strings
print(f"{'':>8}" + "".join(f"{name:>11}" for name in task.lookups))
for n, acc in accuracy.items():
    print(f"{n} head{'s' if n > 1 else ' '}" + "".join(f"{acc[name]:>11.1%}" for name in task.lookups))

three, one = (sum(accuracy[n].values()) / len(task.lookups) for n in (3, 1))
assert three > (0.9 if QUICK else 0.99), f"three heads should solve the task, got {three:.1%}"
assert three > one + 0.15, "one head should do clearly worse than three"

# %%
fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
for n, losses in histories.items():
    ax.plot(losses, label=f"{n} head{'s' if n > 1 else ''} of width {48 // n}")
ax.set(xlabel="training step", ylabel="cross-entropy", yscale="log",
       title="same parameters, different split into heads")
ax.legend()
plt.show()

# %% [markdown]
# With three heads the model gets (nearly) every answer right; with one head, same size, it stays
# far behind. One head can only compute one weighted average per position. It can spread its weight
# over several positions, but then their letters arrive mixed together in one vector.
#
# ### The head explorer
#
# Now look inside the three-head model. `AttentionExplorer` takes the weights of any model (here one
# string, `(B, H, T, T)` with `batch_index=0`). Pick a head, or "all heads", and a query letter: the
# bar chart shows where that query looks. Things to try:
#
# 1. In "one head" view, step through heads 0, 1, 2 with query 11. Each looks at a different place.
# 2. Which head answers "first"? Its column 0 lights up for every query.
# 3. Pick query 0 in each head. Why does every head put all its weight on the first letter there?

# %%
with torch.no_grad():
    _, probe = models[3](example, return_weights=True)          # (1, H, T, T)
letters = task.decode(example[0])
explorer = AttentionExplorer(probe, letters, batch_index=0, masked="causal")
explorer.view.value = "layer"                                    # open on "all heads"
explorer

# %% [markdown]
# The same view as a plain figure, for where widgets do not render (on GitHub, for instance):

# %%
fig = plot_attention_grid(probe[0], letters, masked="causal")
fig

# %% [markdown]
# Each head has taken one job: one draws a stripe just below the diagonal (the previous letter),
# one a stripe two below (the letter two back), and one a column at position 0 (the first letter).
# Which head took which job depends on the random start; that three different jobs appear does not.
#
# A picture is convincing; a number is checkable. For each head and each lookup, measure the mean
# weight the head puts on the position that lookup reads, over 200 fresh strings. We count only
# positions 3 and later, where the three lookups read three different positions (at position 1,
# "previous" and "first" are the same letter).

# %%
with torch.no_grad():
    probe_tokens, _ = task.batch(200, torch.Generator().manual_seed(8))
    _, probe_weights = models[3](probe_tokens, return_weights=True)   # (200, H, T, T)
scores = lookup_scores(probe_weights, task)                           # (H, n_lookups)
print(f"{'':>7}" + "".join(f"{name:>10}" for name in task.lookups) + "   job")
for h, row in enumerate(scores.tolist()):
    job = task.lookups[max(range(len(row)), key=row.__getitem__)]
    print(f"head {h}" + "".join(f"{s:>10.2f}" for s in row) + f"   {job}")

best = scores.argmax(dim=0)                                           # the best head for each lookup
assert len(set(best.tolist())) == len(task.lookups), "each lookup should have its own head"
assert scores.max(dim=0).values.min() > (0.5 if QUICK else 0.8)

# %% [markdown]
# Real models are messier. A head of a trained GPT often does several things, some heads do little,
# and jobs can be spread over several heads or layers. But heads like these, a "previous-token head"
# and a head that attends to the start, are found again and again in trained language models, and
# lesson 06 lets you hunt for them in a GPT trained on Shakespeare.
#
# Remember lesson 03's caution when you do: a head's weights show where it reads from, not what the
# model does with what it reads. Our toy model makes the story easy to trust, because it has no
# other path (one layer, no residual, no MLP) and each lookup's accuracy was measured; in a real
# GPT the value vectors and the later layers decide too.
#
# Try it yourself: train with `n_heads=2` (and `d_model=48`), or add the lookup `"three back"` to
# the task. What happens to the accuracy, and to the heads?
#
# ## 7. Exercises
#
# Each exercise has a function to complete and a check that runs it on test cases and explains what
# went wrong. A wrong answer never raises: it gives you a hint. The checks use sizes different from
# this lesson's, so read every size from the tensors you are given.
#
# ### Exercise 1: split into heads
#
# Write `my_split_heads(x, n_heads)`: take `x` of shape `(B, T, C)` and return `(B, n_heads, T, d_k)`
# with `d_k = C // n_heads`, where head `h` of token `t` holds `x[b, t, h*d_k:(h+1)*d_k]`.

# %%
def my_split_heads(x, n_heads):
    """(B, T, C) -> (B, n_heads, T, C // n_heads)."""
    # Your code here (2 lines): read B, T, C from x.shape; view, then transpose.
    raise NotImplementedError


checks.check_split_heads(my_split_heads)

# %% [markdown]
# ### Exercise 2: merge the heads
#
# Write `my_merge_heads(y)`, the inverse: `(B, n_heads, T, d_k)` → `(B, T, n_heads * d_k)`. Try
# `.view` after the transpose first, to see the error it gives.

# %%
def my_merge_heads(y):
    """(B, n_heads, T, d_k) -> (B, T, n_heads * d_k)."""
    # Your code here (2 lines).
    raise NotImplementedError


checks.check_merge_heads(my_merge_heads)

# %% [markdown]
# ### Exercise 3: multi-head attention
#
# Write `my_multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads)` returning `(output, weights)`:
# the output `(B, T, C)` and the weights `(B, n_heads, T, T)`. The matrices are `(C, C)` and act as
# `x @ W` (no biases, no mask). Use your two functions above and lesson 03's formula.

# %%
def my_multi_head_attention(x, W_q, W_k, W_v, W_o, n_heads):
    """Multi-head self-attention: project, split, attend in every head, merge, project."""
    # Your code here (about 5 lines).
    raise NotImplementedError


checks.check_multi_head_attention(my_multi_head_attention)

# %% [markdown]
# ### Exercise 4: the sinusoidal table
#
# Write `my_sinusoidal_encoding(T, d_model)`, returning the `(T, d_model)` table of section 5 for an
# even `d_model`: $PE_{p,2i} = \sin(p / 10000^{2i/d_{model}})$ and
# $PE_{p,2i+1} = \cos(p / 10000^{2i/d_{model}})$, positions $p = 0, \dots, T-1$.

# %%
def my_sinusoidal_encoding(T, d_model):
    """(T, d_model): sin in the even columns, cos in the odd ones."""
    # Your code here (about 5 lines). Hint: torch.arange(0, d_model, 2) gives 2i.
    raise NotImplementedError


checks.check_sinusoidal_encoding(my_sinusoidal_encoding)

# %% [markdown]
# ## Recap
#
# - **Multi-head attention** splits the $d_{model}$-wide queries, keys and values (each computed from
#   all of a token's features) into $H$ heads of width $d_k = d_{model}/H$, runs
#   attention in every head at once (`view(B, T, H, d_k).transpose(1, 2)`), concatenates the heads'
#   outputs and mixes them with $W_o$. Each head scales by $\sqrt{d_k}$ of its own vectors.
# - More heads cost no more parameters or multiply-adds: they regroup the same numbers into more,
#   narrower attention patterns. One head computes one weighted average per token; several heads
#   can fetch several things at once, as the lookup task showed.
# - **Causal self-attention** (GPT) masks the future in every head. **Cross-attention** takes queries
#   from one sequence and keys and values from another; it belongs to encoder–decoder models (the
#   original Transformer, T5, Whisper). GPT is decoder-only and has none.
# - Attention is **permutation-equivariant**: reorder the tokens and the outputs are reordered the
#   same way, so without positions one layer sees "dog bites man" and "man bites dog" alike. A
#   stack of causal layers leaks some order through the mask (measured at "."), but only
#   indirectly.
# - **Positions** fix it: sinusoidal and learned encodings add a vector per position to the
#   embeddings; RoPE rotates queries and keys inside each head, so scores depend only on offsets.
# - Trained heads **specialise**: in our toy model, one head per lookup, visible in the explorer and
#   measured with a score per head.
#
# ## What's next
#
# Lesson 05, **the transformer block**, wraps multi-head attention with the pieces that make deep
# stacks trainable: a residual path around every sublayer, layer normalisation, and a feed-forward
# MLP applied to every token. You will count a block's parameters and see what each piece does to
# training.
