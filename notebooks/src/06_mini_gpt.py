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
# - what the optimiser does (Adam's moments, AdamW's decoupled weight decay, warm-up and cosine
#   decay, gradient clipping) and what `model.train()` / `model.eval()` switch;
# - to train it with the course's training loop and a live loss plot, stop it and continue, save
#   a checkpoint and load it back, and to compare it honestly with a counting baseline;
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
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import llmlab
from llmlab import checks
from llmlab.checkpoint import load_checkpoint
from llmlab.data import load_text, random_batch, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.heads import chance_scores, head_scores, offset_score, token_score, top_heads
from llmlab.pretrained import load_pretrained, pretrained_files
from llmlab.tokenizers import CharTokenizer
from llmlab.training import TrainConfig, estimate_loss, lr_at, make_optimizer, train
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
#   `lm_head` has no weights of its own: it reuses `wte`'s table (**weight tying**, proposed for
#   language models by Press & Wolf, 2017, and Inan et al., 2017, and used by GPT-2), so the logit of
#   token $j$ is the dot product of the final vector with token $j$'s embedding.
#
# GPT (Radford et al., 2018) and GPT-2 (Radford et al., 2019) are **decoder-only** transformers:
# this stack of causal self-attention blocks is all there is. There is no encoder and no cross-attention. The name comes from the original Transformer
# (2017), which had an encoder reading the source sentence and a decoder writing the translation;
# the decoder's blocks also attended to the encoder's output through cross-attention. GPT keeps
# only the decoder's causal self-attention and MLPs, so it reads and continues a single sequence.
# (Encoder–decoder models such as T5 or Whisper keep both halves, joined by cross-attention.)
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
print(f"for comparison, GPT-2 small's token table: 50,257 x 768 = {50_257 * 768:,}")
assert total == model.num_parameters(non_embedding=False) == sum(p.numel() for p in model.parameters())

# %% [markdown]
# About 0.8 million parameters, 98 % of them in the blocks. GPT-2 small has 124 million by this
# count (its paper says 117M; lesson 05 computes all four GPT-2 sizes both ways), and the split is
# different there: with $V = 50{,}257$ its token table alone holds 39 million. Without
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
# What should an untrained model score? `llmlab` initialises like nanoGPT: every weight matrix and
# both embedding tables from a normal distribution with standard deviation 0.02, and
# $0.02/\sqrt{2L}$ for the two projections per block that write into the residual stream (the
# GPT-2 paper's scaling by $1/\sqrt{N}$ for $N = 2L$ residual layers, so that $L$ blocks of updates
# do not add up to a large residual stream). GPT-2's own code differs in one detail: it drew the
# position table `wpe` with standard deviation 0.01; nanoGPT and Hugging Face use 0.02 for it.
#
# The final LayerNorm hands `lm_head` vectors of moderate size, and their dot products with such
# small embedding vectors are small too: every logit starts near 0. Equal logits would mean a uniform distribution, every character with
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
print(f"init std: wte {model.transformer.wte.weight.std():.4f}, wpe "
      f"{model.transformer.wpe.weight.std():.4f}, attn.c_proj "
      f"{model.transformer.h[0].attn.c_proj.weight.std():.4f} (0.02 / sqrt(2 x {L}) = "
      f"{0.02 / math.sqrt(2 * L):.4f})")
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
# this model on a 2-core CPU. Quick mode, used by the tests, trains for 150 steps only.

# %%
FULL_STEPS = 1300                                    # the full run; quick mode trains 150 steps
train_config = TrainConfig(
    max_steps=150 if QUICK else FULL_STEPS,
    batch_size=12, block_size=config.block_size,      # 12 windows of 64 characters per step
    lr=3e-3, min_lr=3e-5, warmup_steps=50,           # peak learning rate, cosine down to min_lr
    weight_decay=0.1, beta2=0.99, grad_clip=1.0,
    eval_interval=25 if QUICK else 100, eval_steps=10,  # quick: still a few points per curve
    seed=0, device="cpu",
    checkpoint_path="runs/mini_gpt.pt",               # written when training ends or is stopped
)
print(train_config)

# %% [markdown]
# The recipe starts from nanoGPT's for the same data, `config/train_shakespeare_char.py`, which
# is written for a GPU, and from the smaller variant its README suggests for a CPU. The table puts
# the three side by side; the last column is read from the configs above.

# %%
NANOGPT = {  # config/train_shakespeare_char.py, and the CPU command in nanoGPT's README
    "layers / heads / width": ("6 / 6 / 384", "4 / 4 / 128"),
    "context (block_size)": (256, 64), "batch size": (64, 12), "dropout": (0.2, 0.0),
    "peak learning rate": (1e-3, 1e-3), "steps": (5000, 2000), "warm-up steps": (100, 100),
    "minimum learning rate": (1e-4, 1e-4), "beta2": (0.99, 0.99), "weight decay": (0.1, 0.1),
    "gradient clipping": (1.0, 1.0),
}
ours = {
    "layers / heads / width": f"{config.n_layer} / {config.n_head} / {config.n_embd}",
    "context (block_size)": train_config.block_size, "batch size": train_config.batch_size,
    "dropout": config.dropout, "peak learning rate": train_config.lr,
    "steps": train_config.max_steps,                        # 1300 in a full run
    "warm-up steps": train_config.warmup_steps, "minimum learning rate": train_config.min_lr,
    "beta2": train_config.beta2, "weight decay": train_config.weight_decay,
    "gradient clipping": train_config.grad_clip,
}
print(f"{'':<24}{'nanoGPT (GPU)':>15}{'nanoGPT (CPU)':>15}{'this lesson':>13}")
for name, (gpu, cpu) in NANOGPT.items():
    print(f"{name:<24}{gpu!s:>15}{cpu!s:>15}{ours[name]!s:>13}")
assert ours["peak learning rate"] == 3 * NANOGPT["peak learning rate"][1]
gpu_size = GPT(GPTConfig(vocab_size=V, block_size=256, n_layer=6, n_head=6,
                         n_embd=384)).num_parameters(non_embedding=False)
print(f"nanoGPT's GPU model: {gpu_size:,} parameters, {gpu_size / total:.0f} x ours; "
      f"{64 * 256:,} tokens per step, {64 * 256 / (12 * 64):.0f} x ours")

# %% [markdown]
# Against nanoGPT's CPU recipe, the model, batch, context, betas, weight decay and clipping are
# the same; four settings of the schedule differ:
#
# - **peak learning rate** 3e-3 instead of 1e-3: three times higher, which a model this small
#   tolerates;
# - **steps** 1300 instead of 2000, with the cosine still exactly as long as the run, so that the
#   learning rate is small when time is up;
# - **warm-up** 50 steps instead of 100;
# - **minimum learning rate** 3e-5 (the peak / 100) instead of 1e-4 (the peak / 10).
#
# The GPU recipe trains a model 13 times larger on 21 times more tokens per step, with dropout;
# it is out of reach of a CPU in a lesson.
#
# ### The optimiser: AdamW
#
# Plain gradient descent (lesson 02) moves every parameter by the same multiple of its gradient.
# **Adam** (Kingma & Ba, 2015) gives every parameter its own step size. For a parameter $\theta$
# with gradient $g_t$ at step $t$, it keeps two running averages, of the gradient and of its square:
#
# $$m_t = \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 .$$
#
# Both start at 0, so early on they are too small; dividing by $1 - \beta^t$ corrects that
# (**bias correction**): $\hat m_t = m_t / (1 - \beta_1^t)$, $\hat v_t = v_t / (1 - \beta_2^t)$.
# The update is
#
# $$\theta_t = \theta_{t-1} - \eta_t \left( \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
#   + \lambda\, \theta_{t-1} \right).$$
#
# $\hat m_t / \sqrt{\hat v_t}$ is about $\pm 1$ for a parameter whose gradient keeps its sign,
# and small for one whose gradient flips around, so the learning rate $\eta_t$ sets the size of a
# step almost regardless of the gradient's scale. ($\epsilon = 10^{-8}$, PyTorch's default, only
# guards the division.)
#
# The last term is **decoupled weight decay**, the "W" of **AdamW** (Loshchilov & Hutter, 2019): it
# shrinks the weights by a fraction $\eta_t \lambda$ each step, outside the adaptive division. An
# L2 penalty added to the loss would instead pass through $1/\sqrt{\hat v_t}$ and shrink
# parameters with large gradients less; decoupling makes the decay the same for every parameter.
#
# `llmlab.training.make_optimizer` decays only tensors with two or more dimensions (weight
# matrices, and also the embedding tables) with $\lambda$ = `weight_decay`, and leaves biases and
# LayerNorm gains alone: pulling a bias or a gain towards 0 has no regularising meaning. Decaying
# the embeddings is nanoGPT's choice, which `llmlab` follows; GPT-2's optimiser settings were never
# published, so we cannot say what GPT-2 did.

# %%
optimizer = make_optimizer(model, train_config)
name_of = {id(p): n for n, p in model.named_parameters()}
for group in optimizer.param_groups:
    params = group["params"]
    kinds = sorted({".".join(name_of[id(p)].split(".")[-2:]) for p in params})  # e.g. ln_1.bias
    print(f"{group['group']:>8}: weight decay {group['weight_decay']}, "
          f"{sum(p.numel() for p in params):,} parameters in {len(params)} tensors "
          f"({', '.join(kinds)})")
print(f"betas {optimizer.defaults['betas']}, eps {optimizer.defaults['eps']}")
del optimizer                                           # train() builds its own

# %% [markdown]
# ### The learning-rate schedule
#
# A high learning rate at the very start, while Adam's averages hold only a few gradients and the
# weights are random, can throw the model far off. So the rate rises linearly over the first $W$ =
# `warmup_steps` steps, then follows half a cosine from the peak $\eta_{max}$ = `lr` down to
# $\eta_{min}$ = `min_lr` at the last step $S$ = `max_steps`:
#
# $$\eta_t = \eta_{max} \frac{t + 1}{W + 1} \;\; (t < W), \qquad
#   \eta_t = \eta_{min} + \tfrac12 \left(1 + \cos \frac{\pi (t - W)}{S - W}\right)
#   (\eta_{max} - \eta_{min}) \;\; (t \ge W).$$
#
# (The $t + 1$ lets step 0 learn a little instead of wasting a batch at rate 0.) The plot is drawn
# with `llmlab.training.lr_at`, the very function `train` calls at every step.

# %%
full_config = replace(train_config, max_steps=FULL_STEPS)   # the full run's schedule
steps = range(full_config.max_steps + 1)
fig, ax = plt.subplots(figsize=(6.5, 3), layout="constrained")
ax.plot(steps, [lr_at(t, full_config) for t in steps])
ax.axvline(full_config.warmup_steps, color="grey", ls=":", lw=1)
ax.set(xlabel="step", ylabel="learning rate", yscale="log",
       title=f"warm-up {full_config.warmup_steps} steps to {full_config.lr:g}, "
             f"cosine to {full_config.min_lr:g} at step {full_config.max_steps}")
plt.show()
print(f"lr at steps 0, {full_config.warmup_steps}, 650, {full_config.max_steps}: "
      + ", ".join(f"{lr_at(t, full_config):.2e}" for t in (0, full_config.warmup_steps, 650,
                                                           full_config.max_steps)))

# %% [markdown]
# ### Gradient clipping
#
# Now and then one batch gives an unusually large gradient, and one huge step can undo much of
# the training so far. **Clipping by global norm** treats all gradients as one long vector $g$ and
# shrinks it when it is too long:
#
# $$\lVert g \rVert = \sqrt{\textstyle\sum_p \lVert g_p \rVert^2}, \qquad
#   g \leftarrow g \cdot \min\!\left(1, \frac{c}{\lVert g \rVert}\right),$$
#
# with $c$ = `grad_clip` = 1.0 here (`torch.nn.utils.clip_grad_norm_`). The direction is kept, only
# the length is capped. Here is one batch's gradient for the untrained model:

# %%
x_batch, y_batch = random_batch(train_ids, 12, config.block_size,
                                generator=torch.Generator().manual_seed(0))   # (12, 64) each
model.zero_grad()
model(x_batch, y_batch).loss.backward()
norm_before = torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip).item()
norm_after = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())).item()
model.zero_grad()                                       # leave no gradient behind for train()
print(f"global gradient norm {norm_before:.2f}; after clipping at {train_config.grad_clip}: "
      f"{norm_after:.2f}")
assert norm_after <= train_config.grad_clip + 1e-4

# %% [markdown]
# ### Training mode and evaluation mode: dropout
#
# Some layers behave differently while training. The one in a GPT is **dropout** (Srivastava et
# al., 2014): during training it sets each number to 0 with probability $p$ and multiplies the rest
# by $1/(1-p)$, so that the model cannot lean on any single feature; at evaluation it does nothing.
# `model.train()` switches such layers on, `model.eval()` off (both set `model.training`, for every
# submodule). Losses are measured, and text is generated, in evaluation mode, so that the same
# input always gives the same prediction: `estimate_loss` and `generate` switch to `eval()` and
# back on their own. Our model has `dropout=0.0`, like nanoGPT's CPU recipe for this small model,
# so for it both modes give the same numbers. A model with dropout
# 0.2 shows the difference:

# %%
dropout_model = GPT(GPTConfig(vocab_size=V, block_size=64, n_layer=1, n_head=2, n_embd=32,
                              dropout=0.2))
with torch.no_grad():
    dropout_model.train()
    a, b = dropout_model(idx).logits, dropout_model(idx).logits         # (1, T, V) each
    print(f"train mode: the same input twice, logits differ by up to {(a - b).abs().max():.3f}")
    dropout_model.eval()
    a, b = dropout_model(idx).logits, dropout_model(idx).logits
    print(f"eval mode:  the same input twice, logits differ by up to {(a - b).abs().max():.3f}")
assert torch.equal(a, b)

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
# If you stopped this cell with ■, running it again goes on from where that stop left off.
previous = globals().get("result")
state = previous.state if previous is not None and previous.interrupted else first.state
result = train(model, train_ids, val_ids, train_config, callback=LivePlot(), state=state)
train_seconds = time.perf_counter() - start
if result.interrupted:
    print(f"You stopped the run at step {result.step} of {train_config.max_steps}: the model keeps "
          "everything it learned so far. Run this cell again to finish training (the cells below "
          "assume a finished run).")
else:
    print(f"{result.step} steps in {train_seconds:.0f} s with {torch.get_num_threads()} thread(s) "
          f"on {llmlab.cpu_name()}; validation loss {init_loss:.2f} -> {result.last_val_loss:.3f}")
    assert result.step == train_config.max_steps
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
# training to a handful. The shipped model ran the same recipe for 8000 steps instead of 1300.
# `data/pretrained/README.md` has the command and the numbers: it took 304 s, about 5 minutes, on
# a 2-core Intel Xeon cloud machine with **2** torch threads. This notebook trains with fewer
# threads (one on a 2-core machine, to keep a core free for Jupyter), and at your run's pace the
# 8000 steps would take longer:

# %%
per_step = train_seconds / result.step
print(f"your run: {per_step * 1e3:.0f} ms per step with {torch.get_num_threads()} thread(s); "
      f"8000 steps at that pace: about {8000 * per_step / 60:.0f} minutes")
shipped_history = load_checkpoint(pretrained_files("shakespeare_char")[0]).history[-1]
print(f"shipped model after {shipped_history['step']} steps: training loss "
      f"{shipped_history['train_loss']:.3f}, validation loss {shipped_history['val_loss']:.3f}")

# %% [markdown]
# The line above is this machine's figure: with one thread the 8000 steps take longer than the
# shipped run's 5 minutes on two; a laptop is often faster. After six passes over the training text,
# the shipped model's training loss sits well below its validation loss: it has begun to memorise,
# and more steps would help less and less.
#
# ### An honest baseline: counting
#
# Is a 1.87 worth a transformer? Lesson 02 answered "how far can counting go?" with count models:
# the best on this validation text was the **5-gram**, which conditions on the previous four
# characters (a model with $n$ characters of context counts runs of $n + 1$: an $(n+1)$-gram).
# Here it is again in a few lines, fit on the same training text. Each context of four characters
# plus the next one becomes one integer (its digits in base $V$), and add-0.01 smoothing gives
# unseen pairs a little probability, as in lesson 02.

# %%
def count_ngram_loss(train_ids, val_ids, n, k=0.01):
    """Validation loss (nats) of an (n+1)-gram count model with add-k smoothing, fit on train_ids."""
    digits = V ** torch.arange(n, -1, -1)                              # (n + 1,) base-V place values
    def keys(ids):
        """Each run of n + 1 ids as one integer."""
        return ids.unfold(0, n + 1, 1) @ digits                        # (N - n,) context + next
    def count(seen, counts, queries):
        """How often each query occurred in training, from sorted unique keys and their counts."""
        pos = torch.searchsorted(seen, queries).clamp(max=len(seen) - 1)
        return torch.where(seen[pos] == queries, counts[pos], 0)       # 0 for pairs never seen
    train_keys, val_keys = keys(train_ids), keys(val_ids)
    pairs, pair_counts = torch.unique(train_keys, return_counts=True)
    contexts, context_counts = torch.unique(train_keys // V, return_counts=True)  # drop the next
    p = ((count(pairs, pair_counts, val_keys) + k)
         / (count(contexts, context_counts, val_keys // V) + V * k))  # (N_val - n,)
    return -p.log().mean().item()


@torch.no_grad()
def gpt_loss_on(m, ids, T=64, batch=256):
    """Mean loss (nats) of GPT m over all of ids, each target seen after at least T // 2 characters."""
    starts = list(range(0, len(ids) - T, T // 2))                      # windows overlap by half
    total, count = 0.0, 0
    for i in range(0, len(starts), batch):
        x = torch.stack([ids[s:s + T] for s in starts[i:i + batch]])   # (b, T)
        y = torch.stack([ids[s + 1:s + T + 1] for s in starts[i:i + batch]])
        nll = -torch.log_softmax(m.eval()(x).logits, -1).gather(-1, y[..., None])[..., 0]  # (b, T)
        scored = nll[:, T // 2:] if i else torch.cat([nll[0], nll[1:, T // 2:].flatten()])
        total, count = total + scored.sum().item(), count + scored.numel()
    return total / count


baseline = {
    "5-gram count model (4 characters of context)": count_ngram_loss(train_ids, val_ids, n=4),
    f"your GPT ({result.step} steps)": gpt_loss_on(model, val_ids),
    "shipped GPT (8000 steps)": gpt_loss_on(pretrained, val_ids),
}
for name, loss in baseline.items():
    print(f"{name:<46} {loss:.3f} nats = {loss / math.log(2):.3f} bits per character")
tokens_seen = result.step * train_config.batch_size * train_config.block_size
print(f"your GPT saw {tokens_seen:,} training tokens, {tokens_seen / len(train_ids):.1f} passes "
      f"over the training text; the shipped one {8000 * 12 * 64:,}")
count_loss, your_loss, shipped_loss = baseline.values()
assert abs(count_loss - 1.770) < 0.005, "lesson 02's 5-gram scored 1.770 on this validation text"
assert count_loss < your_loss and shipped_loss < count_loss - 0.1

# %% [markdown]
# Both models score (nearly) every character of the validation text; the GPT sees at least 32
# characters before each one. The numbers, from a full run:
#
# - **The count model wins at this budget.** Our 1300-step GPT (1.855 nats, 2.68 bits per
#   character) is worse than the 5-gram (1.770 nats, 2.55 bits), which needs no training at all,
#   only one pass of counting. The GPT has seen its training text about once; the count model has
#   used every 5-character run in it exactly.
# - **More data and compute buy the win.** The same GPT trained for 8000 steps, on six times as
#   many tokens, reaches 1.539 nats (2.22 bits per character), well below the count model. Counting
#   has no such lever: lesson 02 showed that longer contexts make it *worse* on unseen text, while
#   the GPT reads up to 64 characters and shares what it learns between similar contexts.
#   (Scored here with at least 32 characters of context; `data/pretrained/README.md` gives 1.577
#   for windows that do not overlap, where the first characters of each window have less.)
#
# So a transformer is not magic at small scale: it earns its place with enough data and training.
# Quick mode (150 steps) leaves the GPT even further behind.
#
# The rest of the lesson uses the shipped model, so its outputs are the same for everyone; put
# `model` in its place to look at your own.
#
# ## 4. Making it write
#
# `GPT.generate(idx, max_new_tokens, ...)` is lesson 02's sampling loop around the GPT: compute the
# logits of the last position, turn them into probabilities (with `temperature`, `top_k` and
# `top_p` as in lesson 02, or `greedy=True`), draw a token, append it, repeat. (Top-p is *nucleus
# sampling*, Holtzman et al., 2020: keep the smallest set of likeliest tokens whose probabilities
# add up to $p$.) A seeded
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
# tokens the arithmetic dominates, and the cache is what makes generation affordable at all. It
# costs memory instead: two tensors (keys and values) of $T \times C$ numbers per layer and per
# sequence, which for long contexts and large models can outgrow the weights themselves.
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
# per head; choose "one head" and a query character to see where that character looks. It shows
# 32 characters at a time, so that every one of them can be read; the **start** slider moves the
# window along the passage (choosing a query moves it too). Things to try:
#
# 1. Layer 0 has three heads that draw a stripe below the diagonal. How far below is each stripe,
#    that is, how many characters back does each head look?
# 2. In layer 3, head 2, pick a query on the last line, e.g. the `G` of the second "Good". Which
#    character does it look at? And the queries after it?
# 3. Most heads of layers 1–3 spread their weight thinly over many characters. Pick one and try a
#    few queries: can you see what it collects?

# %%
explorer_attention = AttentionExplorer(attention, tokens, batch_index=0, masked="causal",
                                       max_tokens=32)
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
# described by Elhage et al. (2021) and Olsson et al. (2022), who found them in many trained
# transformers and argue that they do much of their copying from context.
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
fig, axes = plt.subplots(2, 3, figsize=(10, 7.2), layout="constrained")
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
# 64 characters of a play, a word seldom repeats.
#
# The first-token score is worth a second look. Many trained language models put a large share of
# their attention on the first token of the context, whatever that token is. Xiao et al. (2023,
# *Efficient Streaming Language Models with Attention Sinks*) call such positions **attention
# sinks**: softmax must hand out a total weight of 1, and a head with nothing useful to read seems
# to park the surplus there. Our best first-token head scores no more than chance (the table
# above), so this model shows no sink. Why not, we have not tested; plausible reasons are its size,
# its short training and its short context (sinks are reported in much larger models trained far
# longer), but that is a guess.
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
#   itself, layer 0 hands every position its last four characters, the context a 5-gram model
#   conditions on (section 3's baseline), built from attention.
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
# - `train` runs **AdamW** (Adam's bias-corrected moments plus decoupled weight decay on the
#   matrices and embeddings), a linear warm-up then a cosine decay to `min_lr`, and clips the global
#   gradient norm at 1.0. It shows a progress bar and a live plot, survives the stop button
#   (`interrupted=True`, continue with `state=`), and writes checkpoints that load without
#   unpickling code. `model.train()` turns dropout on, `model.eval()` off; losses and generation
#   use eval mode.
# - **Baselines keep us honest**: after 1300 steps the GPT loses to lesson 02's 5-gram count
#   model; trained for 8000 steps it beats it clearly.
# - `generate` samples with temperature, top-k and top-p, reads at most `block_size` tokens (the
#   window slides), and with a **KV cache** feeds only the newest token each step.
# - With `return_attention=True` the model hands over every attention weight, `(L, B, H, T, T)`,
#   for the attention explorer and `plot_attention_grid`. Scores averaged over many windows, and
#   compared with chance, say what a head does: here a previous-token head and heads two and three
#   characters back in layer 0 (a 5-gram's four-character context, built from attention), and a
#   head in layer 3 that finds the last line break. Same-token, first-token (attention-sink) and
#   induction heads did not appear in this small model; every score has a top head, but only a
#   score well above chance names a job.
#
# ## What's next
#
# The core path ends here: you have built, trained and opened a GPT. Some directions to explore
# from here, all of which reuse what you built:
#
# - **Fine-tuning**: start from a pretrained model such as the shipped one and train it further on
#   a small task, for instance reading out a sentiment from the last position, and compare it with
#   the same model trained from scratch and with a simple bag-of-words baseline.
# - **Encoder–decoder models**: the half of the 2017 Transformer that GPT left out, in which a
#   decoder reads an encoder's output through cross-attention, as in translation.
# - **Scale**: the arithmetic of parameters, FLOPs and the KV cache's memory, and what larger
#   models changed since GPT-2, such as rotary positions (RoPE, Su et al., 2021) and RMSNorm in
#   place of LayerNorm (no mean-centering and no bias, only a gain; Zhang & Sennrich, 2019).
