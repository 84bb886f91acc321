# %% [markdown]
# # 01 · Tokens and embeddings
#
# A neural network only does arithmetic on numbers, so before GPT can read a single line, the text
# has to become numbers. This takes two steps, and this lesson is about both. First a **tokenizer**
# cuts the text into pieces called *tokens* and gives each piece an integer *id*. Then each id is
# looked up in a table of **embedding vectors**: lists of numbers in which related tokens end up
# close together. Every model in this course, GPT included, starts with exactly these two steps.
#
# **What you will learn**
#
# - to turn text into ids in three ways: characters, words, and byte-level BPE (byte-pair
#   encoding, the tokenizer of GPT-2), which you train from scratch, on English and on Chinese
#   poems;
# - what each choice costs: vocabulary size, unknown words, sequence length, and how many tokens
#   the same meaning costs in different languages;
# - why one-hot vectors say nothing about meaning, and how counting a word's neighbours does;
# - to train word embeddings with skip-gram and negative sampling (word2vec), then query
#   nearest neighbours and analogies, and explore them with a widget.
#
# **Prerequisites:** Python (lists, dicts, functions) and a little NumPy (arrays, `@`,
# `np.linalg.norm`). No machine-learning background is needed.
#
# **Estimated time:** about 75 minutes. The notebook itself runs in a couple of minutes on a
# 2-core laptop CPU; the times printed below were measured on the 2-core CPU that built it.

# %%
%matplotlib inline
import os
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import llmlab
from llmlab import checks
from llmlab.data import load_text, train_val_split
from llmlab.embeddings import (build_vocab, cooccurrence_matrix, cosine_similarity,
                               default_config, load_embedding_corpus, one_hot, train_skipgram)
from llmlab.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, pretokenize, words
from llmlab.viz import EmbeddingExplorer, plot_neighbours, plot_projection

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: less training, same lesson
llmlab.set_seed(0)
torch.set_num_threads(1)  # small tensors: one thread is fastest, and leaves a core free
print(f"quick mode: {QUICK}")

# %% [markdown]
# ## 1. Models see numbers: characters
#
# Our first text is **Tiny Shakespeare**: about a million characters of dialogue from Shakespeare's
# plays, a classic corpus for small language models (lesson 06 trains a GPT on it).

# %%
shakespeare = load_text("tinyshakespeare")
print(f"{len(shakespeare):,} characters")
print(shakespeare[:250])

# %% [markdown]
# The simplest tokenizer gives every distinct character its own id. Its **vocabulary** is the
# list of characters that occur in the text, sorted so that the ids are the same on every run.
# Two lookup tables do all the work: `stoi` ("string to integer") encodes, and `itos` decodes.

# %%
chars = sorted(set(shakespeare))                  # the vocabulary: every distinct character
stoi = {ch: i for i, ch in enumerate(chars)}      # character -> id
itos = chars                                      # id -> character (a list indexed by id)


def my_encode(text):
    """Turn text into a list of ids, one per character."""
    return [stoi[ch] for ch in text]


def my_decode(ids):
    """Turn a list of ids back into text."""
    return "".join(itos[i] for i in ids)


print(f"{len(chars)} distinct characters: {''.join(chars)!r}")
print(my_encode("Hello"))
print(my_decode(my_encode("Hello")))

# %% [markdown]
# `llmlab.tokenizers.CharTokenizer` is the tested version of the same idea, with the interface all
# of the course's tokenizers share: `encode`, `decode`, `vocab_size`, `save` and `load`. The
# two must agree on every id; the `assert`s check it.

# %%
char_tok = CharTokenizer.train(shakespeare)
sample = shakespeare[:10_000]
assert char_tok.vocab_size == len(chars)
assert char_tok.encode(sample) == my_encode(sample)
assert char_tok.decode(char_tok.encode(sample)) == sample   # a perfect round trip
char_tok

# %% [markdown]
# The ids themselves carry no meaning: `T` is 32 and `o` is 53 only because of where they fall in
# the sorted vocabulary. Upper-case letters come before lower-case ones, and the space and the
# newline are tokens too.

# %%
# NBVAL_CHECK_OUTPUT
line = "To be, or not to be"
ids = char_tok.encode(line)
print(ids)
print([char_tok.vocab[i] for i in ids])

# %% [markdown]
# A character tokenizer knows only the characters it was trained on. Tiny Shakespeare has no
# accented letters, so `é` has no id, and `encode` refuses it with a message that names the
# character and its position:

# %%
try:
    char_tok.encode("Café au lait")
except ValueError as err:
    print(f"ValueError: {err}")

# %% [markdown]
# ### Exercise 1 — a character encoder that never crashes
#
# Write `char_encode(text, stoi, unk_id)`. It returns a list with one id per character of `text`,
# looked up in the dict `stoi`. A character that is not in `stoi` gets the id `unk_id` (the
# "unknown" id) instead of raising an error. Do not drop unknown characters: the model should still
# see that *something* was there. `dict.get` will help.

# %%
def char_encode(text, stoi, unk_id):
    """Return one id per character of text; characters missing from stoi get unk_id."""
    # YOUR CODE HERE
    raise NotImplementedError


# %%
checks.check_char_encode(char_encode)

# %% [markdown]
# `CharTokenizer` offers the same safety net: `unk_token` adds one extra character to the
# vocabulary, and every unseen character is encoded as it. Decoding cannot bring the original
# character back; all unknown characters have become the same token.

# %%
safe_tok = CharTokenizer.train(shakespeare, unk_token="⁇")
ids = safe_tok.encode("Café au lait ☕")
print(safe_tok.vocab_size, ids)
print(safe_tok.decode(ids))
assert safe_tok.decode(ids) == "Caf⁇ au lait ⁇"

# %% [markdown]
# Characters give a tiny vocabulary, but long sequences: a model that reads one character at a time
# must spend several steps on every word before it can think about what the word means.
#
# ## 2. Words
#
# The opposite choice: one token per word. `llmlab.tokenizers.words` splits text into words and
# punctuation marks (keeping apostrophes inside words), and `WordTokenizer` numbers them, most
# frequent first. Id 0 is reserved for `<unk>`, the unknown word.

# %%
print(words("Wherefore art thou Romeo? Thou'rt not here."))
word_tok = WordTokenizer.train(shakespeare)
print(word_tok)
print("the 12 most frequent:", word_tok.vocab[1:13])

# %% [markdown]
# Now a sentence is short: one token per word. But look at what comes back from a round trip.

# %%
line = "Hello,   Romeo!\nWherefore art thou online?"
ids = word_tok.encode(line)
print(ids)
print(repr(word_tok.decode(ids)))

# %% [markdown]
# Two things went missing. `Hello` and `online` never occur in Tiny Shakespeare, so both became
# `<unk>`: a word tokenizer cannot spell a word it has not seen. And the spacing is gone, because
# `decode` can only guess where the spaces were (one between every two tokens). Such a tokenizer
# is **lossy**: `decode(encode(text))` is not `text`.
#
# Unknown words are not rare, either. The vocabulary keeps growing as we read more text: new
# names, new spellings, new inflections (*speak, speaks, spake, speaking*), each a separate
# token. Let's count distinct characters and distinct words as we read through the play.

# %%
all_words = words(shakespeare)


def growth(tokens, points=200):
    """The % of tokens read at each of `points` checkpoints, and how many distinct ones were seen by then."""
    first_seen = {}
    for i, t in enumerate(tokens):
        first_seen.setdefault(t, i)                      # where each distinct token first appears
    checkpoints = np.linspace(0, len(tokens), points)
    return checkpoints / len(tokens) * 100, np.searchsorted(sorted(first_seen.values()), checkpoints)


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
ax1.plot(*growth(all_words), label="distinct words")
ax1.plot(*growth(shakespeare), label="distinct characters")
ax1.set(xlabel="% of Tiny Shakespeare read", ylabel="vocabulary size",
        title="The word vocabulary never stops growing")
ax1.legend()
word_counts = Counter(all_words)
freqs = np.array(sorted(word_counts.values(), reverse=True))
ax2.loglog(np.arange(1, len(freqs) + 1), freqs)
ax2.set(xlabel="rank of the word (1 = most frequent)", ylabel="occurrences",
        title="A few words are everywhere, most are rare")
plt.show()

once = sum(1 for n in word_counts.values() if n == 1)
print(f"{len(word_counts):,} distinct words; {once:,} of them ({once / len(word_counts):.0%}) "
      "occur exactly once")

# %% [markdown]
# The right-hand plot is a straight line on log–log axes: word frequencies follow **Zipf's law**
# (the word of rank $r$ occurs roughly in proportion to $1/r$). Half of the vocabulary appears a
# single time, far too rarely for a model to learn anything about it.
#
# The practical test: train on the first 90 % of the text and encode the last 10 %, which the
# tokenizer has never seen.

# %%
train_text, held_out = train_val_split(shakespeare, val_fraction=0.1)
tok_90 = WordTokenizer.train(train_text)
ids = tok_90.encode(held_out)
unknown = sum(i == tok_90.unk_id for i in ids)
print(f"{unknown:,} of {len(ids):,} tokens in the held-out text are <unk> ({unknown / len(ids):.1%})")

# %% [markdown]
# About one word in twenty becomes `<unk>`, and these are often the most informative words of a
# sentence: names and rare verbs. Real word-level models capped the vocabulary (say, the 50,000
# most frequent words) and lived with the `<unk>`s. Subword tokenizers avoid the dilemma.
#
# ## 3. Byte-level BPE
#
# ### Bytes first
#
# Computers store text as **bytes**, numbers from 0 to 255. The UTF-8 encoding uses one byte for an
# ASCII character and two to four bytes for everything else. A tokenizer whose vocabulary contains
# all 256 byte values can encode *any* text, in any language, with no unknown tokens at all.

# %%
# NBVAL_CHECK_OUTPUT
for ch in ["a", "é", "猫", "🙂"]:
    data = ch.encode("utf-8")
    print(f"{ch!r}: {len(data)} byte(s) {data} = ids {list(data)}")

# %% [markdown]
# The price is length: a byte is an even smaller piece of text than a character, so sequences get
# even longer. **Byte-pair encoding (BPE)** keeps the safety of bytes and wins back the length. It
# began as a compression algorithm (Gage, 1994), was turned into a subword tokenizer for translation
# by Sennrich, Haddow & Birch (2016), and GPT-2 (Radford et al., 2019) made it byte-level, starting
# from the 256 bytes rather than from characters. Start from the bytes; find the pair of
# neighbouring tokens that occurs most often in the training text; glue it into a new token with the
# next free id (256, 257, ...); repeat until the vocabulary has the size you want. Frequent words
# end up as a single token, rare words as a few pieces, and any new word can still be spelled, byte
# by byte.
#
# ### One merge step by hand
#
# Take the toy string `"bananabandana"` and count its neighbouring pairs of bytes:

# %%
toy = "bananabandana"
vocab = {i: bytes([i]) for i in range(256)}     # id -> the bytes it stands for
toy_ids = list(toy.encode("utf-8"))


def count_pairs(ids):
    """Count each pair of neighbouring ids."""
    return Counter(zip(ids, ids[1:]))


def show(ids):
    """The ids as readable pieces of text."""
    return [vocab[i].decode("utf-8") for i in ids]


for pair, n in count_pairs(toy_ids).most_common():
    print(show(pair), n)

# %% [markdown]
# `('a', 'n')` wins with 4 occurrences, so it becomes token 256, `an`. To apply a merge, scan the
# sequence from left to right and replace every occurrence of the pair by the new id. Then count
# again and repeat.
#
# The second round has a tie: `('b', 'an')` and `('an', 'a')` both occur twice. BPE needs a fixed rule for ties,
# otherwise the result would depend on the order in which pairs happen to be counted. llmlab takes
# the **greater pair**, comparing the tokens' bytes: `(b"b", b"an")` beats `(b"an", b"a")` because
# `b"b" > b"a"`. (Other implementations use other rules; any fixed rule works.)

# %%
def merge(ids, pair, new_id):
    """Replace every occurrence of pair in ids, left to right without overlaps, by new_id."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


ids, my_merges = toy_ids, []
for new_id in (256, 257):
    counts = count_pairs(ids)
    # The most frequent pair; among equals, the greatest (left bytes, right bytes).
    best = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
    ids = merge(ids, best, new_id)
    vocab[new_id] = vocab[best[0]] + vocab[best[1]]
    my_merges.append(best)
    print(f"merge {show(best)} -> {new_id}: {show(ids)}")

# %% [markdown]
# `BPETokenizer.train` does exactly this, much faster (it updates the pair counts incrementally
# instead of recounting everything after each merge). Asked for a vocabulary of 258 (256 bytes +
# 2 merges), it must learn our two merges:

# %%
toy_bpe = BPETokenizer.train(toy, vocab_size=258)
print(toy_bpe.show_merges())
assert list(toy_bpe.merges) == my_merges
assert toy_bpe.encode(toy) == ids

# %% [markdown]
# ### Pre-tokenization: merges stay inside words
#
# On real text, BPE first cuts the text into **pre-tokens** with a regular expression (the one
# GPT-2 uses): words with their leading space, numbers, runs of punctuation, runs of whitespace.
# Pairs are counted, and merges applied, only *inside* a pre-token. Otherwise BPE would spend merges
# on pairs that straddle two words, such as the `e` of "the" followed by a space, and the same word
# would be cut differently depending on what follows it.

# %%
# NBVAL_CHECK_OUTPUT
print(pretokenize("Hark! The king's 2 horses  neigh."))

# %% [markdown]
# ### Exercise 2 — the most frequent pair
#
# Write `most_frequent_pair(chunks)`. `chunks` is a list of pre-tokens, each a list of byte ids,
# for example `[[72, 105], [32, 116, 104, 101, 114, 101]]` for `"Hi there"`. Return the most
# frequent pair of neighbouring ids *inside* the chunks, as a tuple `(left, right)`:
#
# - never count a pair that straddles two chunks (here, `105` followed by `32`);
# - every position counts: in `[7, 7, 7]` the pair `(7, 7)` occurs twice;
# - break ties by returning the **greatest** pair (`(5, 9)` beats `(5, 1)` and `(1, 5)`). The chunks
#   hold raw bytes, so comparing ids is comparing bytes: llmlab's rule;
# - return `None` if no chunk has two ids.

# %%
def most_frequent_pair(chunks):
    """Return the most frequent (left, right) pair of neighbours inside the chunks, or None."""
    # YOUR CODE HERE
    raise NotImplementedError


# %%
checks.check_most_frequent_pair(most_frequent_pair)

# %% [markdown]
# ### Training BPE on Tiny Shakespeare
#
# Now the real thing: the whole of Tiny Shakespeare, and a vocabulary of 1,000 tokens: the 256
# bytes, 743 learned merges, and one **special token**, `<|endoftext|>`, explained below.

# %%
start = time.perf_counter()
bpe = BPETokenizer.train(shakespeare, vocab_size=1000, special_tokens=["<|endoftext|>"])
print(f"trained {bpe} in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# The first merges are the commonest pairs of English: a space followed by `t`, `h`+`e`, then
# `·t`+`he` (merge 11) builds ` the` out of two earlier merges. (`·` marks a space.)

# %%
# NBVAL_CHECK_OUTPUT
print(bpe.show_merges(20))

# %% [markdown]
# A sentence becomes a mix of whole words (` hear`, ` speak`) and pieces of rarer words (` pro`,
# `ce`, `ed`). `tokens` shows the pieces; `encode` gives their ids.

# %%
# NBVAL_CHECK_OUTPUT
sentence = "First Citizen: Before we proceed any further, hear me speak."
print(bpe.tokens(sentence))
print(bpe.encode(sentence))

# %% [markdown]
# How much shorter does the text get? And since every byte is in the vocabulary, text the
# tokenizer never saw, with accents, emoji or Chinese, still survives a round trip exactly.

# %%
start = time.perf_counter()
bpe_ids = bpe.encode(shakespeare)
n_bytes = len(shakespeare.encode("utf-8"))
print(f"{n_bytes:,} bytes -> {len(bpe_ids):,} tokens: {n_bytes / len(bpe_ids):.2f} bytes per token "
      f"(encoded in {time.perf_counter() - start:.1f} s)")
assert bpe.decode(bpe_ids) == shakespeare

unseen = "Café society 🙂 and 猫, naïvely."
print(" | ".join(bpe.tokens(unseen)))
assert bpe.decode(bpe.encode(unseen)) == unseen

# %% [markdown]
# `\xNN` marks a token that is only part of a character: `é` is split into its two bytes, since no
# merge for them was ever learned. Compression on Shakespeare is about 2.4 bytes per token with
# only 743 merges; GPT-2 learned 50,000 merges on far more text and averages around 4 bytes per
# token on English.
#
# **Special tokens.** Training data is many documents glued together; a model must know where one
# ends. `<|endoftext|>` is a token with its own id (here 999, the last one), matched in the text
# before anything else, so it is never split into pieces. With `special=False` the same characters
# are treated as plain text, which is what you want for text typed by a user.

# %%
# NBVAL_CHECK_OUTPUT
doc = "Farewell.<|endoftext|>ACT I"
print(bpe.encode(doc), bpe.tokens(doc))
print(bpe.encode(doc, special=False))
assert bpe.encode(doc).count(bpe.special_tokens["<|endoftext|>"]) == 1

# %% [markdown]
# ## 4. Chinese: the same tools, a different language
#
# Our second corpus is *Three Hundred Tang Poems* (唐詩三百首), classical Chinese poetry from the
# 7th–10th centuries, in traditional characters. Each entry is a title, a poet, then the poem.

# %%
tang = load_text("tang300")
start = tang.index("登鸛雀樓")
print(tang[start:start + 40])
print(f"{len(tang):,} characters, {len(tang.encode('utf-8')):,} UTF-8 bytes")

# %% [markdown]
# *Climbing Stork Tower* by Wang Zhihuan opens with 白日依山盡，黃河入海流。: "The white sun sets
# behind the hills; the Yellow River flows into the sea."
#
# Written Chinese has **no spaces between words**. Each character is one syllable and, with few
# exceptions, one morpheme (the smallest unit of language that carries a meaning), and in classical
# Chinese most words are a single character: 白 *white*, 日 *sun*, 山 *mountain*. That makes
# character tokenization natural. The vocabulary is larger than for English (thousands of
# characters instead of 65), but almost every token means something.
#
# A word tokenizer, on the other hand, splits on spaces and punctuation. With no spaces, each whole
# clause becomes one "word", and most of these "words" occur only once. Some real words also span several
# characters: 黃河, *Yellow River*, is 黃 *yellow* + 河 *river*. Finding such words is a separate
# problem, **word segmentation**, solved by dedicated tools trained on annotated text.

# %%
# NBVAL_CHECK_OUTPUT
verse = "白日依山盡，黃河入海流。"
zh_chars = CharTokenizer.train(tang)
print(f"characters: vocabulary of {zh_chars.vocab_size:,}; "
      f"the verse is {len(zh_chars.encode(verse))} tokens:", zh_chars.encode(verse))
print("words:", words(verse))
clauses = [w for w in words(tang) if w.isalnum()]          # the "words", punctuation left out
once = sum(1 for n in Counter(clauses).values() if n == 1)
print(f"{len(clauses):,} 'words' in the book, {len(set(clauses)):,} distinct, {once:,} occur only once")

# %% [markdown]
# Now byte-level BPE. The Shakespeare tokenizer has never seen a Chinese character, so it falls back
# to raw bytes: three tokens per character (UTF-8 needs three bytes for each of these). A BPE trained
# on the Tang poems merges those bytes back into characters, and frequent characters further into
# pairs.

# %%
start = time.perf_counter()
bpe_zh = BPETokenizer.train(tang, vocab_size=1500)
print(f"trained {bpe_zh} on the Tang poems in {time.perf_counter() - start:.1f} s")
longest = sorted(range(256, bpe_zh.vocab_size), key=lambda i: -len(bpe_zh.token_bytes(i)))
print("some of its longest tokens:", [bpe_zh.token_str(i) for i in longest[:12]])

# %% [markdown]
# Merges follow frequency, whatever it means. The two longest tokens come from a refrain of Li
# Bai's *The Road to Shu Is Hard*, 蜀道之難難於上青天 ("the road to Shu is hard, harder than
# climbing to the blue sky"): it occurs three times in the poem, and the anthology prints the poem
# twice. Then come words of titles (雜曲歌辭, "miscellaneous songs") and poets' names (李商隱 Li
# Shangyin, 孟浩然 Meng Haoran), repeated on every title and author line. Here is the verse under
# both tokenizers:

# %%
# NBVAL_CHECK_OUTPUT
print(f"English BPE, {len(bpe.encode(verse))} tokens:", " | ".join(bpe.tokens(verse)))
print(f"Chinese BPE, {len(bpe_zh.encode(verse))} tokens:", " | ".join(bpe_zh.tokens(verse)))

# %% [markdown]
# Without being told anything about Chinese, BPE found 黃河 *Yellow River* and 白日 *white sun*
# (it occurs in many poems) as single tokens. It cannot find every word, though: a merge needs
# frequent pairs, so a rare word stays in pieces.
#
# **How many tokens does the same meaning cost?** A model reads, pays for, and has room for a fixed
# number of *tokens*, so the tokenizer decides how much text fits in its context and how much a
# sentence costs to process. Compare the verse and its English translation:

# %%
# NBVAL_CHECK_OUTPUT
translation = "The white sun sets behind the hills; the Yellow River flows into the sea."
print(f"{'':12} {'characters':>10} {'UTF-8 bytes':>11} {'English BPE':>11} {'Chinese BPE':>11}")
for name, text in [("Chinese", verse), ("English", translation)]:
    print(f"{name:12} {len(text):10} {len(text.encode('utf-8')):11} "
          f"{len(bpe.encode(text)):11} {len(bpe_zh.encode(text)):11}")

# %% [markdown]
# Each tokenizer is cheap on the language it was trained on and expensive on the other. The English
# BPE spends 36 tokens on the 12 characters of the verse, more than on the whole English sentence
# (30); the Chinese BPE needs 10 tokens for the verse but 73 for the translation. A tokenizer
# trained mostly on English makes text in other languages longer: slower and more expensive to
# process, and a smaller share of it fits in the model's context. This is why multilingual models
# train their tokenizers on text from many languages.
#
# ## 5. From ids to vectors: one-hot and dense
#
# An id is just a name: id 53 is not "more" than id 32. The simplest way to hand a token to a
# network is a **one-hot** vector: as long as the vocabulary, all zeros except a single 1 at the
# token's id.
#
# To compare vectors we use **cosine similarity**, the cosine of the angle between them:
#
# $$\cos(a, b) = \frac{a \cdot b}{\lVert a \rVert\, \lVert b \rVert}, \qquad
# \lVert a \rVert = \sqrt{a_1^2 + \dots + a_n^2}.$$
#
# It is 1 when the vectors point the same way, 0 when they are perpendicular and −1 when they are
# opposite, whatever their lengths.
#
# ### Exercise 3 — cosine similarity
#
# Write `my_cosine_similarity(a, b)` for two 1-D NumPy arrays of the same length. Return a single
# float, and do not modify `a` or `b`. (The `my_` keeps your version apart from llmlab's
# `cosine_similarity`, which the rest of the notebook uses.)

# %%
def my_cosine_similarity(a, b):
    """Return the cosine of the angle between the 1-D arrays a and b."""
    # YOUR CODE HERE
    raise NotImplementedError


# %%
checks.check_cosine_similarity(my_cosine_similarity)

# %% [markdown]
# The name is literal. In two dimensions we can measure each vector's angle with `np.arctan2` and
# take the cosine of the difference; `llmlab.embeddings.cosine_similarity` must agree.

# %%
a, b = np.array([3.0, 1.0]), np.array([1.0, 2.0])
angle = np.arctan2(a[1], a[0]) - np.arctan2(b[1], b[0])          # radians between a and b
print(f"angle {abs(np.degrees(angle)):.1f}°, cos(angle) = {np.cos(angle):.4f}, "
      f"cosine_similarity = {cosine_similarity(a, b):.4f}")
torch.testing.assert_close(cosine_similarity(a, b), float(np.cos(angle)))

# %% [markdown]
# Now one-hot vectors for a few words from Jane Austen's novels, the corpus of the next section.
# Every two different one-hot vectors are perpendicular, so every similarity is exactly 0:
# "sister" is as far from "brother" as from "letter". One-hot vectors tell tokens apart, but they
# carry no notion of meaning.

# %%
# NBVAL_CHECK_OUTPUT
austen = load_embedding_corpus(quick=True)   # Austen's three novels as lower-cased words
austen_vocab, austen_counts = build_vocab(austen, max_vocab=3000)
index = {w: i for i, w in enumerate(austen_vocab)}
some_words = ["sister", "brother", "mother", "letter", "note", "morning", "evening", "happy", "glad"]
onehots = np.stack([one_hot(index[w], len(austen_vocab)) for w in some_words])  # (9, 3000)
sims = cosine_similarity(onehots, onehots)                                        # (9, 9)
print(onehots.shape)
print(sims)

# %% [markdown]
# ### Meaning from company
#
# *"You shall know a word by the company it keeps"* (J. R. Firth, 1957). Words with similar meanings
# appear in similar contexts: "sister" and "brother" both follow "her", "my", "dear"; "morning" and
# "evening" both follow "this" and "the next". So describe each word by **counting its neighbours**:
# row $w$ of a co-occurrence matrix counts how often each vocabulary word appears within 2 words of
# $w$. Similar rows mean similar company.

# %%
cooc = cooccurrence_matrix(austen, austen_vocab, window=2)                  # (3000, 3000) counts
rows = cooc[[index[w] for w in some_words]]                                 # (9, 3000)
print(f"{len(austen):,} words; co-occurrence matrix {cooc.shape}, "
      f"{(cooc > 0).mean():.0%} of its entries non-zero")
print("most frequent company of 'sister':", [austen_vocab[j] for j in np.argsort(-rows[0])[:10]])


def similarity_heatmap(ax, sims, labels, title):
    """Draw a labelled matrix of cosine similarities on ax."""
    im = ax.imshow(sims, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_title(title)
    for r in range(len(labels)):
        for c in range(len(labels)):
            ax.text(c, r, f"{sims[r, c]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(sims[r, c]) > 0.6 else "black")  # readable on dark cells
    return im


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
similarity_heatmap(ax1, sims, some_words, "one-hot vectors")
im = similarity_heatmap(ax2, cosine_similarity(rows, rows), some_words, "co-occurrence counts (window 2)")
fig.colorbar(im, ax=[ax1, ax2], label="cosine similarity", shrink=0.8)
plt.show()

# %% [markdown]
# Blocks appear: family words are similar to each other (around 0.9), so are *letter* and *note*,
# and *morning* and *evening*. Nobody told the counts what these words mean.
#
# The counts have two problems. Everything is somewhat similar to everything (around 0.4), because
# every word's company is dominated by *the*, *her* and *of*. And each row is as long as the
# vocabulary, mostly zeros: 3,000 numbers here, 50,000 for a GPT-2-sized vocabulary. We want
# **dense** vectors: a few dozen to a few hundred numbers per word, every one of them used, arranged
# so that words with similar company end up close. Instead of compressing the counts, we can
# *learn* such vectors directly.
#
# ## 6. Skip-gram with negative sampling
#
# **Skip-gram** (Mikolov et al., 2013, the *word2vec* paper) learns a vector for each word by
# asking it to predict the words around it. Slide over the text; each word in turn is the
# **centre**, and each word within `window` positions of it is a **context** word. Every
# (centre, context) pair is one training example. With a window of 2:

# %%
# NBVAL_CHECK_OUTPUT
example = "she had a very kind letter from her sister".split()
window = 2
for i, centre in enumerate(example):
    context = [example[j] for j in range(max(0, i - window), min(len(example), i + window + 1)) if j != i]
    print(f"{centre:>7} -> {', '.join(context)}")

# %% [markdown]
# Each word $w$ gets two vectors: $u_w$ for when it is the centre, $v_w$ for when it is context. The
# model scores a pair by a dot product, $s = u_c \cdot v_o$, and the sigmoid
# $\sigma(s) = 1 / (1 + e^{-s})$ turns the score into the probability that $o$ really appeared near
# $c$.
#
# Real pairs alone would be too easy: making every vector identical would give every pair a high
# score. So for each real pair we also draw $K$ random **negative** words $n_1, \dots, n_K$ (word2vec
# uses 5) and ask the model to say that those did *not* appear. The loss of one example is
#
# $$L = -\log \sigma(u_c \cdot v_o) - \sum_{k=1}^{K} \log \sigma(-u_c \cdot v_{n_k}).$$
#
# Two details from word2vec make this work well:
#
# - **Negatives** are drawn in proportion to $\text{count}(w)^{0.75}$ rather than $\text{count}(w)$.
#   The power flattens the distribution: frequent words are still drawn most, but rare words get
#   a bigger share than their raw frequency.
# - **Subsampling**: each occurrence of a very frequent word $w$, with frequency $f(w)$ (its share
#   of the corpus), is dropped at random before pairs are made. "the" near "sister" says little,
#   and there are a great many such pairs. Dropping most of them makes training faster and the
#   vectors better.
#
# The paper discards an occurrence with probability $1 - \sqrt{t / f(w)}$, i.e. keeps it with
# probability $\min(1, \sqrt{t / f(w)})$, and suggests a threshold $t$ around $10^{-5}$ for its
# corpora of billions of words. `llmlab.embeddings.train_skipgram` uses exactly this keep
# probability (with $f(w)$ counted over the words of its vocabulary), but with the larger threshold
# `SkipGramConfig.subsample` $= t = 10^{-3}$, which drops fewer words: our corpus has under a
# million words (printed below). The word2vec C code uses a gentler variant, keep probability
# $\sqrt{t / f(w)} + t / f(w)$, with a default of $t = 10^{-3}$ too; the last column below shows it
# for comparison, but `llmlab` does not use it.
#
# Here is what negative sampling and subsampling do to a few words of our corpus:

# %%
corpus = load_embedding_corpus(quick=QUICK)   # Austen's novels; in full mode also WikiText-2
vocab_all, counts_all = build_vocab(corpus)
freq = counts_all / counts_all.sum()
noise = freq ** 0.75 / (freq ** 0.75).sum()
t = default_config(quick=QUICK).subsample            # the threshold train_skipgram uses
assert t == 1e-3 and len(corpus) < 1_000_000
keep = np.minimum(1.0, np.sqrt(t / freq))            # the paper's keep probability (ours)
keep_c = np.minimum(1.0, np.sqrt(t / freq) + t / freq)  # the word2vec C code's variant
where = {w: i for i, w in enumerate(vocab_all)}
print(f"{len(corpus):,} words, {len(vocab_all):,} distinct, t = {t:g}")
print(f"{'word':>10} {'count':>8} {'share':>8} {'share^0.75':>11} {'kept':>6} {'kept (C code)':>14}")
for w in ["the", "her", "very", "sister", "letter", "picturesque"]:
    i = where[w]
    print(f"{w:>10} {counts_all[i]:8,} {freq[i]:8.3%} {noise[i]:11.3%} {keep[i]:6.0%} {keep_c[i]:14.0%}")

# %% [markdown]
# ### The loss is logistic regression
#
# Read the loss again: a real pair should get label 1, a negative pair label 0, and
# $-\log\sigma(s)$ and $-\log\sigma(-s) = -\log(1 - \sigma(s))$ are the two halves of the **binary
# cross-entropy**. So skip-gram with negative sampling is a binary classifier, "did this pair really
# occur?", whose features are learned vectors. Let's check on random vectors that the formula above
# and PyTorch's `binary_cross_entropy_with_logits` agree.

# %%
B, K, D = 4, 5, 16                          # pairs, negatives per pair, vector length
u = torch.randn(B, D)                       # (B, D) centre vectors
v_true = torch.randn(B, D)                  # (B, D) context vectors of the real pairs
v_neg = torch.randn(B, K, D)                # (B, K, D) context vectors of the negatives
s_true = (u * v_true).sum(-1)               # (B,) scores of the real pairs
s_neg = (v_neg * u[:, None, :]).sum(-1)     # (B, K) scores of the negatives

by_formula = -(F.logsigmoid(s_true) + F.logsigmoid(-s_neg).sum(-1))                 # (B,)
scores = torch.cat([s_true[:, None], s_neg], dim=1)                                 # (B, 1 + K)
labels = torch.cat([torch.ones(B, 1), torch.zeros(B, K)], dim=1)                    # (B, 1 + K)
as_classifier = F.binary_cross_entropy_with_logits(scores, labels, reduction="none").sum(-1)  # (B,)
torch.testing.assert_close(by_formula, as_classifier)
print(by_formula)

# %% [markdown]
# ### Training
#
# `llmlab.embeddings.train_skipgram` runs this recipe on mini-batches of pairs with the Adam
# optimiser. `default_config` holds the course's settings (printed below): the vector length
# `dim`, the `window`, `negatives` per pair, and so on. The full run trains on Austen's three
# novels plus excerpts of English Wikipedia (WikiText-2); quick mode, used by the tests, trains
# for fewer epochs on Austen alone.

# %%
config = default_config(quick=QUICK)
print(config)
vectors = train_skipgram(corpus, config, progress=True)
print(f"{vectors} trained in {vectors.train_seconds:.0f} s")

# %%
history = vectors.loss_history
fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
ax.plot(np.linspace(0, config.epochs, len(history)), history)
ax.set(xlabel="epoch", ylabel="loss per pair (nats)", title="Skip-gram training loss")
plt.show()
print(f"loss: {history[0]:.2f} at the start, {history[-1]:.2f} at the end")
assert history[-1] < 0.8 * history[0], "the loss should have dropped: training did not work"

# %% [markdown]
# Before training every score is 0, so the loss of a pair is $(1 + K)\log 2 \approx 4.2$ (each
# point on the curve is an average over many steps, so the first one is already lower). It falls
# quickly, then slowly; it can never reach 0, because which words appear near which is genuinely
# uncertain. Small drops at the start of each epoch are the model meeting the same pairs again:
# they are a little easier the second time.
#
# ### Neighbours
#
# The test of the vectors is whether similar words are now close. `vectors.neighbours(word, k)`
# returns the `k` words with the highest cosine similarity.

# %%
for w in ["sister", "morning", "happy", "letter", "london"]:
    print(f"{w:>8}: " + ", ".join(f"{n} {s:.2f}" for n, s in vectors.neighbours(w, k=6)))

related = [("sister", "brother"), ("morning", "evening"), ("happy", "glad"), ("letter", "note"),
           ("mother", "father"), ("three", "four")]
unrelated = [("sister", "evening"), ("morning", "glad"), ("happy", "note"), ("letter", "father"),
             ("mother", "four"), ("three", "brother")]
rel = np.mean([vectors.similarity(x, y) for x, y in related])
unrel = np.mean([vectors.similarity(x, y) for x, y in unrelated])
print(f"mean similarity of related pairs {rel:.2f}, of unrelated pairs {unrel:.2f}")
assert rel > unrel + 0.15, "related words should be clearly closer than unrelated ones"

# %% [markdown]
# Relatives sit next to *sister* and other times of day next to *morning*; on average, the related
# pairs above are clearly closer than the unrelated ones. Other neighbours look odd until you
# remember what the model was trained to do: a neighbour is a word used *in the same kind of
# sentence*, which is not always a word with the same meaning. Names of characters who are
# sisters, or places one travels to, can qualify; so can opposites such as *happy* and *unhappy*,
# which keep almost the same company. And some neighbours are just frequent companions (*her
# sister*, *your sister*): with under a million words of text, the vectors are noisy.
#
# Here is the heat map again, with the learned vectors next to the counts. The same blocks appear,
# now from a few dozen learned numbers per word instead of 3,000 counts.

# %%
learned = np.stack([vectors.vector(w) for w in some_words])                  # (9, dim)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
similarity_heatmap(ax1, cosine_similarity(rows, rows), some_words, "co-occurrence counts (3,000 numbers)")
im = similarity_heatmap(ax2, cosine_similarity(learned, learned), some_words,
                        f"skip-gram vectors ({config.dim} numbers)")
fig.colorbar(im, ax=[ax1, ax2], label="cosine similarity", shrink=0.8)
plt.show()

# %% [markdown]
# ### Analogies
#
# The famous party trick of word vectors: $\text{vec}(\textit{king}) - \text{vec}(\textit{man}) +
# \text{vec}(\textit{woman})$ lands near $\text{vec}(\textit{queen})$. Differences between vectors
# can encode relations (here, male → female) that are consistent across many word pairs.
# `vectors.analogy(a, b, c)` returns the words nearest to $a - b + c$, leaving out $a$, $b$, $c$.

# %%
for a_, b_, c_ in [("father", "man", "woman"), ("her", "she", "he"), ("better", "good", "bad")]:
    answers = vectors.analogy(a_, b_, c_, k=3)
    print(f"{a_} - {b_} + {c_} ≈ " + ", ".join(f"{w} ({s:.2f})" for w, s in answers))

# %% [markdown]
# Be honest about this trick. The first two come out right: *father − man + woman ≈ mother* and
# *her − she + he ≈ his*, relations the corpus shows thousands of times in parallel pairs. The
# third is hit-and-miss: *worse* should answer *better − good + bad*; depending on the corpus and
# the run it comes first, further down the list, or not at all.
#
# The reasons: the word2vec analogies were measured on vectors trained on *billions* of words,
# and ours saw under a million. A relation is only learned if the corpus uses many word pairs in
# parallel ways, often enough; even in the full corpus *king* appears about a hundred times and
# *queen* twenty. Also, the answer is the nearest word *other than* $a$, $b$ and $c$: often the
# plain nearest neighbour of $a - b + c$ is $a$ itself. Neighbours are the robust use of
# embeddings; analogies are a fragile illustration.
#
# ### Explore the embeddings
#
# Pick a word (or type one) and a number of neighbours: the widget lists the nearest words and
# draws them in 2-D. The picture is a **PCA projection**: the two directions along which the
# chosen vectors vary most. Squeezing dozens of dimensions into 2 loses information, so trust the list of
# similarities more than distances on the plot.

# %%
explorer = EmbeddingExplorer(vectors, word="sister")
explorer

# %% [markdown]
# The same views as static figures (for readers where widgets do not render): the neighbours of
# "sister", and a projection of several groups of words.

# %%
plot_neighbours(vectors, "sister", k=10)

# %%
groups = ["sister", "brother", "mother", "father", "daughter",
          "morning", "evening", "three", "four",
          "letter", "note", "happy", "glad", "sorry"]
plot_projection(vectors, groups, highlight="sister")

# %% [markdown]
# ## Recap
#
# - A **tokenizer** turns text into integer ids and back. Characters give a tiny vocabulary and long
#   sequences; words give short sequences, a vocabulary that keeps growing, `<unk>`s for unseen
#   words, and a lossy round trip.
# - **Byte-level BPE** starts from the 256 byte values, so nothing is ever unknown, and repeatedly
#   merges the most frequent neighbouring pair (ties: the greater pair) inside pre-tokens.
#   Frequent words become one token; rare ones are spelled from pieces. Special tokens such as
#   `<|endoftext|>` are never split.
# - Tokenizers are language-specific: English-trained BPE spends about three tokens per Chinese
#   character, Chinese-trained BPE merges characters and even words like 黃河. The same meaning can
#   cost very different numbers of tokens.
# - **One-hot** vectors make every pair of tokens equally unrelated (cosine similarity 0).
#   **Co-occurrence counts** capture meaning from company, but are long and dominated by frequent
#   words. **Dense** vectors learned by **skip-gram with negative sampling** (a classifier of real
#   versus random pairs) put words with similar contexts close together.
# - **Cosine similarity**, $a \cdot b / (\lVert a \rVert \lVert b \rVert)$, measures closeness;
#   neighbours are a robust use of it, analogies a fragile one on small corpora.
#
# ## What's next
#
# In GPT, the embedding table is not trained separately with skip-gram: it is the first layer of
# the model, an `nn.Embedding` trained together with everything else to predict the next token.
# **Lesson 02, predicting the next token**, starts that story with the smallest language model
# there is, a bigram model over the characters of Tiny Shakespeare, built first by counting and
# then as a neural network. It introduces softmax, cross-entropy and sampling, which every later
# lesson uses.
