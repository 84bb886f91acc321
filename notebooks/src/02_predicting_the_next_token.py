# %% [markdown]
# # 02 · Predicting the next token
#
# A language model does one thing: given the text so far, it gives a probability to every token
# that could come next. GPT does exactly this, with a very large network. In this lesson you build
# the smallest language model there is, one that looks only at the last character. You build it
# twice: first by counting, then as a neural network trained by gradient descent. On the way you
# meet the ideas that every later lesson reuses: **softmax**, **cross-entropy**, **perplexity**,
# **gradient descent** and **sampling**. The lesson ends by showing, with numbers and pictures,
# what a model with a one-character memory cannot do, and why counting longer contexts does not
# fix it: the problem that neural language models, and then attention (lesson 03), address.
#
# **What you will learn**
#
# - how language modelling becomes a supervised task: every position in a text is one example,
#   "the text so far → the next token";
# - to build a bigram model by counting, smooth it, and read its table;
# - to turn scores (logits) into probabilities with softmax, and to score a model with
#   cross-entropy, perplexity and bits per character;
# - to train the same model as a neural network with gradient descent, and where its gradient
#   comes from;
# - to generate text with greedy decoding, temperature, top-k and top-p (nucleus) sampling;
# - why a model that sees only the previous token is stuck, and why counting longer contexts
#   does not scale.
#
# **Prerequisites:** lesson 01 (turning characters into ids with `CharTokenizer`), basic Python,
# and NumPy-style array indexing (`table[rows, cols]`). The only calculus is the derivative of
# `exp` and `log`.
#
# **Estimated time:** about 45 minutes. The notebook itself runs in under a minute on a laptop CPU.

# %%
%matplotlib inline
import math
import os

import matplotlib.pyplot as plt
import torch

import llmlab
from llmlab import checks
from llmlab.data import load_text, train_val_split
from llmlab.lm import (CountBigram, NeuralBigram, cross_entropy, greedy_next, next_token_probs,
                       perplexity, sampling_mask, top_p_mask, train_bigram)
from llmlab.tokenizers import CharTokenizer
from llmlab.viz import (SamplingExplorer, plot_bigram_matrix, plot_loss,
                        plot_next_token_distribution, readable_token)

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: less training, same lesson
llmlab.set_seed(0)
torch.set_num_threads(1)  # small tensors: one thread is fastest, and leaves a core free
print(f"quick mode: {QUICK}")

# %% [markdown]
# ## 1. The task: predict the next token
#
# Write a text as a sequence of tokens $x_1, x_2, \dots, x_N$. The chain rule of probability splits
# the probability of the whole text into one factor per token, each conditioned on everything
# before it:
#
# $$P(x_1, \dots, x_N) = P(x_1)\, P(x_2 \mid x_1)\, P(x_3 \mid x_1, x_2) \cdots P(x_N \mid x_1, \dots, x_{N-1}).$$
#
# So a model that answers "what comes next, given the text so far?" gives a probability to any
# text, and it can *write* text by answering that question again and again. That is all a
# language model is. Training data comes for free: at every position of a corpus, the text before
# it is the input and the token at it is the correct answer.
#
# We work at the character level: lesson 01's `CharTokenizer` gives each character of Tiny
# Shakespeare its own id. We keep the last 10 % of the text aside as a **validation set**. The
# model never trains on it, so its score there measures what it learned about Shakespeare's
# English, not what it memorised.

# %%
text = load_text("tinyshakespeare")
tokenizer = CharTokenizer.train(text)
V = tokenizer.vocab_size
ids = torch.tensor(tokenizer.encode(text))                    # (N,) one id per character
train_ids, val_ids = train_val_split(ids, val_fraction=0.1)   # first 90 %, last 10 %
print(text[:230])

# %% [markdown]
# Here are the sizes, and the first few training examples. Each one asks the model to predict the
# character after a context (`⏎` is a newline, `␣` a space).

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(text):,} characters, vocabulary of V = {V}:")
print("".join(readable_token(c) for c in tokenizer.vocab))
print(f"train: {len(train_ids):,} ids   validation: {len(val_ids):,} ids\n")
for t in range(1, 9):
    context = tokenizer.decode(train_ids[:t].tolist())
    target = tokenizer.decode(train_ids[t:t + 1].tolist())
    print(f"{readable_token(context):>10}  ->  {readable_token(target)}")

# %% [markdown]
# ## 2. The simplest model: count which character follows which
#
# A **bigram model** throws away all of the context except the last token:
#
# $$P(x_t \mid x_1, \dots, x_{t-1}) \approx P(x_t \mid x_{t-1}).$$
#
# With $V = 65$ characters there are only $65 \times 65 = 4{,}225$ such probabilities, and the
# natural estimate of each is a frequency: how often did $b$ follow $a$, out of all the times
# something followed $a$? So training is a single pass over the text, counting pairs. Here it is
# as a plain Python loop:

# %%
counts_by_hand = [[0] * V for _ in range(V)]   # counts_by_hand[a][b]: how often b follows a
train_list = train_ids.tolist()
for a, b in zip(train_list, train_list[1:]):
    counts_by_hand[a][b] += 1
counts_by_hand = torch.tensor(counts_by_hand)  # (V, V) row = previous character, column = next

# %% [markdown]
# `llmlab.lm.CountBigram.fit` counts the same pairs in one vectorised step: it turns each pair
# $(a, b)$ into the single number $a \cdot V + b$ and counts those numbers with `torch.bincount`.
# The loop and the library must agree on every one of the 4,225 counts:

# %%
bigram = CountBigram.fit(train_ids, V, smoothing=1.0)  # smoothing: see section 3
assert torch.equal(bigram.counts, counts_by_hand)
print(f"the loop and CountBigram.fit agree on all {V * V:,} counts")

# %% [markdown]
# A few counts tell the story of English spelling already:

# %%
# NBVAL_CHECK_OUTPUT
def char_id(c):
    """The id of one character."""
    return tokenizer.encode(c)[0]


def count(a, b):
    """How often character b follows character a in the training text."""
    return int(counts_by_hand[char_id(a), char_id(b)])


q = char_id("q")
print(f"'t' then 'h': {count('t', 'h'):,} times    'h' then 'e': {count('h', 'e'):,} times")
print(f"'q' is followed by something {int(counts_by_hand[q].sum())} times, "
      f"by 'u' {count('q', 'u')} times")
first, second = divmod(int(counts_by_hand.argmax()), V)
print(f"the most frequent pair: {readable_token(tokenizer.vocab[first] + tokenizer.vocab[second])}")
print(f"{int((counts_by_hand == 0).sum()):,} of the {V * V:,} possible pairs never occur")

# %% [markdown]
# ## 3. From counts to probabilities, and the trouble with zeros
#
# Dividing each row by its total turns counts into probabilities: row $a$ becomes the
# distribution $P(\text{next} \mid \text{previous} = a)$, and it sums to 1. Normalise along
# `dim=1`, the columns of each row, and keep the dimension so the division broadcasts row by row:

# %%
probs_by_hand = counts_by_hand / counts_by_hand.sum(dim=1, keepdim=True)  # (V, V) rows sum to 1
unsmoothed = CountBigram.fit(train_ids, V, smoothing=0.0)
torch.testing.assert_close(probs_by_hand, unsmoothed.probs)
torch.testing.assert_close(probs_by_hand.sum(dim=1), torch.ones(V))

# %%
# NBVAL_CHECK_OUTPUT
h, e, u = char_id("h"), char_id("e"), char_id("u")
print(f"P('e' | 'h') = {count('h', 'e')} / {int(counts_by_hand[h].sum())} "
      f"= {probs_by_hand[h, e]:.4f}")
print(f"P('u' | 'q') = {count('q', 'u')} / {int(counts_by_hand[q].sum())} "
      f"= {probs_by_hand[q, u]:.4f}")

# %% [markdown]
# Now the trouble. Thousands of pairs never occur in the training text, so this table gives them
# probability exactly 0: it calls them *impossible*. But a few of them do occur in the validation
# text. A model that declares something impossible, and then sees it happen, is infinitely wrong
# (section 4 makes "infinitely" precise):

# %%
p_val = probs_by_hand[val_ids[:-1], val_ids[1:]]    # (N_val - 1,) P(actual next | previous)
impossible = (p_val == 0).nonzero().flatten()
examples = [tokenizer.decode(val_ids[i:i + 2].tolist()) for i in impossible[:8].tolist()]
print(f"{len(impossible)} validation pairs get probability 0, for example:", examples)
print("loss of the unsmoothed model on validation:", unsmoothed.loss(val_ids))

# %% [markdown]
# The standard fix is **add-k smoothing** (with $k = 1$ it is Laplace's *add-one*): pretend every
# pair was seen $k$ extra times before you started counting.
#
# $$P(b \mid a) = \frac{\operatorname{count}(a, b) + k}{\sum_{b'} \operatorname{count}(a, b') + V k}$$
#
# The denominator grows by $V k$ because $k$ was added to each of the $V$ entries of the row, so
# every row still sums to 1. Nothing is impossible any more. Rows with many counts barely change;
# rows with few counts move towards uniform, which is right: there we know little. $k$ is a knob.
# Too small, and unseen pairs are still nearly impossible; too large, and the table forgets what
# it counted.
#
# ### Exercise 1 — add-k smoothing
#
# Write `counts_to_probs(counts, k)`. It receives a `(V, V)` tensor of counts (row = previous
# token, column = next token; it may hold integers) and a number `k ≥ 0`. It returns the `(V, V)`
# float tensor of smoothed probabilities $P(\text{next} \mid \text{previous})$, without modifying
# `counts`. The checker tries several tables, including a row with no counts at all. Until your
# function is right, the check cell shows ❌ and a hint aimed at what went wrong.

# %%
def counts_to_probs(counts, k=1.0):
    """Return P(next | prev) as a (V, V) float tensor from bigram counts (V, V), with add-k smoothing."""
    # YOUR CODE HERE: add k to every count, then make each row sum to 1.
    raise NotImplementedError


# %%
checks.check_counts_to_probs(counts_to_probs)

# %% [markdown]
# From here on, `bigram` is the add-one model (`CountBigram(..., smoothing=1.0)`, whose `.probs`
# is what your function computes). Here is part of its table: the lower-case letters, space,
# newline and some punctuation. Each row is a slice of one next-character distribution (the
# full rows have 65 entries).

# %%
shown = " \n" + "abcdefghijklmnopqrstuvwxyz" + ",."
rows = torch.tensor(tokenizer.encode(shown))               # (30,) ids of the characters shown
plot_bigram_matrix(bigram.probs[rows][:, rows], list(shown))

# %% [markdown]
# Read it row by row. After `q` almost all the mass sits on `u`. After a space it is spread thinly
# over the letters that start words. The first column (space) is dark for letters that often end a
# word, such as `d` and `y`, and after a comma or full stop the mass goes to space and newline:
# lines end at punctuation. That is everything a bigram model knows about English.
#
# ## 4. How good is a model? Likelihood, cross-entropy, perplexity
#
# A good model gives high probability to what actually comes next in text it has not seen. The
# probability it gives the whole validation text is the product of its probabilities for every
# next character. A product of a hundred thousand numbers below 1 underflows to 0 in floating
# point, so we take logs, which turn the product into a sum. Then we average over the positions
# and flip the sign, so that lower is better:
#
# $$\text{loss} = -\frac{1}{N} \sum_{t=1}^{N} \log P(x_t \mid x_{t-1}).$$
#
# This **average negative log-likelihood** is measured in *nats* (natural log). It is also the
# **cross-entropy** between the text and the model, and it is the loss that every language model,
# GPT included, is trained to minimise. A probability of 0 for something that happens costs
# $-\log 0 = \infty$: that was the infinite loss of the unsmoothed model.
#
# **Perplexity** is $e^{\text{loss}}$. It turns the loss back into a count: a perplexity of 12
# means the model is, on average, as unsure as if it were choosing uniformly among 12 characters.
# A model that knows nothing and spreads its probability evenly over all $V$ characters has loss
# $\ln V$ and perplexity exactly $V$.
#
# **Bits per character** is the same loss with base-2 logs: $\text{loss} / \ln 2$. It reads as the
# average number of bits an ideal compressor driven by the model would spend per character, and
# it is the usual way to report character-level models.

# %%
p_next = bigram.probs[val_ids[:-1], val_ids[1:]]    # (N_val - 1,) P(actual next | previous)
loss_by_hand = -torch.log(p_next).mean()
assert math.isclose(loss_by_hand.item(), bigram.loss(val_ids), rel_tol=1e-4)


def bits_per_char(loss_nats):
    """The loss in bits per character: a per-character loss in nats divided by ln 2."""
    return float(loss_nats) / math.log(2)


assert math.isclose(bits_per_char(loss_by_hand), -torch.log2(p_next).mean().item(), rel_tol=1e-4)
print(f"bigram validation loss: {loss_by_hand:.4f} nats = {bits_per_char(loss_by_hand):.4f} bits "
      f"per character, perplexity {perplexity(loss_by_hand):.2f}")

# %% [markdown]
# Three models of increasing knowledge, scored on the validation text. The *unigram* model knows
# how frequent each character is, but ignores the context altogether.

# %%
# NBVAL_CHECK_OUTPUT
char_freq = (torch.bincount(train_ids, minlength=V) + 1) / (len(train_ids) + V)   # (V,) add-one
scores = {
    "uniform (knows nothing)": math.log(V),
    "unigram (character frequencies)": -torch.log(char_freq[val_ids[1:]]).mean().item(),
    "bigram (previous character)": bigram.loss(val_ids),
}
for name, loss in scores.items():
    print(f"{name:32}  loss {loss:.3f} nats = {bits_per_char(loss):.3f} bits/char   "
          f"perplexity {perplexity(loss):5.2f}")

# %% [markdown]
# Looking one character back takes the model from "one of 65" to "one of about 12". Keep that
# number in mind: section 7 asks how much further more context can go.
#
# A caution before comparing numbers across models: loss and perplexity are *per token*, so they
# depend on what a token is. A word-level model has a larger vocabulary and far fewer tokens per
# text than ours, so its perplexity per word is much higher even if it predicts the text just as
# well. Perplexities of models with different tokenizers are therefore not comparable. Compare the
# total loss of the same text instead, divided by its number of characters or bytes: bits per
# character (or per byte) does not depend on the tokenizer.
#
# ### Logits and softmax
#
# A neural network does not output probabilities directly. It outputs one real number per token,
# a **logit**, which can be any value, positive or negative. **Softmax** turns a vector of logits
# $z$ into a distribution:
#
# $$\operatorname{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}.$$
#
# The exponential makes every entry positive, dividing by the sum makes them add up to 1, and the
# order is kept: a larger logit gets a larger probability. Adding the same number to every logit
# changes nothing, because the factor $e^c$ cancels. That gives a free safety trick: subtract the
# largest logit first, so that `exp` never overflows. Going the other way, log-probabilities are
# valid logits: the softmax of $\log p$ is $p$ again. So the count model can speak in logits too.

# %%
def softmax_by_hand(z):
    """Softmax over the last dimension, shifted by the max so that exp cannot overflow."""
    z = z - z.max(dim=-1, keepdim=True).values   # (..., V) the largest entry is now 0
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True)


z = torch.tensor([2.0, 1.0, 0.5, -3.0])
torch.testing.assert_close(softmax_by_hand(z), torch.softmax(z, dim=-1))
torch.testing.assert_close(softmax_by_hand(z + 1000.0), softmax_by_hand(z))  # a shift changes nothing
print("softmax of", z.tolist(), "=", [round(p, 3) for p in softmax_by_hand(z).tolist()])

# %% [markdown]
# Cross-entropy from logits is then $-\log \operatorname{softmax}(z)_{\text{target}}$, averaged
# over the examples. We compute it by hand for the bigram on the whole validation text, and
# compare with `llmlab.lm.cross_entropy` and PyTorch's own `F.cross_entropy`:

# %%
bigram_logits = torch.log(bigram.probs)     # (V, V) log-probabilities are valid logits
x, y = val_ids[:-1], val_ids[1:]            # (N,), (N,) previous and next characters
logits = bigram_logits[x]                   # (N, V) one row of scores per position
ce_by_hand = -torch.log(softmax_by_hand(logits)[torch.arange(len(y)), y]).mean()
torch.testing.assert_close(ce_by_hand, cross_entropy(logits, y))
torch.testing.assert_close(cross_entropy(logits, y), torch.nn.functional.cross_entropy(logits, y))
print(f"cross-entropy from logits: {ce_by_hand:.4f} nats (the same loss as above)")

# %% [markdown]
# ### Exercise 2 — cross-entropy from logits
#
# Write `cross_entropy_from_logits(logits, targets)`. `logits` is an `(N, V)` float tensor, one row
# of scores per example, and `targets` is an `(N,)` tensor of token ids. Return the mean over the
# `N` examples of $-\log \operatorname{softmax}(\text{logits})[\text{row}, \text{target}]$, as a
# single number. Write it yourself rather than calling `F.cross_entropy`. One of the checker's cases
# has logits around 1000, where a naive `exp` overflows.

# %%
def cross_entropy_from_logits(logits, targets):
    """Return the mean over rows of -log softmax(logits)[row, target]; logits (N, V), targets (N,)."""
    # YOUR CODE HERE
    raise NotImplementedError


# %%
checks.check_cross_entropy_from_logits(cross_entropy_from_logits)

# %% [markdown]
# ## 5. The same model as a neural network
#
# Counting is the best possible way to fit a bigram, but it does not generalise: there is nothing
# to "count" in a transformer. What does generalise is this recipe: a model with parameters
# outputs logits; cross-entropy measures how wrong they are; gradient descent nudges the
# parameters downhill. Let's apply the recipe to the bigram and watch it rediscover the counts.
#
# `NeuralBigram` has a single `(V, V)` table of parameters, $W$. For a previous character $a$ it
# outputs the logits $W[a]$, row $a$ of the table. Looking up row $a$ is the same as multiplying the
# one-hot vector of $a$ by $W$, which is what an embedding layer does. $W$ starts at zero: every row
# is uniform, so the first loss must be exactly $\ln V$.

# %%
model = NeuralBigram(V)
W = model.logits_table.weight                  # (V, V) the model's only parameters
batches = torch.Generator().manual_seed(0)     # our own random stream for choosing batches
B = 4096
pick = torch.randint(0, len(train_ids) - 1, (B,), generator=batches)   # (B,) random positions
xb, yb = train_ids[pick], train_ids[pick + 1]  # (B,), (B,) previous and next characters
logits, loss = model(xb, yb)                   # (B, V), a 0-d tensor
assert math.isclose(loss.item(), math.log(V), rel_tol=1e-6)
print(f"first loss {loss.item():.4f} = ln {V} = {math.log(V):.4f}")

# %% [markdown]
# ### The gradient of softmax and cross-entropy
#
# For one example with logits $z$, target $y$ and $p = \operatorname{softmax}(z)$, the loss is
# $\ell = -\log p_y = -z_y + \log \sum_j e^{z_j}$. Differentiate with respect to each logit
# $z_i$: the first term gives $-1$ when $i = y$, and the derivative of the log-sum-exp is
# $e^{z_i} / \sum_j e^{z_j} = p_i$. Together:
#
# $$\frac{\partial \ell}{\partial z_i} = p_i - [i = y].$$
#
# The gradient is *prediction minus target*. A gradient step pushes the target's logit up by
# $1 - p_y$ and every other logit down by its probability. The batch loss is a mean over $B$
# examples, so each example contributes $(p - \text{onehot}(y)) / B$, and that lands on row
# $W[a]$ of its previous character $a$. Let's compute the gradient this way and compare with the
# one autograd finds with `loss.backward()`:

# %%
loss.backward()
with torch.no_grad():
    p = torch.softmax(logits, dim=-1)                                       # (B, V)
    dlogits = (p - torch.nn.functional.one_hot(yb, V).float()) / B           # (B, V)
    grad_by_hand = torch.zeros(V, V).index_add_(0, xb, dlogits)             # (V, V) into row xb[i]
torch.testing.assert_close(grad_by_hand, W.grad)
print("hand-derived gradient == autograd's gradient")

# %% [markdown]
# **Gradient descent** moves every parameter a small step against its gradient:
# $W \leftarrow W - \text{lr} \cdot \partial \text{loss} / \partial W$. Below are 30 steps written
# out. Each uses a fresh random **mini-batch** of 4,096 pairs: a noisy but cheap estimate of the
# gradient over the whole text. That makes it *stochastic* gradient descent (SGD). The learning
# rate is large, `lr = 50`, because the gradient is divided by $B$ and each row only receives the
# share of the batch that starts with its character: ordinary step sizes would barely move the
# rows of rare characters.

# %%
lr = 50.0
for step in range(30):
    pick = torch.randint(0, len(train_ids) - 1, (B,), generator=batches)
    xb, yb = train_ids[pick], train_ids[pick + 1]   # (B,), (B,)
    _, loss = model(xb, yb)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        W -= lr * W.grad                            # the gradient-descent step
    if step % 5 == 0 or step == 29:
        print(f"step {step:2d}   loss {loss.item():.3f}")

# %% [markdown]
# `llmlab.lm.train_bigram` is this same loop, with `torch.optim.SGD` doing the update. Let's train
# a fresh model for longer and compare it with the counts. The best any bigram can do on the
# training text is the loss of the unsmoothed count model: counting gives the exact minimum of the
# training cross-entropy.

# %%
STEPS = 100 if QUICK else 300
neural = NeuralBigram(V)
losses = train_bigram(neural, train_ids, steps=STEPS, lr=100.0, batch_size=B,
                      generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    _, neural_val = neural(val_ids[:-1], val_ids[1:])
best_train = unsmoothed.loss(train_ids)
recent = sum(losses[-10:]) / 10
print(f"{STEPS} steps: training loss {losses[0]:.3f} -> {recent:.3f} (mean of the last 10 batches); "
      f"the count model's minimum is {best_train:.3f}")
print(f"validation loss: neural {neural_val.item():.3f} ({bits_per_char(neural_val):.3f} bits/char), "
      f"counted (add-one) {bigram.loss(val_ids):.3f} ({bits_per_char(bigram.loss(val_ids)):.3f} bits/char)")
assert recent < losses[0] - 1.0                                    # learning happened
assert neural_val.item() < bigram.loss(val_ids) + (0.15 if QUICK else 0.06)

# %%
fig, (ax_loss, ax_probs) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
plot_loss(losses, ax=ax_loss, label="neural bigram, one mini-batch per step")
ax_loss.axhline(best_train, color="black", linestyle="--", label="count model (the minimum)")
ax_loss.legend()
ax_loss.set_title("Training loss")
ax_probs.scatter(unsmoothed.probs.flatten(), neural.probs.flatten(), s=5, alpha=0.4)
ax_probs.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--")
ax_probs.set(xlabel="counted P(next | previous)", ylabel="learned P(next | previous)",
             title=f"The {V * V:,} probabilities: learned vs counted")
plt.show()

# %% [markdown]
# The loss falls fast and flattens just above the count model's minimum, and the learned
# probabilities line up along the diagonal: gradient descent found (nearly) the same table.
# Most points that stray belong to rows of rare characters (`$`, `3`, `X`, `Z`, `Q`, ...): they
# appear in few batches, so their rows have had few gradient steps. The rest is mini-batch noise
# and a run that has not fully converged. Here the neural version only took more work. Its
# advantage is that the recipe stays the same when the table is replaced by a network that reads
# more context, and that is how lessons 03–06 use it.
#
# ## 6. Turning probabilities into text: sampling
#
# To generate, start from a character, ask the model for the distribution of the next one, choose
# a character, append it, and repeat. *How* you choose matters.
#
# **Greedy decoding** always takes the most likely character. It is deterministic and, for a
# bigram, hopeless: a character always leads to the same next one, so the text falls into a loop
# within a few steps.

# %%
# NBVAL_CHECK_OUTPUT
out = tokenizer.encode("T")
for _ in range(40):
    out.append(int(greedy_next(bigram_logits[out[-1]])))
print(repr(tokenizer.decode(out)))

# %% [markdown]
# **Sampling** draws the next character at random from the distribution, so likely characters come
# often and rare ones sometimes. Three knobs reshape the distribution before the draw:
#
# - **temperature** $T$ divides the logits: $\operatorname{softmax}(z / T)$. $T < 1$ sharpens the
#   distribution ($T \to 0$ becomes greedy), $T > 1$ flattens it ($T \to \infty$ becomes uniform).
#   Dividing by a positive number never changes the order of the tokens.
# - **top-k** keeps only the $k$ most likely tokens, then renormalises (used for story generation
#   by Fan, Lewis & Dauphin, 2018).
# - **top-p** (*nucleus sampling*, Holtzman et al., 2020) keeps the smallest set of most likely
#   tokens whose probabilities add up to at least $p$, then renormalises. The cut-off adapts: few
#   tokens survive when the model is sure, many when it is not.
#
# A token is removed by setting its logit to $-\infty$ before softmax, because $e^{-\infty} = 0$
# exactly. Here is temperature by hand, checked against `llmlab.lm.next_token_probs`, on the
# bigram's distribution of the character after a space:

# %%
after_space = bigram_logits[char_id(" ")]          # (V,) logits of the character after a space
fig, axes = plt.subplots(1, 3, figsize=(10, 3.9), layout="constrained", sharey=True)
for ax, T in zip(axes, (0.5, 1.0, 2.0)):
    probs_T = torch.softmax(after_space / T, dim=-1)                        # (V,)
    torch.testing.assert_close(probs_T, next_token_probs(after_space, temperature=T))
    plot_next_token_distribution(tokenizer.vocab, probs_T, ax=ax, top=15,
                                 original=next_token_probs(after_space))
    entropy = -(probs_T * probs_T.log()).sum()
    ax.set_title(f"T = {T}\nentropy {entropy:.2f} nats (≈ {math.exp(entropy):.1f} equal choices)",
                 fontsize=9)
axes[0].set_ylim(0, 0.4)   # one scale for all three, so the heights compare
plt.show()

# %% [markdown]
# The black ticks mark the distribution at $T = 1$. Lower temperature moves mass to `t`, higher
# temperature spreads it out; the order of the bars never changes.
#
# Now top-p by hand: sort the probabilities in decreasing order and keep each token while the mass
# *before* it is still below $p$. The first token is always kept. The library does the same, with a
# fixed rule for ties:

# %%
def top_p_by_hand(logits, p):
    """Boolean mask (V,) of the nucleus: the likeliest tokens until their total reaches p."""
    probs = torch.softmax(logits, dim=-1)                                    # (V,)
    sorted_probs, order = torch.sort(probs, descending=True, stable=True)    # (V,), (V,)
    mass_before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs          # (V,)
    keep = torch.zeros(len(probs), dtype=torch.bool)
    keep[order[mass_before < p]] = True
    return keep


for p in (0.5, 0.9):
    assert torch.equal(top_p_by_hand(after_space, p), top_p_mask(after_space, p))
    print(f"top-p with p = {p}: {int(top_p_by_hand(after_space, p).sum())} of {V} characters can follow a space")

# %% [markdown]
# ### Exercise 3 — temperature and top-k
#
# Write `apply_temperature_and_top_k(logits, temperature, k)`. `logits` is a 1-D tensor `(V,)`.
# Return the `(V,)` probabilities after dividing the logits by the temperature, keeping only the
# `k` largest (`k=None`, or `k ≥ V`, keeps all of them), and renormalising. Excluded tokens must get
# probability exactly 0. `torch.topk` helps.

# %%
def apply_temperature_and_top_k(logits, temperature, k=None):
    """Return probabilities (V,): softmax of logits / temperature over the k largest logits only."""
    # YOUR CODE HERE
    raise NotImplementedError


# %%
checks.check_temperature_top_k(apply_temperature_and_top_k)

# %% [markdown]
# ### Explore: the sampling explorer
#
# Move the sliders to see how each knob reshapes the distribution of the character after a space
# (the 30 likeliest are shown). Dark bars are what is actually sampled, renormalised. Grey hatched
# bars are excluded. Black ticks are the original distribution at $T = 1$. Below the chart you get
# the entropy and 20 samples drawn with a fixed seed, so only the knobs change them. Try
# $T = 0.3$, then $T = 3$; then top-k = 5; then top-p = 0.5, and count the survivors. The explorer
# starts at top-p = 0.9.

# %%
P_SHOW = 0.9   # the explorer's starting top-p; temperature 1 and top-k off
explorer = SamplingExplorer(tokenizer.vocab, after_space, top=30)
explorer.top_p.value = P_SHOW
explorer

# %% [markdown]
# The same view as a static figure, with the same settings (it is what you see if widgets cannot
# render, for example on GitHub):

# %%
kept = sampling_mask(after_space, temperature=1.0, top_p=P_SHOW)             # (V,) bool
torch.testing.assert_close(explorer.current_probs.float(), next_token_probs(after_space, top_p=P_SHOW))
plot_next_token_distribution(tokenizer.vocab, next_token_probs(after_space), kept, top=30,
                             original=next_token_probs(after_space))

# %% [markdown]
# Finally, let the bigram write. Every call to `generate` samples one character at a time, each
# from the row of the previous one.

# %%
sampler = torch.Generator().manual_seed(0)
newline = char_id("\n")
for T, top_p in ((1.0, None), (0.6, 0.9)):
    sample = bigram.generate(newline, 250, temperature=T, top_p=top_p, generator=sampler)
    print(f"----- temperature {T}, top-p {top_p} -----")
    print(tokenizer.decode(sample).strip())

# %% [markdown]
# It has some of the letter statistics of Shakespeare: short "words", capitals after newlines, a
# speaker's name followed by a colon now and then. But it has no words. The lower temperature in
# the second sample makes it lean on the commonest pairs (`th`, `he`, `e` then a space) and repeat
# them; it does not make it more sensible. The model knows which character tends to follow which,
# and nothing else.
#
# ## 7. What a one-character memory cannot do
#
# Look at what the bigram actually conditions on. Here are two prompts that any reader continues
# differently: "What is your nam" wants an `e`, and "I am" wants a space. Both end in `m`, so the
# bigram gives them *the same* distribution. It cannot do otherwise.
#
# To see what more context buys, we count longer contexts. A model that conditions on the previous
# $n$ characters counts runs of $n + 1$ characters (the context and the next one), so it is called
# an **$(n+1)$-gram model**: the bigram has $n = 1$ character of context, the unigram $n = 0$, and
# $n = 4$ gives a 5-gram. Below, $n$ always means the number of characters of context. The model is
# built exactly like the bigram: count every (context, next) pair, add $k$, normalise. There are
# $V^n$ possible contexts, far too many for a table, so we store only the pairs that occur, as
# sorted arrays, and look them up by binary search. Each context of $n$ ids is encoded as one integer, its digits in base $V$.

# %%
def context_keys(ids, n):
    """For each position t >= n: the n ids before it as one base-V integer, and the id at t."""
    keys = torch.zeros(len(ids) - n, dtype=torch.long)        # (N - n,)
    for j in range(n):
        keys = keys * V + ids[j:len(ids) - n + j]             # append one more digit
    return keys, ids[n:]                                      # (N - n,), (N - n,)


def lookup(sorted_keys, counts, queries):
    """counts[i] where sorted_keys[i] == query, and 0 for queries that never occurred."""
    pos = torch.searchsorted(sorted_keys, queries).clamp(max=len(sorted_keys) - 1)
    return torch.where(sorted_keys[pos] == queries, counts[pos], 0)


class CountNGram:
    """P(next | previous n ids), an (n+1)-gram model, by counting with add-k smoothing; stores only seen pairs."""

    def __init__(self, ids, n, k=0.01):
        self.n, self.k = n, k
        keys, nexts = context_keys(ids, n)
        self.contexts, self.context_counts = torch.unique(keys, return_counts=True)   # (C,)
        self.pairs, self.pair_counts = torch.unique(keys * V + nexts, return_counts=True)  # (P,)

    def prob(self, keys, nexts):
        """P(next | context) for context keys and next ids of the same shape."""
        pair = lookup(self.pairs, self.pair_counts, keys * V + nexts)
        total = lookup(self.contexts, self.context_counts, keys)
        return (pair.double() + self.k) / (total.double() + V * self.k)  # unseen context: 1 / V

    def loss(self, ids):
        """Mean negative log-likelihood (nats) of each id after its n predecessors."""
        keys, nexts = context_keys(ids, self.n)
        return -torch.log(self.prob(keys, nexts)).mean().item()

    def next_probs(self, prompt):
        """The distribution (V,) of the character after a prompt string."""
        context = tokenizer.encode(prompt[len(prompt) - self.n:]) + [0]   # + a dummy "next"
        key = context_keys(torch.tensor(context), self.n)[0]             # (1,)
        return self.prob(key.repeat(V), torch.arange(V))                  # (V,)


# With n = 1 character of context this is our bigram (a 2-gram): the two implementations must agree.
assert math.isclose(CountNGram(train_ids, 1, k=1.0).loss(val_ids), bigram.loss(val_ids), rel_tol=1e-6)
four = CountNGram(train_ids, 4)   # 4 characters of context: a 5-gram

# %%
prompts = ("What is your nam", "I am")
fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), layout="constrained", sharey=True)
for col, prompt in enumerate(prompts):
    for row, (name, probs) in enumerate((("bigram", bigram.next_token_probs(char_id(prompt[-1]))),
                                         ("5-gram", four.next_probs(prompt)))):
        ax = axes[row, col]
        plot_next_token_distribution(tokenizer.vocab, probs, ax=ax, top=12)
        seen = readable_token(prompt[-(1 if row == 0 else 4):])
        ax.set_title(f'"{prompt}" ▸ ?      the {name} sees "{seen}"', fontsize=10)
        ax.get_legend().remove()
        ax.set_ylim(0, 1.15)
plt.show()
assert torch.equal(bigram.next_token_probs(char_id(prompts[0][-1])),
                   bigram.next_token_probs(char_id(prompts[1][-1])))   # identical, as it must be

# %% [markdown]
# The top row is one distribution drawn twice: the bigram cannot tell the prompts apart. With four
# characters of context (bottom row) the model is nearly certain in both cases, and gives different
# answers. So context is worth a lot. How far can counting take us? We fit count models with
# $n = 0$ (the unigram) to $n = 6$ characters of context (a 7-gram), all with add-0.01 smoothing,
# and score each on the training and the validation text.

# %%
ngram_rows = []
for n in range(7):
    ngram = four if n == 4 else CountNGram(train_ids, n)
    val_keys, _ = context_keys(val_ids, n)
    unseen = (lookup(ngram.contexts, ngram.context_counts, val_keys) == 0).float().mean().item()
    ngram_rows.append((n, V ** n, len(ngram.contexts), unseen, ngram.loss(train_ids), ngram.loss(val_ids)))

fig, (ax_l, ax_c) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
ns = [r[0] for r in ngram_rows]
ax_l.plot(ns, [r[4] for r in ngram_rows], "o-", label="training text")
ax_l.plot(ns, [r[5] for r in ngram_rows], "o-", label="validation text")
ax_l.set(xlabel="characters of context n (1 = bigram)", ylabel="loss (nats)",
         title="More context: better, then worse on unseen text")
ax_l.legend()
ax_c.semilogy(ns, [r[1] for r in ngram_rows], "o-", color="tab:red", label="possible contexts $V^n$")
ax_c.semilogy(ns, [r[2] for r in ngram_rows], "o-", color="tab:green", label="contexts seen in training")
ax_c.axhline(len(train_ids), color="gray", linestyle=":", label="characters of training text")
ax_c.set(xlabel="characters of context n", ylabel="number of contexts", title="The table explodes")
ax_c.legend()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
print(" n  model    possible contexts  seen in training  unseen in validation  validation loss")
for n, possible, seen, unseen, _, val_loss in ngram_rows:
    print(f"{n:2d}  {n + 1}-gram  {possible:17,}  {seen:16,}  {unseen:20.1%}  "
          f"{val_loss:.3f} nats = {bits_per_char(val_loss):.3f} bits/char")
best_n = min(ngram_rows, key=lambda r: r[5])[0]
print(f"lowest validation loss: n = {best_n} characters of context, a {best_n + 1}-gram")
assert best_n == 4   # the prose below says the validation loss turns back up after 4 characters

# %% [markdown]
# Three things go wrong as $n$ grows, and they are why language models moved from counting to
# learned networks.
#
# - **The table explodes.** There are $V^n$ possible contexts: 65⁶ is about 75 billion. A million
#   characters of training text can show at most a million of them, and most of the long contexts
#   it does show occur only once or twice: far too few to estimate 65 probabilities each.
# - **Unseen contexts are common.** With 6 characters of context (a 7-gram), a fifth of the
#   validation positions have a context that never occurred in training. There the model knows
#   nothing and falls back on the uniform guess of its smoothing.
# - **No sharing.** Every context is its own row. Seeing "the king" teaches the table nothing about
#   "the queen" or "a king". So the training loss keeps falling (the table memorises its text),
#   while the validation loss turns back up after 4 characters: the model **overfits**.
#
# Smarter smoothing (backing off to shorter contexts, Kneser–Ney) recovers part of this, but it
# cannot make up evidence for contexts that were never seen, and the number of possible contexts
# still grows as $V^n$. Useful context in real text reaches back sentences and pages, not 4
# characters.
#
# Neural networks fixed the size and sharing problems long before transformers. Bengio et al.
# (2003) fed the learned embeddings of the previous few words (a fixed window) to a small
# feed-forward network: its parameters grow only linearly with the window, not as $V^n$, and since
# similar words get similar vectors, what the network learns about "the king" carries over to
# "the queen". But the window is still fixed. **Recurrent** language models (Mikolov et al., 2010),
# and later ones built from LSTM cells (Hochreiter & Schmidhuber, 1997), read the text one token at
# a time into a state vector of fixed size, so in principle the whole history counts; in practice
# everything the past says has to squeeze through that one vector, and it is computed token after
# token. **Attention** (Bahdanau, Cho & Bengio, 2015) removed that bottleneck in translation: while
# writing each word of the translation, a recurrent decoder looks back at *all* positions of the
# source sentence and *decides from their content* how much each one matters. The transformer
# (Vaswani et al., 2017) dropped the recurrence and kept attention, including **self-attention**,
# where each position of a text looks at other positions of the same text. GPT is decoder-only: a
# stack of self-attention blocks in which each position sees only itself and the earlier ones.
# Attention has limits too: its cost grows with the square of the number of tokens, and a model
# sees only a fixed maximum context.
#
# ## Recap
#
# - A language model gives a probability to every possible next token; by the chain rule that
#   scores whole texts, and sampling repeatedly writes them.
# - A **bigram** model looks at the previous token only. Counting pairs and normalising each row
#   (along `dim=1`) gives its probabilities; **add-k smoothing** keeps unseen pairs possible.
# - **Softmax** turns logits into probabilities (subtract the max first). **Cross-entropy**, the
#   average $-\log p(\text{actual next token})$, is the loss every language model minimises;
#   **perplexity** $= e^{\text{loss}}$ is the effective number of choices ($V$ for a uniform model).
# - The same bigram as a neural network, a `(V, V)` table of logits trained by **gradient descent**,
#   learns what counting finds. The gradient of softmax plus cross-entropy with respect to the logits
#   is $p - \text{onehot}(y)$.
# - **Greedy** decoding loops; **sampling** with temperature, top-k and top-p trades diversity for
#   safety, and removed tokens get logit $-\infty$.
# - **Bits per character** $= \text{loss} / \ln 2$. Per-token loss and perplexity depend on the
#   tokenizer, so compare models with different tokenizers per character or per byte.
# - A bigram gives "What is your nam" and "I am" the same prediction. Longer count tables help for
#   a few characters, then drown in $V^n$ contexts they have never seen. A model with $n$ characters
#   of context is an $(n+1)$-gram model.
# - Neural language models (Bengio et al., 2003), recurrent ones (Mikolov et al., 2010) and then
#   attention (Bahdanau et al., 2015; the transformer, Vaswani et al., 2017) share what they learn
#   across similar contexts instead of counting each one separately.
#
# ## What's next
#
# **Lesson 03, scaled dot-product attention**, builds the attention of the transformer, in which
# every position looks at *all* earlier positions and computes, from their content, how much each
# one matters:
# $\operatorname{softmax}(QK^\top / \sqrt{d_k})\,V$. Its parameters do not depend on how far back it
# looks. You will compute it by hand on a short sentence, see why the $\sqrt{d_k}$ is there, and
# add the causal mask that keeps a language model from peeking at the token it must predict. The
# softmax and cross-entropy from this lesson come back unchanged.
