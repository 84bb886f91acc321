# %% [markdown]
# # 08 · Encoder–decoder and cross-attention: watch a model align two sequences
#
# Lessons 03–06 built a decoder-only model: a GPT reads its own past and nothing else. This lesson
# builds the third family, the design of the original Transformer (2017): an **encoder** reads a
# whole source sequence, a **decoder** writes a target sequence, and **cross-attention** is the
# bridge, each target position asking the encoder's states what it needs. We train one on your
# CPU to turn spelled-out dates into ISO dates (`the fifth of December, 2026` → `2026-12-05`) and
# then look inside: which source characters does the decoder read while it writes the year, the
# month, the day?
#
# **What you will learn**
#
# - the three transformer families side by side: which attends to what, with which masks, for which
#   tasks, and why translation-like tasks suit an encoder;
# - cross-attention's shapes: queries from the decoder, keys and values from the encoder, an
#   attention map that is not square;
# - padding masks on the source, teacher forcing with the target shifted right, and why a
#   teacher-forced pass computes exactly what step-by-step decoding computes;
# - greedy decoding and beam search, and where beam search helps and where it does not;
# - to read cross-attention alignments, measure them, and look at a failure.
#
# **Prerequisites:** lessons 03–05 (attention, masks, multi-head attention, the block), lesson 06
# (`train()`), and lesson 07's overview of the three families.
#
# **Estimated time:** about 50 minutes. The notebook runs in about 2 minutes on a 2-core laptop,
# most of it training.

# %%
%matplotlib inline
import math
import os
import re
import time
from collections import Counter

import torch

import llmlab
from llmlab import checks
from llmlab.attention import AttentionConfig, MultiHeadAttention
from llmlab.beam_search import alignment, beam_search, greedy_decode, sequence_log_prob, translate
from llmlab.date_task import (BOS, EOS, FORMATS, MAX_SOURCE_LEN, MONTHS, PAD, date_pairs,
                              source_vocab, split_of, target_vocab)
from llmlab.seq2seq import PairBatches, Seq2Seq, Seq2SeqConfig, pad_batch, seq2seq_loss
from llmlab.training import TrainConfig, train
from llmlab.viz import AlignmentExplorer, plot_alignment, plot_history

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: a shorter training run
STEPS = 450 if QUICK else 700                   # optimizer steps (section 5)
llmlab.set_seed(0)
torch.set_num_threads(llmlab.notebook_threads())  # all cores but one, as in lesson 06
print(f"quick mode: {QUICK}; {STEPS} training steps; torch threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. Three families, three ways of attending
#
# Every transformer is built from the same blocks; what differs is **who may attend to whom**.
#
# | family | self-attention | cross-attention | pretrained by | examples | typical tasks |
# |---|---|---|---|---|---|
# | encoder-only | every token sees every (real) token, both directions: padding mask only | none | filling in masked tokens | BERT (Devlin et al., 2019) | classification, tagging, search |
# | decoder-only | causal: a token sees itself and the tokens before it | **none** | next-token prediction | GPT, GPT-2 (Radford et al., 2018, 2019), Llama | generation; almost anything, by prompting |
# | encoder–decoder | encoder: both directions; decoder: causal | decoder → encoder output, in every decoder block | nothing in 2017 (trained on translation directly); span corruption (T5), denoising (BART) | the Transformer (Vaswani et al., 2017), T5, BART, Whisper | translation, summarisation, speech to text |
#
# A common mistake in popular articles is to give GPT cross-attention. It has none: there is no
# second sequence to attend to. Cross-attention exists only where an encoder produced something
# for a decoder to read.
#
# **Why translation suits an encoder.** The whole source is known before the first output token
# is written, and an output token may depend on any part of it: an ISO date starts with the year,
# which comes *last* in `the fifth of December, 2026`. An encoder reads the source once, in both
# directions, so every source state can already know its context (is this `5` a day?). The
# decoder then writes left to right, and at every step can look anywhere in the source. A
# decoder-only model can translate too, by reading the source as a prompt, and today's large
# models do; but it reads the prompt causally, left to right, with the same weights it writes
# with. The encoder–decoder reads the source in both directions and keeps separate weights for
# reading and for writing.
#
# The idea grew in three steps. Sutskever et al. (2014) compressed the source into one vector with
# an LSTM and decoded from it (reversing the source's word order helped them). Cho et al. (2014)
# found that such models degrade on long sentences, and Bahdanau et al. (2015) blamed the single
# fixed-size vector: they let the decoder look back at *every* encoder state at each step, with
# weights it learned. The attention mechanism we now use was introduced there, for translation,
# and its weights read as an **alignment** between target and source words. Vaswani et al. (2017) dropped the recurrent
# networks and built both sides from attention alone.

# %% [markdown]
# ## 2. A task that needs reordering: dates
#
# We generate the data in code, so nothing is downloaded. Each example is a random date between
# 1900 and 2099, written in one of several English formats, and its ISO form:

# %%
src_vocab, tgt_vocab = source_vocab(), target_vocab()
train_pairs = date_pairs("train", 20000, seed=0)
val_pairs = date_pairs("val", 500, seed=0)
test_pairs = date_pairs("test", 1000, seed=0)
for source, target in train_pairs[:8]:
    print(f"{source:<40} -> {target}")
print(f"\n{len(FORMATS)} formats; the longest source has {MAX_SOURCE_LEN} characters")

# %% [markdown]
# To measure generalisation rather than memory, the 366 day–month pairs (29 February included)
# are split once: about 80 % for training, 10 % for validation, 10 % for test. A test date's day
# and month *never occur together* in training, in any year or format; the model has seen every
# day and every month, but not that combination. The cell checks it.

# %%
def month_day(iso):
    """(month, day) of an ISO date string."""
    _, month, day = iso.split("-")
    return int(month), int(day)


pairs_in = {name: {month_day(t) for _, t in pairs}
            for name, pairs in (("train", train_pairs), ("val", val_pairs), ("test", test_pairs))}
assert not pairs_in["test"] & pairs_in["train"] and not pairs_in["val"] & pairs_in["train"]
assert all(split_of(*md) == "test" for md in pairs_in["test"])
print({name: len(s) for name, s in pairs_in.items()}, "day–month pairs seen in each split's sample")
print("held-out test pairs, e.g.:", sorted(pairs_in["test"])[:6])

# %% [markdown]
# Both sides are read one character at a time. Each vocabulary starts with three special tokens:
# `<pad>` fills the end of shorter sequences in a batch, `<s>` (BOS) starts the decoder's input,
# `</s>` (EOS) ends every sequence, so the decoder learns when to stop.

# %%
print("source vocabulary:", len(src_vocab), "tokens;", "target vocabulary:", len(tgt_vocab), "tokens")
print("target tokens:", tgt_vocab.tokens)
example_src, example_tgt = train_pairs[0]
print(f"{example_src!r} -> {src_vocab.encode(example_src)}")
print(f"{example_tgt!r} -> {tgt_vocab.encode(example_tgt)}   (ends with EOS = {EOS})")

# %% [markdown]
# ## 3. Cross-attention by hand
#
# Cross-attention is the attention of lesson 03 with one change: the **queries** come from one
# sequence (the decoder's states, `T` positions) and the **keys and values** from another (the
# encoder's output, `S` positions). So the score matrix is `T × S`, not square, and no causal mask
# applies: the whole source is known. Only the source's padding must be hidden. Let us compute it
# with the weights of a real cross-attention layer, then ask the package for the same thing.

# %%
torch.manual_seed(0)
B, T, S, C, H = 2, 5, 7, 16, 4                     # batch, target length, source length, width, heads
cross = MultiHeadAttention(AttentionConfig(C, H, d_kv=C))  # d_kv: keys, values from another sequence
x = torch.randn(B, T, C)                           # decoder states: where the queries come from
memory = torch.randn(B, S, C)                      # encoder output: where keys and values come from
lengths = torch.tensor([7, 4])                     # row 1's source is 4 tokens, then 3 of padding

q = cross.q_attn(x)                                # (B, T, C)
k, v = cross.kv_attn(memory).split(C, dim=-1)      # (B, S, C) each
q = q.view(B, T, H, C // H).transpose(1, 2)        # (B, H, T, hd)
k = k.view(B, S, H, C // H).transpose(1, 2)        # (B, H, S, hd)
v = v.view(B, S, H, C // H).transpose(1, 2)        # (B, H, S, hd)
scores = q @ k.transpose(-2, -1) / (C // H) ** 0.5  # (B, H, T, S): one row per target position
real = torch.arange(S)[None, :] < lengths[:, None]  # (B, S): True at real source tokens
scores = scores.masked_fill(~real[:, None, None, :], float("-inf"))  # hide padding keys
weights = torch.softmax(scores, dim=-1)            # (B, H, T, S): each row sums to 1
y = (weights @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, C): one vector per target position
y = cross.c_proj(y)

out, package_weights = cross(x, context=memory, mask=real[:, None, None, :], return_weights=True)
torch.testing.assert_close(out, y)
torch.testing.assert_close(package_weights, weights)
print("weights:", tuple(weights.shape), "(B, H, T_target, S_source): not square")
print("row 1 puts weight", weights[1, :, :, 4:].sum().item(), "on its padding")

# %% [markdown]
# ### Exercise 1 · The source padding mask
#
# In the package, the encoder builds this mask from the token ids themselves: a position is real
# when it does not hold the padding id. Write `source_padding_mask(src, pad_id)`: `src` is a
# `(B, T)` tensor of ids, right-padded with `pad_id`; return a **bool** mask of shape
# `(B, 1, 1, T)`, True at real tokens, so it broadcasts over heads and queries to the scores'
# `(B, H, T_q, T)`. The checker tries random sizes and padding ids other than 0.

# %%
def source_padding_mask(src, pad_id):
    """Bool (B, 1, 1, T): True where src holds a real token."""
    raise NotImplementedError  # your code here


checks.check_source_padding_mask(source_padding_mask)

# %% [markdown]
# With the mask in place, padding a source further changes nothing the model computes: the extra
# positions are keys nobody may read. Let us check that on an (untrained) encoder–decoder.

# %%
config = Seq2SeqConfig(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab),
                       src_block_size=MAX_SOURCE_LEN + 1, tgt_block_size=11,  # 10 characters + EOS
                       n_layer_enc=2, n_layer_dec=2, n_head=4, n_embd=64)
torch.manual_seed(0)
model = Seq2Seq(config).eval()
src = pad_batch([src_vocab.encode(s) for s, _ in train_pairs[:4]], PAD)  # (4, S)
tgt_in = torch.full((4, 3), BOS)
padded = torch.cat([src, torch.full((4, 5), PAD)], dim=1)  # (4, S + 5): five more pads
torch.testing.assert_close(model(padded, tgt_in).logits, model(src, tgt_in).logits,
                           atol=1e-5, rtol=1e-5)
print(f"source {tuple(src.shape)} and padded source {tuple(padded.shape)}: same logits")

# %% [markdown]
# ## 4. Teacher forcing: the target, shifted right
#
# A decoder is trained like a GPT: position `t` predicts target token `t` from the tokens before
# it. During training we know the true target, so instead of feeding the decoder its own guesses
# we feed it the **true previous tokens**: the input is the target shifted right by one, with BOS
# in front. This is **teacher forcing**, and it lets one forward pass train every position at once,
# with the causal mask keeping position `t` from peeking at token `t`.
#
# | position      | 0     | 1   | 2   | 3   | … | 10     |
# |---|---|---|---|---|---|---|
# | decoder input | `<s>` | `2` | `0` | `2` | … | `5`    |
# | target        | `2`   | `0` | `2` | `6` | … | `</s>` |
#
# (for `2026-12-05`: the input is `<s>2026-12-0`, the target `2026-12-05</s>`).
#
# ### Exercise 2 · Shift right
#
# Write `shift_right(tgt, bos_id)`: for target ids `tgt` of shape `(B, T)`, return the decoder
# input of the same shape: column 0 is `bos_id`, columns 1 to `T - 1` are `tgt[:, :-1]`.

# %%
def shift_right(tgt, bos_id):
    """(B, T) -> (B, T): bos_id, then tgt without its last column."""
    raise NotImplementedError  # your code here


checks.check_shift_right(shift_right)
from llmlab.seq2seq import shift_right  # noqa: E402  (the package's version from here on)

# %% [markdown]
# `PairBatches` does this for whole batches: it pads the sources with `<pad>`, marks the padded
# target positions with `-100` so the loss ignores them, and shifts the targets right. (ISO dates
# all have ten characters, so here only the sources need padding; the row printed is the shorter
# of the first two training sources.)

# %%
def encode_pairs(pairs):
    """(source, target) strings -> PairBatches of their ids, each ending with EOS."""
    return PairBatches([(src_vocab.encode(s), tgt_vocab.encode(t)) for s, t in pairs],
                       pad_id=PAD, bos_id=BOS, eos_id=EOS)


data = {"train": encode_pairs(train_pairs), "val": encode_pairs(val_pairs)}
(batch_src, batch_in), batch_targets = next(data["train"].batches(batch_size=2))  # pairs 0 and 1
row = int((batch_src == PAD).sum(dim=1).argmax())  # the shorter source, padded
print("src    ", tuple(batch_src.shape), [src_vocab.token(i) for i in batch_src[row].tolist()])
print("tgt_in ", tuple(batch_in.shape), [tgt_vocab.token(i) for i in batch_in[row].tolist()])
print("targets", tuple(batch_targets.shape), [tgt_vocab.token(i) for i in batch_targets[row].tolist()])

# %% [markdown]
# Teacher forcing is only a shortcut for training: the logits it computes at position `t` are
# exactly those of step-by-step decoding that had written the same first `t` tokens, because the
# causal mask hides everything later. The cell checks that, position by position.

# %%
encoded = model.encode(batch_src)  # the encoder runs once; every decoding step reads its output
full = model(batch_src, batch_in).logits  # (2, 11, V): all positions at once
for t in range(batch_in.shape[1]):
    step_logits, _, _ = model.decode(batch_in[:, :t + 1], encoded)  # what decoding sees at step t
    torch.testing.assert_close(step_logits[:, -1], full[:, t], atol=1e-5, rtol=1e-5)
print("teacher-forced logits = step-by-step logits at all", batch_in.shape[1], "positions")

# %% [markdown]
# ## 5. Train it
#
# The model is small: two encoder blocks, two decoder blocks, width 64, four heads. Training goes
# through the same `train()` loop as lessons 06 and 07; only the batches (`PairBatches`) and the
# loss (`seq2seq_loss`: cross-entropy over the real target tokens) are new.

# %%
torch.manual_seed(0)
model = Seq2Seq(config)
print(f"{model.num_parameters():,} parameters")
train_config = TrainConfig(max_steps=STEPS, batch_size=64, lr=3e-3, min_lr=3e-4, warmup_steps=50,
                           eval_interval=STEPS // 4, eval_steps=4, device="cpu")
start = time.perf_counter()
result = train(model, data["train"], data["val"], train_config, loss_fn=seq2seq_loss)
seconds = time.perf_counter() - start
print(f"trained {result.step} steps in {seconds:.0f} s; validation loss {result.last_val_loss:.4f}")
plot_history(result.history)

# %% [markdown]
# ## 6. How good is it? Exact match on unseen day–month pairs
#
# A date is right only if all ten characters are. We decode greedily (the most probable character
# at every step) and count exact matches on the 1,000 test dates, whose day–month pairs the model
# never saw in training. Chance is far below 1 %: even knowing the format, there are 200 years
# × 366 days to choose from.

# %%
model.eval()
test_sources, test_targets = [s for s, _ in test_pairs], [t for _, t in test_pairs]
start = time.perf_counter()
greedy_out = translate(model, src_vocab, tgt_vocab, test_sources)
greedy_s = time.perf_counter() - start
greedy_ok = [p == t for p, t in zip(greedy_out, test_targets)]
greedy_acc = sum(greedy_ok) / len(greedy_ok)
print(f"greedy exact match on the test split: {greedy_acc:.3f} ({sum(greedy_ok)}/{len(greedy_ok)}), "
      f"decoded in {greedy_s:.1f} s")
seen = date_pairs("train", 1000, seed=1)  # mostly new dates, on day–month pairs seen in training
seen_acc = sum(p == t for p, (_, t) in zip(translate(model, src_vocab, tgt_vocab, [s for s, _ in seen]),
                                           seen)) / len(seen)
print(f"for comparison, on 1,000 new dates with day–month pairs seen in training: {seen_acc:.3f}")
if QUICK:  # the suite's short run must still have learned the task, far above chance
    assert greedy_acc > 0.5, greedy_acc
else:
    assert greedy_acc >= 0.95, greedy_acc

# %% [markdown]
# Where are the mistakes? Each ISO date has three parts; the cell counts which part was wrong.

# %%
def wrong_parts(pred, true):
    """Which of year, month, day differ between two ISO-like strings."""
    p, t = (pred + "----------")[:10], true
    return [name for name, cut in (("year", slice(0, 4)), ("month", slice(5, 7)), ("day", slice(8, 10)))
            if p[cut] != t[cut]]


errors = Counter(part for p, t in zip(greedy_out, test_targets) for part in wrong_parts(p, t))
print("wrong parts among the errors:", dict(errors) or "none")
for p, (s, t) in [(p, st) for p, st in zip(greedy_out, test_pairs) if p != st[1]][:6]:
    print(f"  {s:<40} expected {t}, got {p}")

# %% [markdown]
# ## 7. Greedy decoding and beam search
#
# Greedy decoding commits to the best token at each step. **Beam search** keeps the `k` best
# partial outputs instead. At every step each beam is extended by every token, each candidate is
# scored by its total log-probability, and the best `k` candidates of all survive. A finished
# output (one that produced `</s>`) is kept as it is. Beam search appeared in speech recognition in
# the 1970s and was the standard decoder of neural translation (Sutskever et al., 2014; Wu et al.,
# 2016). It is still a search with a budget: the most probable output can fall out of the beam.
#
# ### Exercise 3 · One step of beam search
#
# Write `beam_step(scores, log_probs, beam_size)`: `scores` `(K,)` holds the total log-probability
# of each of `K` beams, `log_probs` `(K, V)` each beam's log-probabilities for the next token.
# Return `(new_scores, beam_index, token)`, each of shape `(beam_size,)`: the `beam_size` best
# of all `K × V` continuations, best first, with the beam each extends and its token. `K`, the
# number of live beams, need not equal `beam_size`: at the very first step there is one beam,
# `<s>`, with score 0, and the checker tries that case. (Finished beams are the package's
# business below; the exercise has none.)

# %%
def beam_step(scores, log_probs, beam_size):
    """The beam_size best continuations of K beams: (new_scores, beam_index, token)."""
    raise NotImplementedError  # your code here


checks.check_beam_step(beam_step)

# %% [markdown]
# The package's `beam_search` runs that step for a whole batch of sources at once, with the
# encoder run once per source. During the search beams compete on their raw sums; at the end it
# ranks the surviving outputs by log-probability divided by `length ** length_penalty`, a simpler
# variant of Wu et al.'s (2016) penalty $((5 + |Y|)/6)^\alpha$. Raw sums favour short outputs,
# since every token adds a negative number. A beam could end early, but the outputs that survive
# here all have the same length (ten characters and `</s>`), so the penalty should not change the
# ranking; the cell checks that too.

# %%
start = time.perf_counter()
beam_out = translate(model, src_vocab, tgt_vocab, test_sources, beam_size=4)
beam_s = time.perf_counter() - start
beam_ok = [p == t for p, t in zip(beam_out, test_targets)]
print(f"greedy:        {greedy_acc:.3f} exact match, {greedy_s:.1f} s")
print(f"beam search 4: {sum(beam_ok) / len(beam_ok):.3f} exact match, {beam_s:.1f} s")
fixed = sum(b and not g for g, b in zip(greedy_ok, beam_ok))
broken = sum(g and not b for g, b in zip(greedy_ok, beam_ok))
print(f"beam search fixed {fixed} of greedy's errors and broke {broken} of its right answers")
no_penalty = translate(model, src_vocab, tgt_vocab, test_sources, beam_size=4, length_penalty=0.0)
print("outputs that change without the length penalty:",
      sum(a != b for a, b in zip(no_penalty, beam_out)))

# %% [markdown]
# Did beam search at least find *more probable* outputs? It is built to maximise probability, not
# correctness; the cell compares the two decoders' log-probabilities for each test source.

# %%
src_ids = pad_batch([src_vocab.encode(s) for s in test_sources], PAD)  # (1000, S)
greedy_h = greedy_decode(model, src_ids)
beam_h = beam_search(model, src_ids, beam_size=4)
higher = sum(b.log_prob > g.log_prob + 1e-6 for g, b in zip(greedy_h, beam_h))
lower = sum(b.log_prob < g.log_prob - 1e-6 for g, b in zip(greedy_h, beam_h))
print(f"beam's output more probable than greedy's: {higher}; less probable: {lower}; "
      f"the same: {len(beam_h) - higher - lower}")
confident = sum(g.log_prob > math.log(0.9) for g in greedy_h)
print(f"greedy outputs the model gives a probability above 0.9: {confident} of {len(greedy_h)}")

# %% [markdown]
# Read the numbers above before the conclusion. On our run (2-core CPU, torch 2.13) beam search
# changed nothing at all: the model is confident, most greedy outputs already have a probability
# close to 1, and an output this short leaves little room for an early mistake that a wider
# search could undo. Beam search earns its cost where the model is unsure over many steps (long
# sentences with several plausible word orders), and even there a more probable output is not
# always a better one. In translation, wider beams tend to give shorter and worse outputs (Koehn &
# Knowles, 2017), and an exact search finds that the empty translation is the most probable one
# for over half of the sentences (Stahlberg & Byrne, 2019): the model, not the search, is at
# fault, and length penalties paper over it.

# %% [markdown]
# ## 8. Reading the alignments
#
# Now the picture this lesson is named after. For a source, the explorer shows the model's output
# and its **cross-attention**: one row per output character (the decoding step that wrote it), one
# column per source character; the last row and column are `</s>`. Pick a test example (the
# model's mistakes come first, marked ✗) or type your own date and press Enter; choose the decoder
# layer and head, and an output character (listed as position: character) to see its row as bars.

# %%
explorer = AlignmentExplorer(model, src_vocab, tgt_vocab, test_pairs[:200])
explorer

# %% [markdown]
# The static twin, for a printed handout or a projector: the same two panels for one source, with
# output position 0 (the first year digit) framed and drawn as bars.

# %%
plot_alignment(model, src_vocab, tgt_vocab, "the twenty-third of August, 1999", layer=-1, query=0)

# %% [markdown]
# Pictures of one example can mislead, so let us measure. For every test date we locate the year
# (the four digits), the month (its word or abbreviation) and the day (the rest) in the source,
# and ask: when the decoder writes a year digit, what share of its cross-attention (mean of heads)
# lands on the year's characters? And likewise for the month and the day. The last column is the
# baseline: the share a step would give that part if it spread its attention evenly over all
# source tokens, `</s>` included.

# %%
MONTH_WORDS = {m.lower() for m in MONTHS} | {m[:3].lower() for m in MONTHS}  # "december", "dec"


def spans(source):
    """Source positions of the year (last four digits), the month word, and the day (the rest)."""
    year = set(range(len(source) - 4, len(source)))
    month = {i for m in re.finditer(r"[A-Za-z]+", source) if m.group().lower() in MONTH_WORDS
             for i in range(*m.span())}
    filler = {i for m in re.finditer(r"\bthe\b|\bof\b|[ ,.]", source) for i in range(*m.span())}
    return {"year": year, "month": month, "day": set(range(len(source))) - year - month - filler}


OUTPUT_PART = ["year"] * 4 + [None] + ["month"] * 2 + [None] + ["day"] * 2  # "YYYY-MM-DD"
share = {layer: {part: [] for part in ("year", "month", "day")} for layer in range(config.n_layer_dec)}
for source, target in test_pairs[:300]:
    found = alignment(model, src_vocab, tgt_vocab, source)
    where = spans(source)
    for layer in range(config.n_layer_dec):
        rows = found.cross_attention[layer].mean(0)  # (T_out, S): mean of heads
        for t, part in enumerate(OUTPUT_PART[:len(found.output_tokens)]):
            if part is not None:
                share[layer][part].append(rows[t, sorted(where[part])].sum().item())
uniform = {part: sum(len(spans(s)[part]) / (len(s) + 1) for s, _ in test_pairs[:300]) / 300
           for part in ("year", "month", "day")}  # + 1: the source's </s> is a key too
print(f"{'writing the':<14}" + "".join(f"{'layer ' + str(l):>24}" for l in share)
      + f"{'uniform attention':>22}")
for part in ("year", "month", "day"):
    print(f"{part + ' digits':<14}" + "".join(
        f"{sum(v[part]) / len(v[part]) * 100:>10.0f} % on the {part:<5}" for v in share.values())
        + f"{uniform[part] * 100:>12.0f} % on the {part}")

# %% [markdown]
# Read the table with two cautions. First, the heads of one layer can split the work, so a mean
# over heads hides structure; switch the explorer to single heads and compare. Second, as lesson
# 07 showed for classifiers, attention says where a layer *read from*, not why the output is what
# it is: the encoder has already mixed context into every source position (the encoder is not
# causal, so the `5` of `the 5th` can carry information about `December`), and the decoder's own
# self-attention and MLPs do work no map shows. Alignment is a useful reading of cross-attention,
# as Bahdanau et al. proposed, not a proof of what the model computed.
#
# ### A failure case
#
# The cell picks a test date the model got wrong (or, if it got them all right, a format it never
# saw in training) and draws its alignment.

# %%
wrong = [(s, t, p) for (s, t), p in zip(test_pairs, greedy_out) if p != t]
if wrong:
    failure, expected, got = wrong[0]
    print(f"{failure!r}: expected {expected}, the model wrote {got}")
else:
    failure = "Dec 5 2026"  # no comma: a format the training data never used
    print(f"no test errors; an unseen format instead: {failure!r} -> "
          f"{translate(model, src_vocab, tgt_vocab, failure)}")
first_wrong = 0 if not wrong else next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
found, where = alignment(model, src_vocab, tgt_vocab, failure), spans(failure)
for layer in range(config.n_layer_dec):
    row = found.cross_attention[layer].mean(0)[first_wrong]  # (S,): the wrong character's step
    print(f"layer {layer}: the step writing character {first_wrong} read " + ", ".join(
        f"{row[sorted(where[part])].sum().item():.0%} {part}" for part in ("year", "month", "day")))
plot_alignment(model, src_vocab, tgt_vocab, failure, layer=-1, query=first_wrong)

# %% [markdown]
# The framed row is the step that wrote the first wrong character (positions count from 0: 0–3
# are the year, 5–6 the month, 8–9 the day); the cell printed how its attention splits between the year, the
# month and the day. In our run every error was in the
# day (section 6 counted them), and the same confusions repeated: `thirtieth` and `31st` written
# as `03`, `tenth` as `09`. In the last layer such a row reads mostly the day's characters: the
# model looked in the right place and still turned what it read into the wrong number, for
# day–month pairs it had never been shown together. It learned a little less than the rule, and only a held-out split
# could show it: section 6 printed how much better the model does on pairs it has seen.
#
# ## 9. Bad input
#
# The model knows only the characters of its training formats, and the encoder has a fixed
# number of positions. Asking for more gets a clear error, not a silent guess:

# %%
for bad in ("the 5th of Décember 2026", "", "the fifth of December, 2026 " * 3):
    try:
        translate(model, src_vocab, tgt_vocab, bad)
    except ValueError as err:
        print(f"{bad[:30]!r:<34} -> ValueError: {err}")

# %% [markdown]
# ## Recap
#
# - **Encoder-only** models (BERT) attend both ways; **decoder-only** models (GPT) are causal and
#   have **no cross-attention**; **encoder–decoder** models (the 2017 Transformer, T5) join a
#   bidirectional encoder to a causal decoder, and every decoder block cross-attends to the
#   encoder's output.
# - Cross-attention takes queries from the decoder and keys and values from the encoder: a
#   `T_target × S_source` map, with a padding mask on the source and no causal mask.
# - **Teacher forcing** trains every target position in one pass by feeding the target shifted
#   right; it computes exactly what step-by-step decoding computes for the same prefix.
# - **Greedy** decoding takes the best token each step; **beam search** keeps the `k` best
#   partial outputs. On short outputs from a confident model it changes little; more probable is
#   not always better.
# - Cross-attention maps read as alignments: the year's digits read the year, the month's read the
#   month word. They show where the decoder read, not everything it computed.
#
# **Next:** lesson 09 looks inside and beyond: the ecosystem's GPT-2, the arithmetic of scale,
# and induction heads.
#
# ## References
#
# - Sutskever, Vinyals & Le (2014), *Sequence to Sequence Learning with Neural Networks*.
# - Bahdanau, Cho & Bengio (2015), *Neural Machine Translation by Jointly Learning to Align and
#   Translate*.
# - Vaswani et al. (2017), *Attention Is All You Need*.
# - Wu et al. (2016), *Google's Neural Machine Translation System*: length normalisation in beam
#   search.
# - Devlin et al. (2019), *BERT*; Raffel et al. (2020), *T5*; Radford et al. (2018, 2019), *GPT*,
#   *GPT-2*.
# - Cho et al. (2014), *On the Properties of Neural Machine Translation: Encoder–Decoder
#   Approaches*: fixed-vector models degrade on long sentences.
# - Koehn & Knowles (2017), *Six Challenges for Neural Machine Translation*: wider beams, worse
#   translations.
# - Stahlberg & Byrne (2019), *On NMT Search Errors and Model Errors: Cat Got Your Tongue?*: the
#   most probable translation is often empty or too short.
