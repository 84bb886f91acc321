# %% [markdown]
# # 10 · Your own GPT: Tang poems, and then your own text
#
# This is the capstone. Everything so far used data the course chose for you; here you take the
# whole path yourself on new data, twice. First a worked example: a GPT that writes
# five-character quatrains (五言绝句, *wǔyán juéjù*), the four-line form of Tang-dynasty
# China (618–907), in simplified characters. You will choose a tokenizer by measuring, train a
# modern GPT, force the form while sampling, and check how much of what it writes is copied.
# Then your turn: the same steps on any text file you bring, with what to expect from how much
# text and how much time.
#
# You do not need to read Chinese: every step is measured, and the form is visible at a glance
# (four lines of five characters, a "，" after lines 1 and 3, a "。" after lines 2 and 4).
#
# **What you will learn**
#
# - how UTF-8 stores characters (1 byte for ASCII, 3 for Chinese), and what that means for
#   byte-level BPE, the context window and the embedding table;
# - to train the course's modern GPT (RoPE, RMSNorm, SwiGLU) on a corpus of about 90 thousand
#   characters, and to read its train/validation gap;
# - **constrained decoding**: a mask on the logits that makes every sample obey a form, and what
#   it costs;
# - to measure memorisation: how many generated lines are copies of training lines;
# - to train on your own UTF-8 text, and what too little data does.
#
# **Prerequisites:** lessons 01 (BPE), 02 (sampling), 06 (training a GPT) and 09 (the modern
# preset). Lesson 07 (pre-training, then fine-tuning) helps for section 3.
#
# **Estimated time:** about 60 minutes. The notebook runs in about 3 minutes on a 2-core laptop;
# the poem model that carries the quality was trained beforehand and ships with the course.

# %%
%matplotlib inline
import os
import tempfile
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import llmlab
from llmlab import checks
from llmlab.checkpoint import load_checkpoint
from llmlab.data import load_text, read_text_file, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.heads import last_token_score, offset_score
from llmlab.lm import CountBigram
from llmlab.poems import (FORM, FORM7, bytes_per_char, bytes_per_token, copied_poems, form_rate,
                          generate_poems, is_well_formed, memorised_lines, parse_quatrains, poem_lines,
                          poems_text, show_poem, split_poems)
from llmlab.pretrained import load_pretrained, pretrained_files
from llmlab.tokenizers import BPETokenizer, CharTokenizer
from llmlab.training import TrainConfig, estimate_loss, train
from llmlab.viz import AttentionExplorer, plot_attention, plot_history, plot_metric

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: shorter training runs
POEM_STEPS = 80 if QUICK else 300                # section 3's live training run
OWN_STEPS = 150 if QUICK else 250                # section 7's runs on your text, each
llmlab.set_seed(0)
torch.set_num_threads(llmlab.notebook_threads())  # all cores but one, as in lesson 06
print(f"quick mode: {QUICK}; torch threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. The corpus: 3,710 quatrains
#
# The poems come from the *Complete Tang Poems* (全唐诗, compiled 1705–1706 under the Kangxi
# emperor), as transcribed by the open chinese-poetry project and converted to simplified
# characters (`data/SOURCES.md` says how the file was selected and checked). Each block of the
# file is a title, an author and the poem's lines. `parse_quatrains` keeps the blocks whose poem
# has the form and is not a repeat, and says why it skipped the others.

# %%
corpus = load_text("tang5_simplified")
poems, skipped = parse_quatrains(corpus)
print(f"{len(poems):,} quatrains; {len(skipped)} blocks skipped:",
      dict(Counter(s.reason for s in skipped)))
print(f"for example: {skipped[0].title!r}: {skipped[0].detail}\n")
famous = next(p for p in poems if p.startswith("白日依山尽"))  # Wang Zhihuan, On the Stork Tower
print(show_poem(famous))

# %% [markdown]
# That is the poem usually given as Wang Zhihuan's *Climbing Stork Tower* (登鹳雀楼, 8th century;
# lesson 01 showed it): "The white sun sets behind the mountains, the Yellow River flows into the
# sea. To see a thousand miles further, climb one more storey." The *Complete Tang Poems* lists it
# under two poets, and the block this corpus kept has the other attribution, 登楼 by Zhu Bin
# (朱斌). The skipped blocks are poems that became the same text once their traditional
# characters were simplified.
#
# A regulated quatrain (律绝) obeys more than its shape: a pattern of level and oblique tones
# (平仄) and a rhyme at the end of lines 2 and 4; older-style quatrains and folk-song pieces in
# the corpus keep only the rhyme, or neither. Nothing in this lesson checks those; the form we enforce is
# the shape alone, and the model may pick up rhyme and tone only from the data.
#
# The training text puts one poem per line, so the model also learns where a poem ends:

# %%
text = poems_text(poems)
chars = Counter(text)
once = sum(1 for n in chars.values() if n == 1)
print(repr(text[:50]), "...")
print(f"{len(text):,} characters, {len(chars):,} distinct; {once} of them occur only once")
print("the most common:", " ".join(c for c, _ in chars.most_common(21) if c not in "，。\n"))

# %% [markdown]
# Ninety thousand characters is small: Tiny Shakespeare (lesson 06) has a million. And every
# twenty-fifth character here is a new kind of symbol for the model to learn, against 65 symbols
# in all for Shakespeare. Keep both numbers in mind: they decide what the model can learn.
#
# ## 2. Characters or bytes: choosing the tokenizer by measuring
#
# Lesson 01 trained byte-level BPE, which starts from the 256 possible bytes, so it has no unknown
# characters. How many bytes is a Chinese character? Unicode gives every character a number, its
# **code point**, written U+ and four or more hex digits (月 is U+6708). **UTF-8** (Ken Thompson
# and Rob Pike, 1992), the encoding of almost all text today, stores a code point in 1 to 4
# bytes. (CJK, below, is the usual name for the characters of Chinese, Japanese and Korean; the
# Chinese characters, 汉字, are its ideographs.)
#
# | code point | bytes | layout (x: the code point's bits) | examples |
# | --- | ---: | --- | --- |
# | U+0000 – U+007F | 1 | `0xxxxxxx` | ASCII: `a`, `7`, `?` |
# | U+0080 – U+07FF | 2 | `110xxxxx 10xxxxxx` | `é`, `Ω`, `ж` |
# | U+0800 – U+FFFF (less U+D800 – U+DFFF, which are not characters) | 3 | `1110xxxx 10xxxxxx 10xxxxxx` | `月`, `，`, `€` |
# | U+10000 – U+10FFFF | 4 | `11110xxx 10xxxxxx 10xxxxxx 10xxxxxx` | `😀`, rare characters such as `𠀋` |
#
# The lead byte says how many bytes follow; every continuation byte starts with `10`, so a reader
# dropped anywhere in a text finds the next character's start. ASCII stays one byte, which is why
# English text costs one byte a character and Chinese three.
#
# ### Exercise 1 · UTF-8 by hand
#
# Write `utf8_bytes(ch)`: the list of byte values (ints) of one character in UTF-8, computed from
# its code point `ord(ch)` with the table above. `ch.encode("utf-8")` gives the answer, so use
# it only to test yourself (the checker hands you characters that refuse it). The markers as
# numbers: a lead byte starts with `0xC0` (2 bytes), `0xE0` (3) or `0xF0` (4), a continuation
# byte with `0x80`. Shifts pick bits: `cp >> 6` drops the lowest 6 bits, `cp & 0x3F` keeps them,
# `0xE0 | (cp >> 12)` puts the top bits after the marker (write the parentheses: `+` binds more
# tightly than `>>`). The checker tries random characters of every length, at the edges of each
# range.

# %%
def utf8_bytes(ch):
    """The UTF-8 bytes of one character, as a list of ints, computed from ord(ch)."""
    raise NotImplementedError  # your code here


checks.check_utf8_bytes(utf8_bytes)

# %% [markdown]
# So a Chinese poem costs about 3 bytes a character (2.92 here: the `"\n"` after each poem is one
# byte), and byte-level BPE starts there: before its first merge, each character is three
# tokens. Measured on the poems, on Shakespeare, and after training BPE on each:

# %%
shakespeare = load_text("tinyshakespeare")[:len(text)]  # the same number of characters
char_tok = CharTokenizer.train(text)
for name, sample in [("Tang poems", text), ("Shakespeare", shakespeare)]:
    bpe = BPETokenizer.train(sample, vocab_size=2048)
    print(f"{name:<12} {bytes_per_char(sample):.2f} bytes per character; BPE-2048: "
          f"{bytes_per_token(sample, bpe):.2f} bytes, {len(sample) / len(bpe.encode(sample)):.2f} "
          "characters per token")
print(f"characters:  {bytes_per_token(text, char_tok):.2f} bytes per token, 1 character per token, "
      f"{char_tok.vocab_size:,} tokens in the vocabulary")
zh_bpe = BPETokenizer.train(text, vocab_size=2048)
merged = [zh_bpe.token_bytes(i) for i in range(256, zh_bpe.vocab_size)]  # what each merge made


def kind(piece: bytes) -> str:
    """What a BPE token's bytes are: part of a character, one character, or several."""
    try:
        return "one character" if len(piece.decode("utf-8")) == 1 else "several characters"
    except UnicodeDecodeError:
        return "part of a character"


print(f"BPE-2048's {len(merged)} merges on the poems made:", dict(Counter(map(kind, merged))))
split = sum(len(zh_bpe.encode(c)) > 1 for c in chars)
print(f"{split:,} of the {len(chars):,} distinct characters are still split into byte pieces")

# %% [markdown]
# On English, BPE's merges join letters into common words and word pieces, and each token carries
# several characters. On Chinese most merges are spent on gluing the three bytes of a character
# back together: first a two-byte prefix (shared by the characters that begin with it), then a
# whole character. The commonest characters become one token each, a few frequent pairs become
# words, and the rarer characters stay split into byte pieces, so a token carries less than one
# character on average. Character tokens carry exactly one.
#
# What each choice means here:
#
# - **Context.** A window of 50 tokens holds two poems as characters, fewer as BPE-2048 tokens.
# - **The form.** With characters, position 7 of a poem is token 7, so a mask per position can
#   enforce the form (section 4). A BPE token can be a third of a character or two characters,
#   and the mask would have to track bytes.
# - **The embedding table.** The cost of characters: one row per distinct character, and the
#   output layer has as many columns. For this lesson's model (128 numbers per token):

# %%
poem_tokens = [len(zh_bpe.encode(p + "\n")) for p in poems]
print(f"tokens per poem: characters 25, BPE-2048 {sum(poem_tokens) / len(poems):.1f} on average "
      f"(from {min(poem_tokens)} to {max(poem_tokens)}); poems per window of 50 tokens: 2 as "
      f"characters, {50 / (sum(poem_tokens) / len(poems)):.2f} as BPE-2048 tokens")
for name, vocab in [("characters", char_tok.vocab_size), ("BPE-2048", zh_bpe.vocab_size),
                    ("Shakespeare's characters", 65)]:
    print(f"{name:<25} {vocab:>5} tokens x 128 = {vocab * 128:>7,} embedding numbers")

# %% [markdown]
# We take characters: the form becomes easy, and 3,647 rows are affordable. (Large Chinese models
# use BPE with vocabularies of 50,000 to 150,000 tokens, trained on far more Chinese text, so that
# common characters and words become one token each; many small Chinese GPT-2 models instead
# read one character per token, as we do.)

# %% [markdown]
# ## 3. Training a modern GPT on the poems
#
# The model is the course's GPT with lesson 09's modern parts (`GPTConfig.preset("llama")`:
# rotary positions, RMSNorm, SwiGLU, no biases), small enough to train here: 4 layers of width
# 128, a context of 50 characters. The token table and the output layer are tied (lesson 06), which
# saves 3,647 × 128 numbers. Dropout 0.2, because 80 thousand training characters are few.
#
# The last tenth of the text, 371 poems, is held out for validation, as in lesson 06.

# %%
ids = torch.tensor(char_tok.encode(text))  # (N,)
train_ids, val_ids = train_val_split(ids, 0.1)
# The same cut as the shipped model's (loaded below): whole poems, the last 371 held out.
assert len(train_ids) == len(poems_text(split_poems(poems)[0])), "the two splits disagree"
config = GPTConfig.preset("llama", vocab_size=char_tok.vocab_size, block_size=50, n_layer=4,
                          n_head=4, n_embd=128, dropout=0.2, tie_weights=True)
llmlab.set_seed(1337)
model = GPT(config)
print(config)
print(f"{model.num_parameters(non_embedding=False):,} parameters, "
      f"{len(train_ids):,} training and {len(val_ids):,} validation characters")

# %%
run = train(model, train_ids, val_ids,
            TrainConfig(max_steps=POEM_STEPS, batch_size=16, block_size=50, lr=2e-3, min_lr=2e-4,
                        warmup_steps=30, eval_interval=max(POEM_STEPS // 5, 1), eval_steps=10,
                        device="cpu"))
last, best = run.history[-1], min(run.history, key=lambda row: row["val_loss"])
print(f"after {run.step} steps: train loss {last['train_loss']:.3f}, validation {last['val_loss']:.3f} "
      f"(lowest: {best['val_loss']:.3f} at step {best['step']})")
plot_history(run.history, step_losses=run.step_losses, title="A poem GPT, trained here")

# %% [markdown]
# The training loss falls fast; the validation loss falls less and less, and over the full run
# the gap between them grows: more and more of what the model learns about these 3,339 poems does not carry over
# to new ones. Run longer and the validation loss turns up: with 32 sequences of 75 characters a
# step, the same model was best at step 300 (5.92) and at 6.56 by step 1,200
# (`data/pretrained/README.md` records that run). Is the model any good? Compare it with two counting baselines (lesson 02) on the same
# validation poems: the character frequencies alone (unigram), and the pair counts (bigram). Loss
# is in nats per character; $\ln 3647 = 8.20$ would be a uniform guess.

# %%
train_counts = torch.bincount(train_ids, minlength=char_tok.vocab_size).double() + 1  # add-one
unigram_loss = -(train_counts / train_counts.sum()).log()[val_ids].mean().item()
bigram = CountBigram.fit(train_ids, char_tok.vocab_size, smoothing=0.1)
here_val = estimate_loss(model, val_ids, batch_size=16, block_size=50, eval_steps=50)
print(f"unigram {unigram_loss:.3f}, bigram {bigram.loss(val_ids):.3f}, "
      f"the GPT trained here {here_val:.3f} nats per character")
pairs = len(set(zip(train_ids[:-1].tolist(), train_ids[1:].tolist())))
print(f"the bigram saw {pairs:,} different pairs, of {char_tok.vocab_size ** 2:,} possible")

# %% [markdown]
# The GPT beats both. The bigram is even worse than the unigram: it has seen only a few of the
# possible pairs, once or twice each, so most pairs in new poems are ones it never saw, and its
# smoothing spreads their probability over 3,647 characters. With so little text, counting pairs
# does not pay; the GPT shares what it learns between similar characters.
#
# The way to a better poem model is not more steps on the same 80 thousand characters: it is
# more text. The model that ships with the course was also trained on
# the 10,265 **seven-character** quatrains of the corpus, four times as much text in the same
# language, and validated on the same 371 five-character poems (`data/pretrained/README.md` gives
# the command; the `--val-corpus` flag keeps the validation poems out of training). Its steps
# are batches of 32 sequences, twice the ones above, so compare the curves by their levels:

# %%
shipped, poem_tok = load_pretrained("tang5_char")
record = load_checkpoint(pretrained_files("tang5_char")[0])
train_poems, val_poems = split_poems(poems)
val_ids_shipped = torch.tensor(poem_tok.encode(poems_text(val_poems)))
shipped_val = estimate_loss(shipped, val_ids_shipped, batch_size=16, block_size=50, eval_steps=50)
print(shipped.config)
print(f"trained on: {record.extra['data']['corpus']}; {record.step} steps; "
      f"{shipped.num_parameters(non_embedding=False):,} parameters, "
      f"{poem_tok.vocab_size:,} characters in its vocabulary")
print(f"validation loss on the same 371 poems: {shipped_val:.3f} (trained here: {here_val:.3f})")
print(f"its last training loss {record.history[-1]['train_loss']:.3f}, validation "
      f"{record.history[-1]['val_loss']:.3f} (as measured during its training)")
plot_metric({"trained here: 5-character poems": run.history,
             "shipped: 7- and 5-character poems": record.history}, "val_loss",
            ylabel="validation loss (nats per character)")

# %% [markdown]
# More text goes further: the shipped model's validation loss drops below the one trained here
# and then holds steady over thousands of steps. Seven-character poems are not the form we want,
# but they are the same language, the same imagery and the same craft; the model carries that
# over to the five-character poems it is validated on, as a pretrained model carries English
# to reviews in lesson 07.
#
# ## 4. Sampling poems, and forcing the form
#
# `generate_poems` samples many poems side by side (lesson 02's temperature sampling), each
# starting after a `"\n"`, the end of the previous poem in the training text. First without any
# help: does the model, on its own, write four lines of five characters with the right marks?

# %%
free = generate_poems(shipped, poem_tok, 200, torch.Generator().manual_seed(0),
                      temperature=0.8, constrained=False)
print(f"well formed without help: {form_rate(free):.0%} of {len(free)}")
bad = [p for p in free if not is_well_formed(p)]
seven_char_start = sum(len(p) > 7 and p[7] == "，" for p in bad)
print(f"of the {len(bad)} that are not, {seven_char_start} start a seven-character line, e.g. "
      "(cut off after 25 characters):")
for poem in bad[:3]:
    print(f"  {poem!r}")

# %% [markdown]
# Only about one in five. The model read three times as many seven-character poems as
# five-character ones, and nothing in a poem's first characters says which form it is: most of
# the time it writes seven characters before the first mark, the form it saw most. (Sampling
# stops after 25 characters, one past the five-character form, so those are cut off.)
# Retraining on five-character poems alone would fix the form but lose the extra text.
# **Constrained decoding** fixes the form without retraining: at
# each position, before sampling, set the logits of every token the form does not allow to
# $-\infty$, so softmax gives them probability 0 and the allowed ones share the rest. Speech
# recognisers have long restricted their search with grammars, and today's LLM libraries force
# JSON or code this way: Willard & Louf (2023) mask the logits with a finite-state machine built
# from a regular expression or grammar; PICARD (Scholak et al., 2021) instead rejects invalid SQL
# while searching.
#
# ### Exercise 2 · The form mask
#
# Write `form_mask(vocab, position)`: a bool tensor with one entry per token of `vocab` (a list of
# strings, one character each), True where the form allows that token at `position` of a poem.
# Positions count from 0; `FORM` (imported above) spells the form, `"H"` meaning any CJK
# character (`is_cjk(token)` tests that), and position 24, just after the last `"。"`, allows only
# `"\n"`, the poem's end. Do not change `vocab`. The checker tries a random vocabulary with ASCII
# look-alikes of the Chinese marks.

# %%
from llmlab.poems import is_cjk  # noqa: E402


def form_mask(vocab, position):
    """(V,) bools: True for the tokens the form allows at position (0-23, and 24 for the end)."""
    raise NotImplementedError  # your code here


checks.check_form_mask(form_mask)

# %% [markdown]
# `llmlab.poems.FormMask` builds the same masks for a tokenizer, and
# `generate_poems(..., constrained=True)` applies them. What does the constraint change besides
# the form? Measure how much probability the model itself gave the allowed tokens, position by
# position, while writing constrained poems: where that is close to 1, the mask changed nothing.

# %%
from llmlab.poems import FormMask  # noqa: E402

forced = generate_poems(shipped, poem_tok, 200, torch.Generator().manual_seed(0),
                        temperature=0.8, constrained=True)
mask = FormMask(poem_tok)
batch = torch.tensor([poem_tok.encode("\n" + p + "\n") for p in forced])  # (200, 26)
with torch.no_grad():
    probs = shipped(batch[:, :-1]).logits.softmax(-1)  # (200, 25, V): the next-token distributions
allowed = torch.stack([probs[:, pos][:, mask(pos)].sum(-1) for pos in range(25)], 1)  # (200, 25)
assert all(is_well_formed(p) for p in forced), "the mask let a malformed poem through"
print(f"well formed with the mask: {form_rate(forced):.0%} of {len(forced)}")
slots = {"characters": [i for i, s in enumerate(FORM) if s == "H"], "， of line 1": [5],
         "。 of line 2": [11], "， of line 3": [17], "。 of line 4": [23], "end": [24]}
for name, where in slots.items():
    print(f"  the model's own probability of an allowed token at the {name:<12} "
          f"{allowed[:, where].mean():.3f}")
print("\n\n".join(show_poem(p) for p in forced[:3]))

# %% [markdown]
# At the character slots and the end the mask had nothing to do. Almost all of its work is at one
# place, the poem's first "，": there the model wanted to go on to seven characters most of the
# time. Once the first line has five characters, the model keeps the form by itself for the other
# three. That is constrained decoding's strength and its limit: it guarantees the shape, not the quality.
# Where the model wanted something else, it samples from what probability it had left for the
# allowed tokens, a continuation the model itself found less likely. Sampling stays *locally* faithful to the model,
# one token at a time; it does not search for the best well-formed poem.
#
# ## 5. Is it writing, or remembering?
#
# A language model trained for many passes over a small corpus can reproduce it. Carlini et al.
# (2021) extracted verbatim training text from GPT-2; measuring how much a model copies is part of
# evaluating it. For poems, the natural unit is the line.
#
# ### Exercise 3 · How much is memorised
#
# Write `memorised_share(poems, training_poems)`: the share (0 to 1) of all lines of `poems` that
# occur, exactly, as a line of some training poem. `poem_lines(poem)` (imported above) splits a
# poem into its lines. Every line counts each time it is written; a line found only *inside* a
# longer training line does not count. Do not change the lists.

# %%
def memorised_share(poems, training_poems):
    """The share of the lines of poems that are, exactly, a line of some training poem."""
    raise NotImplementedError  # your code here


checks.check_memorised_share(memorised_share)

# %% [markdown]
# Now measure the shipped model, with `llmlab.poems.memorised_lines` (the same measure) against
# everything it was trained on. The baseline is the human one: the held-out Tang poems, written by
# poets who had read each other, might share lines with the training poems too. Temperature
# (lesson 02) moves the model between copying and inventing. Measured:

# %%
seven = load_text("tang7_simplified")
training_set = train_poems + parse_quatrains(seven, form=FORM7)[0]  # all the shipped model read
print(f"held-out Tang poems: {memorised_lines(val_poems, training_set):.1%} of their lines "
      f"occur in the training poems, {copied_poems(val_poems, training_set):.1%} whole poems")
for temperature in (0.3, 0.8, 1.0):
    sample = generate_poems(shipped, poem_tok, 200, torch.Generator().manual_seed(1),
                            temperature=temperature)
    print(f"model at temperature {temperature}: {memorised_lines(sample, training_set):.1%} of "
          f"lines copied, {copied_poems(sample, training_set):.1%} whole poems, "
          f"{len(set(sample))} different poems in 200")

# %% [markdown]
# The held-out poems share no line with the training poems: Tang poets did not repeat each other
# word for word (the corpus was also cleaned of repeated poems). The model copies a few lines at
# low temperature, where it keeps to the most probable characters, and next to none at 0.8 or
# 1.0. It writes new lines because it cannot do otherwise: a model that had learned its training
# text by heart would have a training loss near 0, and this one's is above 4 nats per character.
# Small models on large corpora invent; memorisation grows with model size, with how often a text
# is repeated in the data, and with the length of the prompt that leads into it (Carlini et al.,
# 2023). A line match is also a blunt measure:
# a new line can be a near copy (one character changed), and a common five-character phrase can
# match without any memorising.
#
# ## 6. Looking inside: how does it count to five?
#
# The model never sees a slot number: rotary positions (lesson 09) tell a head only how far apart
# two tokens are. Yet it puts the marks in the right places. Many quatrains, this one among them,
# are also built in parallel, the second line answering the first slot by slot (白日 / 黄河, *white sun* / *Yellow
# River*), so a first guess: a head that looks from each character to the same slot of the line
# before, six positions back (five characters and a mark). `offset_score(attention, 6)` (lesson 06)
# measures the weight on the token six back, per head, on the 371 held-out poems; compare it with
# a head that spreads its weight evenly over what it may see.

# %%
probe_ids = torch.tensor([poem_tok.encode("\n" + p) for p in val_poems])  # (371, 25)
with torch.no_grad():
    attention = shipped(probe_ids, return_attention=True).attention  # (L, 371, H, 25, 25)
uniform = torch.ones(25, 25).tril() / torch.arange(1, 26)[:, None]  # (25, 25): an even head
six_back = offset_score(attention, 6).mean(1)  # (L, H): averaged over the poems
layer, head = divmod(six_back.argmax().item(), six_back.shape[1])
print("weight on the token six back, in %, per layer (rows) and head (columns):")
print((six_back * 100).round().int())
print(f"strongest: layer {layer}, head {head}: {six_back[layer, head]:.2f} "
      f"(an even head: {offset_score(uniform, 6).item():.2f})")

# %% [markdown]
# One head stands out at about three times the even share. A score is a hypothesis, though; look
# at the head itself, on Wang Zhihuan's poem, first as a static figure (for print), then in the
# explorer, where you can move between layers, heads and query characters. The character labels
# need a Chinese font: the course ships one (`data/fonts/`, a subset of Noto Sans CJK), which
# matplotlib uses when your system has none.

# %%
famous_ids = torch.tensor([poem_tok.encode("\n" + famous)])  # (1, 25)
with torch.no_grad():
    famous_attention = shipped(famous_ids, return_attention=True).attention[:, 0]  # (L, H, 25, 25)
labels = list("\n" + famous)  # one token per character
plot_attention(famous_attention, labels, layer=layer, head=head)

# %%
explorer = AttentionExplorer(famous_attention, labels)
explorer.layer.value, explorer.head.value = layer, head  # open on the head found above
explorer

# %% [markdown]
# It does not look six back. Almost every character of a line looks at one key: the mark that ended the
# line before (or the `"\n"` before the first line), the line's start. From the mark that closes
# a line, that key is exactly six back, which is why the guess scored at all. A head that
# always finds the line's start tells the model how far into the line it is: the distance to
# that key, which rotary positions encode, is the slot number. Measure the new hypothesis for
# every head with `last_token_score`, the weight on the latest earlier mark:

# %%
marks = [poem_tok.encode(m)[0] for m in "\n，。"]
line_start = last_token_score(attention, probe_ids, marks).mean(1)  # (L, H)
print("weight on the line's start, in %:")
print((line_start * 100).round().int())
print(f"an even head: {last_token_score(uniform, probe_ids[0], marks).item():.2f}")
starters = [(l, h) for l in range(line_start.shape[0]) for h in range(line_start.shape[1])
            if line_start[l, h] > 0.5]
print("heads above 0.5:", starters)

# %% [markdown]
# Several heads in the upper layers do it. Weights show where heads look, not whether the model
# needs them (lesson 09), so switch them off together (`ablate_heads`, lesson 09) and measure the
# loss on the held-out poems at the marks and the end, and at the characters; as a control, switch
# off as many other heads, chosen at random:

# %%
import random  # noqa: E402

from llmlab.induction import ablate_heads  # noqa: E402

slot_ids = torch.tensor([poem_tok.encode("\n" + p + "\n") for p in val_poems])  # (371, 26)
at_marks = torch.tensor([5, 11, 17, 23, 24])  # the positions whose next token is a mark or "\n"
at_chars = torch.tensor([i for i in range(25) if i not in at_marks])


def slot_losses(model):
    """Mean loss (nats) where the form puts a mark or the end, and where it puts a character."""
    with torch.no_grad():
        logp = model(slot_ids[:, :-1]).logits.log_softmax(-1)  # (371, 25, V)
    nll = -logp.gather(-1, slot_ids[:, 1:, None])[..., 0]  # (371, 25)
    return nll[:, at_marks].mean().item(), nll[:, at_chars].mean().item()


others = [(l, h) for l in range(4) for h in range(4) if (l, h) not in starters]
for name, heads in [("none", []), ("the line-start heads", starters)] + [
        (f"{len(starters)} random others", random.Random(seed).sample(others, len(starters)))
        for seed in range(3)]:
    with ablate_heads(shipped, heads):
        marks_loss, chars_loss = slot_losses(shipped)
    print(f"switched off: {name:<22} loss at the marks {marks_loss:.2f}, "
          f"at the characters {chars_loss:.2f}")

# %% [markdown]
# Without the line-start heads the model loses track of the form: its loss where a mark belongs
# rises several times over, while the characters hardly change. Random heads of the same number
# cost less, though not always nothing: a layer-0 or layer-1 head can be what a line-start head
# reads from. So the model counts to five by looking back to where the line began, a mechanism
# found with a score, checked on the map, and tested by switching it off.

# %% [markdown]
# ## 7. Your turn: your own text
#
# Everything above works on any text. Put the path of a UTF-8 text file of your own in
# `MY_TEXT_FILE` (a novel from Project Gutenberg, your notes, song lyrics, code; in any language)
# and run the section again. Left as `None`, the cell uses Jane Austen's *Persuasion*, which ships
# with the course, so that everything below has something to run on.
#
# `read_text_file` reads it the way the training command does, and stops with a message that
# names the problem and the fix: a missing or empty file, a file that is not UTF-8 (Windows and
# older Chinese editors often save GBK or Latin-1), or one too short for the context.

# %%
MY_TEXT_FILE = None  # e.g. "my_text.txt" (a path relative to this notebook's folder)

if MY_TEXT_FILE is None:
    from llmlab.data import corpus_path  # noqa: E402
    MY_TEXT_FILE = corpus_path("persuasion")
own_text = read_text_file(MY_TEXT_FILE, block_size=64)
own_tok = CharTokenizer.train(own_text)
print(f"{Path(MY_TEXT_FILE).name}: {len(own_text):,} characters, {own_tok.vocab_size} distinct, "
      f"{bytes_per_char(own_text):.2f} bytes per character")
print(repr(own_text[:200]))

# %% [markdown]
# What the errors look like, on three small files made here:

# %%
scratch = Path(tempfile.mkdtemp())
(scratch / "empty.txt").write_text("")
(scratch / "gbk.txt").write_bytes("床前看月光，疑是地上霜。".encode("gbk"))
(scratch / "short.txt").write_text("Too short.")
for name in ("empty.txt", "gbk.txt", "short.txt"):
    try:
        read_text_file(scratch / name, block_size=64)
    except ValueError as e:  # the scratch folder's name differs on every machine: shown as ...
        print(f"{name}: {str(e).replace(str(scratch), '...')}\n")

# %% [markdown]
# **How much text?** The train/validation gap answers it. Train the same small GPT twice on your
# text, the same number of steps: once on its first 5,000 characters, once on up to 300,000. Each
# keeps its last tenth for validation.

# %%
def train_on(sample: str, steps: int):
    """A small character-level GPT trained on sample (its last tenth held out); the history."""
    ids = torch.tensor(own_tok.encode(sample))
    tr, va = train_val_split(ids, 0.1)
    llmlab.set_seed(1337)
    net = GPT(GPTConfig.preset("llama", vocab_size=own_tok.vocab_size, block_size=64, n_layer=2,
                               n_head=4, n_embd=96, dropout=0.1))
    cfg = TrainConfig(max_steps=steps, batch_size=16, block_size=64, lr=3e-3, min_lr=3e-4,
                      warmup_steps=20, eval_interval=max(steps // 5, 1), eval_steps=10, device="cpu")
    return train(net, tr, va, cfg).history


histories = {}
for size in (5_000, 300_000):
    sample = own_text[:size]
    histories[f"{len(sample):,} characters"] = hist = train_on(sample, OWN_STEPS)
    print(f"{len(sample):>9,} characters: train {hist[-1]['train_loss']:.3f}, "
          f"validation {hist[-1]['val_loss']:.3f}, gap {hist[-1]['val_loss'] - hist[-1]['train_loss']:.3f}")
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, (name, hist) in zip(axes, histories.items()):
    plot_history(hist, ax=ax, title=name)
fig.tight_layout()

# %% [markdown]
# With 5,000 characters the model has seen every training window many times: the training loss
# keeps falling, the validation loss stops and rises, and the gap between them is what it learned
# by heart. With more text the two curves stay together. A widening gap is the sign to stop
# early (keep the checkpoint of the best validation loss), to add dropout, or, best, to find more
# text.
#
# What to expect, from the course's own runs on a 2-core CPU:

# %%
for name in ("shakespeare_char", "tang5_char"):
    rec = load_checkpoint(pretrained_files(name)[0])
    steps, cfg = rec.step, rec.train_config
    tokens = steps * cfg["batch_size"] * cfg["block_size"]
    print(f"{name:<17} {rec.history[-1]['val_loss']:.2f} nats per character after {steps:,} steps "
          f"({tokens / 1e6:.1f} M tokens read), {rec.elapsed_s / 60:.0f} minutes; trained on "
          f"{rec.extra['data']['corpus']}")

# %% [markdown]
# A rough guide for a character-level model on a laptop CPU, from these runs:
#
# - **under 50 thousand characters**: the model learns spelling and common words, then
#   memorises; expect the gap above within minutes. Useful to watch overfitting, not to write.
# - **a few hundred thousand** (a novel, the poems here): locally fluent text after 10 to 20
#   minutes, and a gap that opens only slowly.
# - **a million and more** (Tiny Shakespeare): recognisable style after 5 minutes, better with an
#   hour; the model size, not the text, becomes the limit.
#
# Text from one source in one style gives more per character than a mix. For training longer
# than a notebook cell should run, use the command line, which saves a checkpoint you can stop
# (Ctrl-C) and resume, and loads in any lesson with `load_checkpoint`:
#
# ```bash
# python -m llmlab.train --text-file my_text.txt --tokenizer char --norm rmsnorm --mlp swiglu \
#     --positions rope --no-bias --n-layer 4 --n-head 4 --n-embd 128 --block-size 64 \
#     --dropout 0.1 --max-steps 3000 --lr 2e-3 --min-lr 2e-4 --out runs/mine.pt
# python -m llmlab.train --out runs/mine.pt --resume --max-steps 6000   # go on later
# ```
#
# It reads the file as `read_text_file` does and stops at once, before any training, if the file
# is missing, empty, not UTF-8 or too short.
#
# ## Recap
#
# - UTF-8 gives ASCII 1 byte and common Chinese characters 3; byte-level BPE starts from bytes,
#   so on Chinese its first merges only rebuild characters, and a small vocabulary leaves rare
#   characters split. Character tokens keep one position per character, which makes a form easy
#   to enforce, at the cost of a large embedding table.
# - On 80 thousand characters a GPT overfits after a few hundred steps; four times the text in the
#   same language lowered the validation loss, which then levelled off instead of rising.
# - Constrained decoding masks the logits of forbidden tokens before sampling: every poem is well
#   formed, and the measured probability the model gave the allowed tokens shows where it had to
#   be overruled.
# - Memorisation is measured, not guessed: the share of generated lines found verbatim in the
#   training data, against the human baseline and across temperatures.
# - On your own text, the train/validation gap says whether you need more text, more
#   regularisation or fewer steps.
#
# **Next:** the course ends here. Ideas to go further: enforce rhyme as well as the shape (a mask
# for the last character of lines 2 and 4, with a rhyme table); train on the seven-character form
# with `FORM7`; fine-tune the shipped model on one poet's work (lesson 07's recipe); or find the
# heads that carry the rhyme.
#
# ## References
#
# - Zhang & Lapata (2014), *Chinese Poetry Generation with Recurrent Neural Networks* (quatrains,
#   generated one character at a time).
# - Pike & Thompson (1993), *Hello World or Καλημέρα κόσμε or こんにちは 世界* (UTF-8, designed in
#   1992); Yergeau (2003), RFC 3629, *UTF-8, a transformation format of ISO 10646*.
# - Sennrich, Haddow & Birch (2016), *Neural Machine Translation of Rare Words with Subword Units*
#   (BPE); Radford et al. (2019) (byte-level BPE, GPT-2).
# - Scholak, Schucher & Bahdanau (2021), *PICARD: Parsing Incrementally for Constrained
#   Auto-Regressive Decoding from Language Models*; Willard & Louf (2023), *Efficient Guided Generation for Large
#   Language Models*.
# - Carlini et al. (2021), *Extracting Training Data from Large Language Models*; Carlini et al.
#   (2023), *Quantifying Memorization Across Neural Language Models*.
# - The chinese-poetry project (github.com/chinese-poetry/chinese-poetry, MIT) and the *Complete
#   Tang Poems* (全唐诗, 1705–1706).
