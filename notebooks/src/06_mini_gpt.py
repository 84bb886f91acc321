# %% [markdown]
# # 06 · A mini-GPT
#
# Every piece is ready. Lesson 02 gave us the task (predict the next token) and its loss; lessons
# 03 and 04 gave us causal multi-head attention; lesson 05 wrapped it into a transformer block with
# LayerNorm, a residual path and an MLP. In this lesson you put the pieces together into a GPT,
# train it on Tiny Shakespeare on your CPU while a live plot shows the loss, make it write, and
# then open it up: every attention head of every layer, with a few numbers that say what each
# head has learned to look at.
#
# **What you will learn**
#
# - how a GPT is assembled: token and position embeddings, a stack of blocks, a final LayerNorm
#   and an output head that shares its weights with the token embedding; why GPT is a
#   *decoder-only* model;
# - to count its parameters by hand, and to predict its loss before any training ($\ln V$);
# - to train it with the course's training loop (AdamW, warm-up and cosine decay, a live loss
#   plot), stop it and continue, save a checkpoint and load it back;
# - to generate text with temperature, top-k and top-p, how the context window slides, and what
#   the KV cache saves;
# - to explore all layers and heads of a trained model, and to find previous-token, same-token,
#   first-token and induction heads with simple scores.
#
# **Prerequisites:** lessons 02–05: cross-entropy and sampling (02), causal attention (03),
# multi-head attention and learned positions (04), the pre-norm transformer block (05).
#
# **Estimated time:** about 75 minutes. The notebook itself runs in 2 to 3 minutes on a laptop
# CPU, most of it training; section 3 also loads a model trained for longer, if you would rather
# skip ahead.

# %%
%matplotlib inline
import math
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import llmlab
from llmlab import checks
from llmlab.checkpoint import load_checkpoint
from llmlab.data import load_text, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.heads import chance_scores, head_scores, offset_score, token_score, top_heads
from llmlab.pretrained import load_pretrained
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, estimate_loss, train
from llmlab.transformer import block_parameter_count, count_parameters
from llmlab.viz import (AttentionExplorer, GenerationExplorer, LivePlot, plot_attention,
                        plot_attention_grid, plot_head_scores, plot_history, render_generation)

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: a much shorter training run
llmlab.set_seed(0)
# All cores but one, which stays free for the browser and Jupyter (one thread on a 2-core machine):
# torch's threads wait for each other whenever one of them loses its core.
torch.set_num_threads(llmlab.notebook_threads())
print(f"quick mode: {QUICK}; torch threads: {torch.get_num_threads()}")


# %% [markdown]
# ## 1. The whole model on one page
#
# We use the same data as lesson 02: Tiny Shakespeare, one token per character, the last 10 % kept
# aside for validation.

# %%
# NBVAL_CHECK_OUTPUT
text = load_text("tinyshakespeare")
tokenizer = CharTokenizer.train(text)
V = tokenizer.vocab_size
ids = torch.tensor(tokenizer.encode(text))                    # (N,) one id per character
train_ids, val_ids = train_val_split(ids, val_fraction=0.1)   # first 90 %, last 10 %
print(f"{len(ids):,} characters, a vocabulary of {V}: {len(train_ids):,} to train on, "
      f"{len(val_ids):,} to validate")

# %% [markdown]
# A GPT turns a window of token ids into one next-token prediction *per position*:
#
# ```
# ids (B, T)   ──wte──► token vectors    (B, T, C) ─┐
#                                                   + ──► x (B, T, C)
# 0, 1, …, T-1 ──wpe──► position vectors (T, C)    ─┘
#
# x ──► block 1 ──► … ──► block L ──► ln_f ──► lm_head ──► logits (B, T, V)
# ```
#
# - `wte` (word/token embedding) is a $V \times C$ table: one learned vector per token.
# - `wpe` (position embedding) is a `block_size` $\times\, C$ table: one learned vector per
#   position, as in lesson 04. Its size fixes the **context length** `block_size`, the most tokens
#   the model can read at once.
# - Each **block** is lesson 05's pre-norm block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#   The attention is *causal*: position $t$ reads positions $0, \dots, t$ only.
# - `ln_f`, a last LayerNorm, and `lm_head`, a linear map from $C$ numbers to $V$ logits.
#   `lm_head` has no weights of its own: it reuses `wte`'s table (**weight tying**, as in GPT-2), so
#   the logit of token $j$ is the dot product of the final vector with token $j$'s embedding.
#
# GPT is a **decoder-only** transformer: this stack of causal self-attention blocks is all there
# is. There is no encoder and no cross-attention. The name comes from the original Transformer
# (2017), which had an encoder reading the source sentence and a decoder writing the translation;
# the decoder's blocks also attended to the encoder's output through cross-attention. GPT keeps
# only the decoder's causal self-attention and MLPs, so it reads and continues a single sequence.
# (Encoder–decoder models such as T5 or Whisper are lesson 08.)
#
# `llmlab.gpt.GPTConfig` holds the sizes. We build a model of four blocks, each with four heads of
# width 32.

# %%
# NBVAL_CHECK_OUTPUT
config = GPTConfig(vocab_size=V, block_size=64, n_layer=4, n_head=4, n_embd=128)
model = GPT(config)
print(config)

# %% [markdown]
# ### The forward pass by hand
#
# `GPT.forward` is the diagram above, line by line. Run the model's own parts in that order and you
# must get the same logits.

# %%
prompt = "ROMEO:\nBut soft"
idx = torch.tensor([tokenizer.encode(prompt)])                   # (B, T) = (1, 15)
B, T = idx.shape
with torch.no_grad():
    x = model.transformer.wte(idx) + model.transformer.wpe(T)   # (B, T, C): token + position
    for block in model.transformer.h:                           # n_layer pre-norm blocks
        x = block(x)                                            # (B, T, C)
    logits = model.lm_head(model.transformer.ln_f(x))           # (B, T, V)
    reference = model(idx).logits                               # (B, T, V)
torch.testing.assert_close(logits, reference)
assert model.lm_head.weight is model.transformer.wte.weight     # tied: one table, two jobs
print("by hand == GPT.forward; logits", tuple(logits.shape), "= (B, T, vocab_size)")

# %% [markdown]
# Every position gets its own prediction: row $t$ of the logits scores the token after
# `prompt[:t + 1]`. That is what makes training efficient (one window of 64 characters is 64
# training examples), and it only works because the attention is causal. Check it: change the
# *last* character and only the *last* prediction may change.

# %%
changed = idx.clone()
changed[0, -1] = tokenizer.encode("X")[0]                        # "But sofX"
with torch.no_grad():
    after = model(changed).logits                                # (B, T, V)
torch.testing.assert_close(after[:, :-1], reference[:, :-1])    # positions 0..T-2: untouched
assert not torch.allclose(after[:, -1], reference[:, -1])
print("changing the last token changed only the last row of logits")

# %% [markdown]
# ### Counting the parameters
#
# Where do the parameters live? Lesson 05 counted one block: $12C^2 + 13C$. Add the rest.

# %%
# NBVAL_CHECK_OUTPUT
C, L = config.n_embd, config.n_layer
parts = {
    f"wte   token embeddings   {V} x {C}": model.transformer.wte.weight.numel(),
    f"wpe   position embeddings {config.block_size} x {C}": model.transformer.wpe.weight.numel(),
    f"h     {L} blocks x {block_parameter_count(C):,}": sum(count_parameters(b)
                                                          for b in model.transformer.h),
    f"ln_f  final LayerNorm    2 x {C}": count_parameters(model.transformer.ln_f),
    "lm_head (tied to wte)": 0,
}
for name, n in parts.items():
    print(f"{name:<40}{n:>10,}")
total = sum(parts.values())
print(f"{'total':<40}{total:>10,}")
assert total == model.num_parameters(non_embedding=False) == sum(p.numel() for p in model.parameters())

# %% [markdown]
# About 0.8 million parameters, 98 % of them in the blocks; GPT-2 small has 124 million, and the
# split is different there: with $V = 50{,}257$ its token table alone holds 39 million. Without
# tying, `lm_head` would add another $V \times C$ table.
#
# ### Exercise 1: count a GPT's parameters by hand
#
# Write `gpt_param_count(config)` returning the number of parameters of `GPT(config)`, computed from
# the sizes in `config` (all the configs in the check have `bias=True`). Do not build the model:
# the point is to know where every number lives.

# %%
def gpt_param_count(config):
    """The number of parameters of GPT(config): embeddings, blocks, final LayerNorm, tied head."""
    # Your code here: read config.vocab_size, config.block_size, config.n_layer, config.n_embd.
    raise NotImplementedError


checks.check_gpt_param_count(gpt_param_count)

# %% [markdown]
# ### The loss before training
#
# What should an untrained model score? GPT-2's initialisation draws the weights from a normal
# distribution with standard deviation 0.02 (and $0.02/\sqrt{2L}$ for the two projections per
# block that write into the residual stream, so that $L$ blocks of updates do not add up to a
# large residual stream). The final LayerNorm hands `lm_head` vectors of
# moderate size, and their dot products with such small embedding vectors are small too: every
# logit starts near 0. Equal logits would mean a uniform distribution, every character with
# probability $1/V$, and a cross-entropy of
#
# $$-\ln \frac{1}{V} = \ln V = \ln 65 \approx 4.17 .$$
#
# The random logits are not exactly equal, so the measured loss comes out a little above that.
# This is a useful check before any long run. A first loss far above $\ln V$ means the model starts
# out *confidently wrong* (logits that are too large, usually a bad initialisation), and the first
# hundreds of steps are spent undoing that.

# %%
init_loss = estimate_loss(model, val_ids, batch_size=32, block_size=config.block_size,
                          eval_steps=10)
with torch.no_grad():
    probs = torch.softmax(model(idx).logits[0, -1], dim=-1)      # (V,) next-token distribution
print(f"loss before training: {init_loss:.3f}   ln(V) = ln({V}) = {math.log(V):.3f}")
print(f"probabilities of the next character: {probs.min():.4f} to {probs.max():.4f} "
      f"(uniform: 1/{V} = {1 / V:.4f})")
assert abs(init_loss - math.log(V)) < 0.1

# %% [markdown]
# ## 2. Training on Tiny Shakespeare
#
# `llmlab.training.train` is the one training loop of the course. Each step it draws a batch of
# random 64-character windows, computes the loss at every position, and takes an AdamW step with
# gradient clipping. The learning rate rises linearly for `warmup_steps`, then decays along a
# cosine to `min_lr`. Every `eval_interval` steps it measures the loss on fixed batches of the
# training and validation text, and hands the history to a callback: here a `LivePlot`, which
# redraws the curves in place. The progress bar shows the recent training loss.
#
# The settings are the "tuned" recipe of `benchmarks/train_shakespeare.py`, which times recipes for
# this model on a 2-core CPU. They start from nanoGPT's CPU recipe (batch 12, AdamW, gradient
# clipping at 1.0) and change two things: a three times higher peak learning rate, which a model
# this small tolerates, and a cosine schedule exactly as long as the run, so that the learning
# rate is small when time is up. Quick mode, used by the tests, trains for 150 steps only.

# %%
train_config = TrainConfig(
    max_steps=150 if QUICK else 1300,
    batch_size=12, block_size=config.block_size,      # 12 windows of 64 characters per step
    lr=3e-3, min_lr=3e-5, warmup_steps=50,           # peak learning rate, cosine down to min_lr
    weight_decay=0.1, beta2=0.99, grad_clip=1.0,
    eval_interval=50 if QUICK else 100, eval_steps=10,
    seed=0, device="cpu",
    checkpoint_path="runs/mini_gpt.pt",               # written when training ends or is stopped
)
print(train_config)

# %% [markdown]
# ### Stop whenever you like
#
# Press the stop button (■) in the toolbar, or Ctrl-C in a terminal, and `train` stops cleanly after
# the current step: it returns the model as it is, the history so far and `interrupted=True`, and
# writes the checkpoint. Nothing is lost, and you can go on from there. (Waiting for the step to
# finish is what makes continuing exact; press twice if you cannot wait even that long.)
#
# To show it without waiting for you, we let a small `step_callback` (called after every step)
# raise `KeyboardInterrupt` a third of the way in, which is exactly what the stop button does.

# %%
STOP_AT = train_config.max_steps // 3


def press_stop(step, loss):
    """Stand in for the stop button: interrupt the run after STOP_AT steps."""
    if step == STOP_AT:
        raise KeyboardInterrupt


start = time.perf_counter()
first = train(model, train_ids, val_ids, train_config, callback=LivePlot(),
              step_callback=press_stop)
recent = sum(first.step_losses[-10:]) / 10                     # the last 10 steps' mean loss
print(f"interrupted: {first.interrupted} at step {first.step} (recent training loss "
      f"{recent:.2f}); {len(first.history)} evaluations in the history")

# %% [markdown]
# To continue, pass the state the first call returned (the step, the optimizer's moments, the
# random generator of the batches and the history) back in. The run goes on as if never stopped.
# After a restart of the notebook you would pick it up from the checkpoint file instead:
# `train(model, train_ids, val_ids, train_config, resume_from="runs/mini_gpt.pt")`.

# %%
result = train(model, train_ids, val_ids, train_config, callback=LivePlot(),
               state=first.state)
train_seconds = time.perf_counter() - start
print(f"{result.step} steps in {train_seconds:.0f} s with {torch.get_num_threads()} thread(s) on "
      f"{llmlab.cpu_name()}; validation loss {init_loss:.2f} -> {result.last_val_loss:.3f}")
assert not result.interrupted and result.step == train_config.max_steps
assert result.last_val_loss < (2.6 if QUICK else 2.0), "the model should have learned"

# %% [markdown]
# The same curves as a static figure (the widget's twin), with the loss of every training step drawn
# faintly behind: each step sees one batch, so it is noisy.

# %%
fig = plot_history(result.history, step_losses=result.step_losses,
                   title=f"mini-GPT: validation loss {result.last_val_loss:.3f} after {result.step} steps")
fig

# %% [markdown]
# Read the curve in three phases. In the first few dozen steps the loss falls from $\ln V$ to about
# 3.3: the model learns which characters are common (a unigram model scores about 3.3). Then it
# reaches the bigram level of lesson 02, about 2.5: which character follows which. Everything below
# that needs context, and that is what attention adds: spelling, words, names in capitals followed
# by a colon. Training and validation loss stay close together (the validation text, other scenes
# of other plays, is a little harder): the model has not started to memorise its training text.
#
# ## 3. Checkpoints, and a model trained for longer
#
# `train` wrote the checkpoint we asked for, `runs/mini_gpt.pt`. It holds the weights and the
# config, the optimizer state and the history, as plain tensors and numbers:
# `load_checkpoint` reads it with `torch.load(weights_only=True)`, which refuses to run code from a
# file, and rebuilds the model from the saved config.

# %%
path = Path(train_config.checkpoint_path)
saved = load_checkpoint(path)                                   # Checkpoint(model=..., step=..., ...)
with torch.no_grad():
    assert torch.equal(saved.model(idx).logits, model(idx).logits)  # the very same numbers
print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, step {saved.step}, "
      f"{len(saved.history)} evaluations; the loaded model gives identical logits")

# %% [markdown]
# ### The fast path: a shipped, pretrained model
#
# The course ships one more checkpoint: the same kind of model, trained for longer. **If you are
# impatient, you can start here**: `load_pretrained` needs no training and no download, and every
# section below works with it. Let's compare it with the model you just trained, on the same
# validation batches.

# %%
pretrained, pretrained_tokenizer = load_pretrained("shakespeare_char")
assert pretrained_tokenizer.vocab == tokenizer.vocab           # same characters, same ids
print(pretrained.config)
eval_block = min(config.block_size, pretrained.config.block_size)
val_losses = {
    "untrained (ln V)": init_loss,
    f"yours ({result.step} steps)": estimate_loss(model, val_ids, 32, eval_block, eval_steps=20),
    "shipped": estimate_loss(pretrained, val_ids, 32, eval_block, eval_steps=20),
}
for name, loss in val_losses.items():
    print(f"{name:<22} validation loss {loss:.3f}   perplexity {math.exp(loss):5.1f}")

# %% [markdown]
# Perplexity, $e^{\text{loss}}$, reads as "choosing among this many characters": from 65 before
# training to a handful. The shipped model ran the same recipe for 8000 steps instead of 1300
# (about 5 minutes on a 2-core CPU; `data/pretrained/README.md` has the command and the numbers).
# After 8000 steps, six passes over the training text, its training loss (1.36) sits well below
# its validation loss: it has begun to memorise, and more steps would help less and less.
#
# The rest of the lesson uses the shipped model, so its outputs are the same for everyone; put
# `model` in its place to look at your own.
#
# ## 4. Making it write
#
# `GPT.generate(idx, max_new_tokens, ...)` is lesson 02's sampling loop around the GPT: compute the
# logits of the last position, turn them into probabilities (with `temperature`, `top_k` and
# `top_p` as in lesson 02, or `greedy=True`), draw a token, append it, repeat. A seeded
# `torch.Generator` makes a sample repeatable.

# %%
def write(m, prompt, n=300, seed=0, **settings):
    """Continue prompt with n new characters from model m; returns the whole text."""
    idx = torch.tensor([tokenizer.encode(prompt)])                          # (1, T)
    out = m.generate(idx, n, generator=torch.Generator().manual_seed(seed), **settings)
    return tokenizer.decode(out[0].tolist())                                # (1, T + n) -> str


print(write(pretrained, "ROMEO:\n", temperature=0.8))

# %% [markdown]
# Not Shakespeare, but recognisably a play: names in capitals with a colon, line breaks, mostly
# real words, some invented ones that sound right. The model has no idea what the words mean; it
# has learned which characters tend to follow which *in context*.
#
# Greedy decoding needs no seed: it always takes the likeliest character. It soon repeats itself,
# as in lesson 02, because the likeliest continuation of a common phrase is usually another common
# phrase.

# %%
# NBVAL_CHECK_OUTPUT
print(write(pretrained, "ROMEO:\n", n=120, greedy=True))

# %%
for settings in (dict(temperature=0.5), dict(temperature=1.2), dict(temperature=1.0, top_p=0.9)):
    print(f"--- {settings}")
    print(write(pretrained, "JULIET:\n", n=160, seed=1, **settings))

# %% [markdown]
# Low temperature is safe and repetitive, high temperature inventive and error-prone; top-p cuts
# off the unlikely tail and keeps most of the variety.
#
# ### The context window slides
#
# The model has `block_size` position vectors, so it can read at most `block_size` tokens. Past
# that, `generate` feeds it only the most recent `block_size` tokens: the window slides along the
# text, and whatever fell out of it is forgotten. A name mentioned 100 characters ago is gone for a
# model with a 64-character window.
#
# ### Exercise 2: crop the context
#
# Write `crop_context(idx, block_size)`: given token ids `idx` of shape `(B, T)`, return what the
# model reads, the last `block_size` tokens of every sequence (all of them if `T <= block_size`).

# %%
def crop_context(idx, block_size):
    """The last block_size tokens of each sequence in idx (B, T)."""
    # Your code here (1 line).
    raise NotImplementedError


checks.check_crop_context(crop_context)

# %% [markdown]
# ### The KV cache
#
# Each new token needs the attention of the newest position to every earlier one. Recomputing the
# whole window for every new token repeats almost all of the work: the keys and values of the
# earlier tokens have not changed. A **KV cache** keeps every layer's keys and values, so each step
# runs the model on the newest token only. `generate` uses one by default (`use_cache=True`).
#
# The results must be identical. Let's check and time both, filling the whole context window
# (once the window slides, every token's position changes and the cache is rebuilt each step; the
# docstring of `GPT.generate` explains).

# %%
prompt_idx = torch.tensor([tokenizer.encode("ROMEO:")])                    # (1, 6)
n_new = pretrained.config.block_size - prompt_idx.shape[1]                  # fill the window
outputs, seconds = {}, {}
for use_cache in (False, True):
    gen = torch.Generator().manual_seed(0)
    tic = time.perf_counter()
    outputs[use_cache] = pretrained.generate(prompt_idx, n_new, temperature=0.8, generator=gen,
                                             use_cache=use_cache)
    seconds[use_cache] = time.perf_counter() - tic
assert torch.equal(outputs[True], outputs[False])
print(f"{n_new} new tokens: {seconds[False] * 1e3:.0f} ms without the cache, "
      f"{seconds[True] * 1e3:.0f} ms with it (same tokens), on {llmlab.cpu_name()}")

# %% [markdown]
# With the cache the model processes 63 positions instead of about 2,000 (6 + 7 + … + 63), yet
# the time falls far less than that. At this size each step's cost is mostly fixed overhead
# (Python, and launching many small operations), not arithmetic. For a model reading thousands of
# tokens the arithmetic dominates, and the cache is what makes generation affordable at all.
# Lesson 09 does the arithmetic.
#
# ### The generation explorer
#
# Now write with it yourself. Type a prompt (any characters from the play; the explorer tells you
# when a character is not in the vocabulary), set the sliders and press **Generate**. The same
# settings and seed always give the same text; **New sample** moves to the next seed for a fresh
# one. Each generated character is shaded by the probability the model gave it (at temperature 1):
# dark shades mark the surprising choices. Things to try:
#
# 1. Raise the temperature to 1.5 and watch the shading darken; lower it to 0.3 and watch the text
#    repeat.
# 2. Set top-k to 1. Why is that the same as ticking "greedy"?
# 3. Start from the middle of a word, e.g. `ROMEO:\nWhat li`. Does the model finish the word?

# %%
explorer = GenerationExplorer(pretrained, tokenizer, prompt="ROMEO:\n", max_new_tokens=300,
                              temperature=0.8, seed=0)
explorer

# %% [markdown]
# The static twin, for where widgets do not show: the same prompt, settings and seed give the same
# text.

# %%
sample = render_generation(pretrained, tokenizer, prompt="ROMEO:\n", max_new_tokens=300,
                           temperature=0.8, seed=0)
assert sample.text == explorer.current_text
sample

# %% [markdown]
# ## 5. Inside the model: every layer, every head
#
# Lesson 04 watched the heads of a toy model take on separate jobs. Does that happen in a real
# language model trained on nothing but "predict the next character"? `model(idx,
# return_attention=True)` returns every attention weight, stacked as `(L, B, H, T, T)`: layers,
# batch, heads, queries, keys. Here is a passage from the validation text, which the model never
# trained on.

# %%
explored = pretrained                                  # put `model` here to explore your own
passage = tokenizer.decode(val_ids[2:66].tolist())                         # 64 characters
tokens = list(passage)
passage_idx = torch.tensor([tokenizer.encode(passage)])                    # (1, T)
with torch.no_grad():
    attention = explored(passage_idx, return_attention=True).attention     # (L, B, H, T, T)
print(repr(passage))
print("attention", tuple(attention.shape), "= (layers, batch, heads, T, T)")

# %% [markdown]
# The attention explorer shows it all. It opens on the overview, one row per layer and one column
# per head; choose "one head" and a query character to see where that character looks. Things to
# try:
#
# 1. Layer 0 has three heads that draw a stripe below the diagonal. How far below is each stripe,
#    that is, how many characters back does each head look?
# 2. In layer 3, head 2, pick a query on the last line, e.g. the `G` of the second "Good". Which
#    character does it look at? And the queries after it?
# 3. Most heads of layers 1–3 spread their weight thinly over many characters. Pick one and try a
#    few queries: can you see what it collects?

# %%
explorer_attention = AttentionExplorer(attention, tokens, batch_index=0, masked="causal")
explorer_attention.view.value = "all"
explorer_attention

# %% [markdown]
# The same overview as a static figure:

# %%
fig = plot_attention_grid(attention[:, 0], tokens, layer=None, masked="causal")
fig

# %% [markdown]
# ### Scores that name what a head does
#
# Pictures of one passage can fool you; a number averaged over many passages is harder to fool.
# `llmlab.heads` has a score for each pattern below, the mean weight a head puts where the pattern
# says, so a head that does nothing else scores 1.0:
#
# | score | weight on | picture |
# |---|---|---|
# | previous token | key $i - 1$ | a stripe just below the diagonal |
# | same token | earlier copies of the query's own character | scattered dots |
# | first token | key 0 | a bright first column |
# | self | key $i$ | the diagonal |
# | induction | the character right *after* an earlier copy of the query's character | dots one step right of those |
#
# An **induction head** completes repeats. Having read "Good morrow … Good m", at the second "m" it
# looks at what followed the first "m", an "o", which is what should come next. Such heads were
# found in many trained transformers and are thought to do much of their copying from context.
#
# A head that spreads its weight evenly over everything before it also scores a little on each
# pattern, so we compute that **chance level** too, and average everything over 64 windows of
# validation text.

# %%
windows = torch.stack([val_ids[s:s + 64] for s in range(0, 64 * 997, 997)])   # (64, 64): B, T
with torch.no_grad():
    many = explored(windows, return_attention=True).attention                 # (L, 64, H, T, T)
scores = head_scores(many, windows)                                            # {name: (L, H)}
chance = chance_scores(windows)              # the scores of a head spreading its weight evenly
fig = plot_head_scores(scores, chance)
fig

# %%
# NBVAL_CHECK_OUTPUT
best = top_heads(scores)
for name, (layer, head, value) in best.items():
    print(f"{name:>15}: layer {layer}, head {head}   score {value:.2f} = "
          f"{value / chance[name]:4.1f} x chance")

# %% [markdown]
# Here is the top head of each score on the first 32 characters of the passage:

# %%
fig, axes = plt.subplots(2, 3, figsize=(11, 7.6), layout="constrained")
for ax, (name, (layer, head, value)) in zip(axes.flat, best.items()):
    plot_attention(attention[:, 0], tokens, layer=layer, head=head, ax=ax, masked="causal",
                   max_tokens=32, colorbar=False)
    ax.set_title(f"{name}: layer {layer}, head {head} (score {value:.2f})", loc="left",
                 fontsize=10)
axes.flat[-1].axis("off")                            # five patterns, six panels
plt.show()

# %% [markdown]
# One head stands out: **layer 0, head 2 is a previous-token head**, with 0.90 of its weight on the
# character just before the query, fifteen times chance. The other four scores find nothing: their
# best heads score at most 1.7 times chance, and their pictures show no clear pattern. So be careful with the
# word "top": every score has a top head, but only a score well above chance means the head does
# that job.
#
# That is an honest result, not a failure. This model is small, reads only 64 characters, and was
# trained for a few minutes; patterns such as induction heads are reported in models trained on
# longer contexts and much more text, where copying from earlier in the context pays off. Within
# 64 characters of a play, a word seldom repeats. Large models also tend to park spare attention
# on the first token of their context; our windows start at arbitrary characters, and no head here
# does that.
#
# ### Exercise 3: the previous-token score
#
# Write `my_previous_token_score(attn)`: `attn` holds attention weights of shape `(..., T, T)`, rows
# are queries and columns keys, with any number of leading axes (one head `(T, T)`, a layer's heads
# `(H, T, T)`, or layers and heads `(L, H, T, T)`). Return, for every head, the mean weight that a
# query puts on the token just before it, averaged over the queries that have one ($i = 1, \dots,
# T-1$): shape `(...)`. Hint: `torch.diagonal` has an `offset`.

# %%
def my_previous_token_score(attn):
    """(..., T, T) -> (...): the mean weight on key i - 1 over the query rows i = 1..T-1."""
    # Your code here (1 or 2 lines).
    raise NotImplementedError


checks.check_previous_token_score(my_previous_token_score)

# %% [markdown]
# ### What the other heads do
#
# Our five scores found one job. The overview shows more: two more stripes in layer 0, and bright
# columns in layer 3. Two more scores from `llmlab.heads` measure them. `offset_score(attn, k)` is
# the mean weight on the token $k$ back ($k = 1$ is the previous-token score), and
# `token_score(attn, ids, token_id)` the mean weight on every character equal to `token_id`. A head
# that ignores which character sits where scores about that character's share of the text; one
# that seeks it out scores far more.

# %%
# NBVAL_CHECK_OUTPUT
L_x, H_x = scores["self"].shape
offsets = torch.stack([offset_score(many, k).mean(dim=1) for k in range(5)])  # (5, L, H): k back
print("weight on the token k back, layer 0:")
print("        " + "".join(f"{f'k = {k}':>8}" for k in range(5)))
for head in range(H_x):
    print(f"head {head} " + "".join(f"{float(offsets[k, 0, head]):8.2f}" for k in range(5)))
print(f"(every head of layers 1-{L_x - 1}: at most {float(offsets[:, 1:].max()):.2f})\n")

newline, space = tokenizer.encode("\n")[0], tokenizer.encode(" ")[0]
by_char = {}
for name, token_id in (("newline", newline), ("space", space)):
    by_char[name] = token_score(many, windows, token_id).mean(dim=1)          # (L, H)
    share = (windows == token_id).float().mean()
    print(f"weight on {name} characters ({share:.1%} of the characters):")
    for layer in range(L_x):
        print(f"layer {layer} " + "".join(f"{float(v):8.2f}" for v in by_char[name][layer]))

# %% [markdown]
# Now the picture is clearer.
#
# - **Layer 0 reads the last few characters, one head per distance**: head 2 looks one character
#   back, head 0 two back, head 3 three back (and a little four back). Together with the token
#   itself, layer 0 hands every position its last four characters, which is what a 4-gram model
#   would see, built from attention.
# - **Layer 3, head 2 finds the line break**: it puts about half of its weight on newline
#   characters, which are under 5 % of the text (mostly the most recent one). Where the line
#   started tells the model how long the line is, and after a name and a colon, that a speech
#   begins. Head 3 of the same layer does it more weakly; layer 2, head 3 leans towards spaces,
#   where the current word started.
# - Most heads of layers 1–3 spread their weight over many characters. They average what came
#   before, and what they collect depends on the values, which attention maps do not show.
#
# Here are the four specialists on the whole passage:

# %%
newline_layer, newline_head = divmod(int(by_char["newline"].argmax()), H_x)
specialists = [(0, int(offsets[k, 0].argmax()), f"{k} back") for k in (1, 2, 3)]
specialists.append((newline_layer, newline_head, "newlines"))
fig, axes = plt.subplots(2, 2, figsize=(10, 10), layout="constrained")
for ax, (layer, head, job) in zip(axes.flat, specialists):
    plot_attention(attention[:, 0], tokens, layer=layer, head=head, ax=ax, masked="causal",
                   colorbar=False)
    ax.set_title(f"layer {layer}, head {head}: {job}", loc="left", fontsize=11)
plt.show()

# %% [markdown]
# Real models are messier than the toy of lesson 04: several heads share a job, most do something
# no single score captures, and which head does what changes from one training run to the next
# (explore your own `model` to see). But the jobs themselves, reading the previous tokens and
# finding where the current line or word began, are found again and again in trained language
# models, and you have just measured them.
#
# ## Recap
#
# - A **GPT** is token embeddings plus learned position embeddings, a stack of pre-norm blocks of
#   causal self-attention and MLP, a final LayerNorm and an output head tied to the token
#   embedding. It is **decoder-only**: no encoder, no cross-attention, one sequence read left to
#   right. Causality lets every position be a training example.
# - Our model has about 0.8 M parameters, nearly all in its blocks ($12C^2 + 13C$ each). At
#   initialisation its loss is $\ln V$, the loss of a uniform guess.
# - `train` runs AdamW with warm-up and cosine decay, shows a progress bar and a live plot,
#   survives the stop button (`interrupted=True`, continue with `state=`), and writes checkpoints
#   that load without unpickling code.
# - `generate` samples with temperature, top-k and top-p, reads at most `block_size` tokens (the
#   window slides), and with a **KV cache** feeds only the newest token each step.
# - With `return_attention=True` the model hands over every attention weight, `(L, B, H, T, T)`,
#   for the attention explorer and `plot_attention_grid`. Scores averaged over many windows, and
#   compared with chance, say what a head does: here a previous-token head and heads two and three
#   characters back in layer 0 (a 4-gram view built from attention), and a head in layer 3 that
#   finds the last line break. Same-token, first-token and induction heads did not appear in this
#   small model; every score has a top head, but only a score well above chance names a job.
#
# ## What's next
#
# The core path ends here: you have built, trained and opened a GPT. Three lessons are planned
# beyond it. **Lesson 07** fine-tunes a pretrained mini-GPT as a sentiment classifier and compares
# it with training from scratch. **Lesson 08** builds the encoder–decoder transformer that GPT left
# behind, trains it on a toy translation task and reads its cross-attention alignments. **Lesson
# 09** goes inside and beyond: the arithmetic of the KV cache, FLOPs and memory, loading GPT-2's
# weights into the same `GPT` class, and what changes at scale.
