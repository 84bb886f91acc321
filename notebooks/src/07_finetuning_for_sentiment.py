# %% [markdown]
# # 07 · From pre-training to fine-tuning: a GPT that reads sentiment
#
# Lesson 06 trained a GPT to do one thing: predict the next token. This lesson asks whether that
# skill can be *reused*. We take a small GPT that was pretrained on English prose (novels, plays,
# Wikipedia), give it a new output layer, and teach it to tell positive
# product, film and restaurant reviews from negative ones. Then we measure, on the same held-out
# sentences, how it compares with a model that never saw any prose before, and with a plain
# bag-of-words baseline. The answer at this scale is not the one the headlines suggest, and
# working out *why* is the main lesson.
#
# **What you will learn**
#
# - what pre-training and fine-tuning are, and how the three transformer families (encoder-only
#   such as BERT, decoder-only such as GPT, encoder–decoder such as T5) differ in what attends to
#   what;
# - to turn a GPT into a classifier: which position to read under right padding, why a causal
#   model needs no padding mask here, last-token vs mean pooling;
# - to freeze and unfreeze parts of a model and count what still trains;
# - to run an honest comparison: one fixed test split, a strong simple baseline, 95 % confidence
#   intervals, an out-of-domain test, and zero-shot prompting as the no-training reference;
# - why attention weights are not explanations, by putting attention and occlusion side by side.
#
# **Prerequisites:** lesson 06 (the GPT, `train()`, checkpoints) and lesson 02's cross-entropy.
#
# **Estimated time:** about 60 minutes. The notebook runs in about 3 minutes on a 2-core laptop,
# almost all of it fine-tuning; nothing is pretrained here (the base model ships with the course).

# %%
%matplotlib inline
import os
import time

import torch
import torch.nn as nn

import llmlab
from llmlab import checks
from llmlab.bag_of_words import BagOfWords, words
from llmlab.batches import TensorExamples
from llmlab.classifier import (ClassifierConfig, GPTClassifier, SentenceBatches, accuracy,
                               accuracy_interval, classification_loss, confusion_matrix,
                               correct, count_trainable, encode_batch, frozen_features,
                               last_token_pool, mcnemar_p, mean_pool, predict_proba, set_trainable,
                               PARTS)
from llmlab.data import SENTIMENT_SOURCES, load_sentiment
from llmlab.gpt import GPT
from llmlab.checkpoint import load_checkpoint
from llmlab.pretrained import load_pretrained, pretrained_files
from llmlab.prompting import zero_shot_scores
from llmlab.training import TrainConfig, train
from llmlab.viz import SentimentExplorer, plot_accuracies, plot_metric, plot_sentiment

QUICK = os.environ.get("LLMLAB_QUICK") == "1"  # the test suite sets this: shorter fine-tuning runs
STEPS = 60 if QUICK else 200                    # optimizer steps per fine-tuning run (see section 6)
llmlab.set_seed(0)
torch.set_num_threads(llmlab.notebook_threads())  # all cores but one, as in lesson 06
print(f"quick mode: {QUICK}; {STEPS} steps per run; torch threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1. Pre-training, then fine-tuning
#
# Labelled data is scarce and expensive; raw text is nearly free. **Pre-training** uses the free
# part: a model learns a task that needs no labels, such as predicting the next token of books
# and web pages. **Fine-tuning** then adapts that model to the task you care about with a small
# labelled set, usually by adding a small output layer and training a little further. The hope is
# that what the model learned about words and sentences carries over.
#
# Two papers in 2018 made this the standard recipe for language. Howard & Ruder's ULMFiT
# pretrained an LSTM language model, fine-tuned it on the target texts, then trained a classifier
# on top, and reported that with 100 labelled examples it matched training from scratch on 100
# times more. Radford et al.'s GPT (2018) did the same with a 12-layer decoder-only transformer
# pretrained on the BooksCorpus (over 7,000 unpublished books) and fine-tuned on each task with a
# linear layer on the state of the last token: that is the recipe of this lesson. (GPT-1 added
# special start, delimiter and end tokens around each input, read the end token's state, and kept
# language modelling as an auxiliary loss while fine-tuning; we omit both and read the last real
# token of the sentence.)
#
# ### Three families of transformers
#
# The original Transformer (Vaswani et al., 2017) was built for translation and had two halves.
# Later models kept one half or both. They differ in **what each position may attend to**:
#
# | family | examples | self-attention | cross-attention | pre-training task | typical use |
# |---|---|---|---|---|---|
# | encoder-only | BERT (Devlin et al., 2019) | bidirectional: every token sees every token | none | fill in masked tokens (+ next-sentence prediction in BERT) | classification, tagging, retrieval embeddings |
# | decoder-only | GPT, GPT-2, this course's GPT | causal: token $t$ sees $0..t$ | none | predict the next token | generation; classification after fine-tuning or by prompting |
# | encoder–decoder | the 2017 Transformer, T5 (Raffel et al., 2020) | encoder bidirectional; decoder causal | decoder attends to the encoder's output | none in 2017 (trained on translation directly); span corruption (T5) | translation, summarisation, any text-to-text task |
#
# Three common mix-ups, corrected:
#
# - **GPT has no encoder and no cross-attention.** "Decoder-only" means it keeps the decoder's
#   causal self-attention and MLPs and drops the cross-attention, which had nothing to attend to.
# - **BERT is not a translation model.** An encoder produces one vector per input token; it does not
#   generate. It can serve as the encoder half of a translation system, but on its own it is used to
#   understand text: classify it, tag it, embed it.
# - **Decoder-only models can classify.** This lesson does exactly that. What they cannot do in a
#   single pass is let an early token see a later one, which is where BERT's bidirectional
#   attention helps on tasks such as tagging.
#
# Lesson 08 builds the third family, an encoder–decoder with cross-attention.

# %% [markdown]
# ## 2. The data and the base model
#
# The labelled data are the UCI "sentiment labelled sentences" (Kotzias et al., 2015): 1,000
# sentences each from Amazon product reviews, IMDB film reviews and Yelp restaurant reviews, half
# positive, half negative. `load_sentiment` gives the course's **fixed split**: 70 % to train on,
# 15 % to choose settings with (validation), 15 % to report (test), stratified so each split has all
# three sources and both labels in equal shares. It is the same on every machine, so your numbers
# can be compared with anyone's.

# %%
# NBVAL_CHECK_OUTPUT
splits = {name: load_sentiment("all", name) for name in ("train", "val", "test")}
for name, pairs in splits.items():
    by_source = {src: len(load_sentiment(src, name)) for src in SENTIMENT_SOURCES}
    positive = sum(label for _, label in pairs)
    print(f"{name:>5}: {len(pairs):4} sentences, {positive / len(pairs):.0%} positive, "
          + ", ".join(f"{src} {n}" for src, n in by_source.items()))
print("\nexamples:")
for sentence, label in splits["train"][:4]:
    print(f"  {'positive' if label else 'negative'}  {sentence}")

# %% [markdown]
# The base model is `english_bpe`, shipped in `data/pretrained/` (its README has the exact command,
# losses and hardware). It is lesson 06's GPT, a little wider, with a byte-level BPE tokenizer
# (lesson 01), pretrained with `python -m llmlab.train` on two CPU cores. Its checkpoint records
# how it was trained. Sentences from the reviews become token ids like any other text:

# %%
base, tokenizer = load_pretrained("english_bpe")
n_params = sum(p.numel() for p in base.parameters())
print(base.config)
print(f"{n_params:,} parameters; {tokenizer.vocab_size} tokens in the vocabulary")
pretraining = load_checkpoint(pretrained_files("english_bpe")[0])
last = pretraining.history[-1]
print(f"pretrained on {pretraining.extra['data']['corpus'].replace(',', ', ')}: "
      f"{last['tokens_seen']:,} tokens read in {last['step']} steps, {last['elapsed_s'] / 60:.0f} "
      f"minutes; validation loss {last['val_loss']:.2f} nats per token")
sentence = "The food was great but the service was slow."
ids = tokenizer.encode(sentence)
print(f"{len(ids)} tokens:", [tokenizer.decode([i]) for i in ids])
lengths = [len(tokenizer.encode(s)) for s, _ in splits["train"]]
print(f"training sentences: {sum(lengths) / len(lengths):.1f} tokens on average, the longest "
      f"{max(lengths)} (the model reads up to {base.config.block_size})")

# %% [markdown]
# ## 3. Zero-shot: just ask the language model
#
# Before training anything, we can *prompt* the base model. Put the review in a template,
# `"<review> Overall, it was"`, and compare how likely the model finds the continuation " good"
# with how likely it finds " bad". If $\log P(\text{good}) > \log P(\text{bad})$, call it positive.
# No weights change; the model's only skill is predicting the next token. (A label word may be
# several tokens, so each continuation's log-probability is the sum over its tokens; the cell
# prints how many each word has. A word of two tokens pays for two predictions, which by itself
# tilts the vote towards the shorter word: one reason to also try a shifted threshold below.)
# The GPT-1 paper already noticed that its pretrained model could do some tasks, sentiment among
# them, with such heuristics before any fine-tuning; GPT-2 (Radford et al., 2019) made it the
# headline, showing that zero-shot ability grows with model size. Does it work for ours?

# %%
test_sentences = [s for s, _ in splits["test"]]
test_labels = torch.tensor([y for _, y in splits["test"]])
scores = zero_shot_scores(base, tokenizer, test_sentences, "{} Overall, it was", " good", " bad")
print({word: len(tokenizer.encode(word)) for word in (" good", " bad")}, "tokens per label word")
zero_shot_pred = (scores > 0).long()
zs_correct = int((zero_shot_pred == test_labels).sum())
zs_low, zs_high = accuracy_interval(zs_correct, len(test_labels))
print(f"zero-shot accuracy on the test split: {zs_correct / len(test_labels):.3f} "
      f"(95 % interval {zs_low:.3f}–{zs_high:.3f}); it calls {zero_shot_pred.float().mean():.0%} "
      "of the sentences positive")
# Calibrated: shift the threshold to the median score, so half the sentences are called positive.
calibrated = (scores > scores.median()).long()
print(f"with the threshold moved to the median score: {(calibrated == test_labels).float().mean():.3f}")

# %% [markdown]
# Chance is 0.5, and the interval shows whether we are above it. A model of 2 million parameters
# that has read 12 million tokens of novels and Wikipedia has no usable notion that "good"
# follows praise: its preference for one word is nearly the same whatever the review says, so
# even moving the threshold does not help. GPT-2's zero-shot results came from 1.5 *billion*
# parameters and 40 GB of web text. Prompting is what scale buys; at our scale we have to train.

# %% [markdown]
# ## 4. From a language model to a classifier
#
# A classifier needs **one vector per sentence**, and a linear layer (the *head*) that turns it
# into two logits, negative and positive. Our GPT gives one vector per *token*: `GPT.features`
# runs the blocks and the final LayerNorm and stops before the output head.
#
# Sentences have different lengths, so a batch is **right-padded**: shorter rows are filled with a
# pad id up to the longest row, and we keep each sentence's real length.

# %%
batch_sentences = ["Loved it.", "The food was great but the service was slow.", "Meh."]
ids, lengths = encode_batch(tokenizer, batch_sentences, base.config.block_size)  # (B, T), (B,)
print("ids", tuple(ids.shape), "lengths", lengths.tolist())
print(ids)
with torch.no_grad():
    h, _ = base.features(ids)                                # (B, T, C): one state per token
print("features", tuple(h.shape), "= (B, T, n_embd)")

# %% [markdown]
# Which state should represent the sentence? In a causal model, position $t$ has read tokens
# $0..t$ and nothing after. So the **last real token**, at position `length - 1`, is the only
# one that has read the whole sentence: GPT-1 classified from it. Position `T - 1` would be a pad
# for every sentence shorter than the batch's longest.
#
# Right padding needs **no attention mask** in a causal model: a real token at position
# $t < \text{length}$ attends only to positions $\le t$, which are all real, so the pads after it
# cannot change its state. We can test that claim: change the pad ids to random tokens and the
# states of the real tokens must not move.

# %%
scrambled = ids.clone()
for row, n in enumerate(lengths.tolist()):
    scrambled[row, n:] = torch.randint(tokenizer.vocab_size, (ids.shape[1] - n,))
with torch.no_grad():
    h_scrambled, _ = base.features(scrambled)                # (B, T, C)
for row, n in enumerate(lengths.tolist()):
    torch.testing.assert_close(h_scrambled[row, :n], h[row, :n])
print("real tokens' states are unchanged when the pads change: no mask needed under right padding")
print("but a pad position's own state does change:",
      not torch.allclose(h_scrambled[0, -1], h[0, -1]))

# %% [markdown]
# (With *left* padding, or in a bidirectional encoder such as BERT, real tokens would attend to the
# pads, and a padding mask, lesson 03, would be required.)
#
# ### Exercise 1 · The state of the last real token
#
# Write `last_real_state(h, lengths)`: given `h` of shape `(B, T, C)` and `lengths` of shape
# `(B,)`, return the `(B, C)` tensor whose row `b` is `h[b, lengths[b] - 1]`. One line of
# indexing does it, without a Python loop.

# %%
def last_real_state(h, lengths):
    """Row b is h[b, lengths[b] - 1], the state of sentence b's last real token: (B, T, C) -> (B, C)."""
    raise NotImplementedError  # your code here


checks.check_last_real_state(last_real_state)

# %% [markdown]
# The course's version is `llmlab.classifier.last_token_pool`. **Mean pooling**
# (`mean_pool`) is the alternative: average the states of the real positions, leaving the pads
# out. It uses every position, but early positions have read only the start of the sentence.

# %%
pooled_last = last_token_pool(h, lengths)                      # (B, C)
pooled_mean = mean_pool(h, lengths)                            # (B, C)
torch.testing.assert_close(pooled_last, h[torch.arange(len(lengths)), lengths - 1])
torch.testing.assert_close(pooled_mean[0], h[0, :lengths[0]].mean(0))
print("last-token", tuple(pooled_last.shape), " mean", tuple(pooled_mean.shape))

# %% [markdown]
# `GPTClassifier` puts the pieces together: the pretrained body (its language-model head is
# unused), one of the two poolings, and a fresh `nn.Linear(n_embd, 2)` head. Its first predictions
# mean nothing yet: the head's weights are random, so every sentence gets about the same
# probability, whatever it says.

# %%
classifier = GPTClassifier(base, ClassifierConfig(n_classes=2, pooling="last"))
probs = predict_proba(classifier, tokenizer, batch_sentences)  # (B, 2): P(negative), P(positive)
for s, p in zip(batch_sentences, probs):
    print(f"P(positive) = {p[1]:.3f}   {s}")

# %% [markdown]
# ## 5. Freezing: how much of the model should learn?
#
# Fine-tuning can update every weight, or only some. Freezing a parameter (`requires_grad =
# False`) keeps it as pre-training left it: nothing is computed for it in the backward pass and
# the optimizer never touches it. `set_trainable(model, part)` leaves one part trainable:
#
# - `"head"`: only the new linear layer. The body is a fixed feature extractor: a **linear probe**,
#   which measures what the pretrained features already contain.
# - `"last_block"`: the head, the top block and the final LayerNorm.
# - `"all_but_embeddings"`: every block, but the token and position tables stay.
# - `"all"`: **full fine-tuning**.

# %%
for part in PARTS:
    trainable, total = count_trainable(set_trainable(classifier, part))
    print(f"{part:>18}: {trainable:>9,} of {total:,} parameters train ({trainable / total:.2%})")
wte = classifier.gpt.transformer.wte.weight
print(f"the token table alone: {wte.shape[0]:,} x {wte.shape[1]} = {wte.numel():,} numbers")

# %% [markdown]
# Freezing the token table keeps what pre-training learned about words the small labelled set
# never mentions. Howard & Ruder go further: they unfreeze one layer
# group at a time, from the top down, with smaller learning rates for lower layers.
#
# ### Exercise 2 · Freeze all but the head
#
# Write `freeze_all_but_head(model)`: set `requires_grad` to `False` for every parameter of the body
# (`model.gpt`) and to `True` for the head's (`model.head`), then **return the number of trainable
# parameters** as one int: the sum of `p.numel()` over the trainable parameters, not the number
# of parameter tensors. The checker builds small classifiers of random sizes and
# calls your function on them, once on a model whose parameters were all frozen before.

# %%
def freeze_all_but_head(model):
    """Freeze model.gpt, leave model.head trainable; return how many parameters still train."""
    raise NotImplementedError  # your code here


checks.check_freeze_all_but_head(freeze_all_but_head)

# %% [markdown]
# ## 6. An honest baseline first: bag of words
#
# Before we credit pre-training with anything, we need the number a simple method gets. A
# **bag-of-words** model ignores word order: each sentence becomes a 0/1 vector saying which words of
# the training vocabulary it contains, and **logistic regression** (one linear layer and a
# softmax, trained with cross-entropy) weighs each word. It is a few lines of torch, and it trains
# through the same `train()` as every model in the course: a batch source hands out random rows,
# a loss function scores them.

# %%
print(words("I didn't like it. The FOOD was great!"))
bow = BagOfWords.fit([s for s, _ in splits["train"]])
bow_data = {name: TensorExamples(bow.transform([s for s, _ in pairs]), [y for _, y in pairs])
            for name, pairs in splits.items()}                          # inputs (N, V_words)
print(f"{len(bow):,} words in the training vocabulary; train inputs "
      f"{tuple(bow_data['train'].inputs.shape)}")


def fit(model, train_data, val_data, steps, lr, weight_decay=0.1, seed=0):
    """Train model with the course's loop and classification_loss; record validation accuracy."""
    config = TrainConfig(max_steps=steps, batch_size=32, lr=lr, min_lr=lr / 10,
                         warmup_steps=min(10, steps - 1), weight_decay=weight_decay,
                         eval_interval=max(1, steps // 4), eval_steps=1, device="cpu", seed=seed)
    start = time.perf_counter()
    result = train(model, train_data, None, config, loss_fn=classification_loss, progress=False,
                   metrics={"val_accuracy": lambda m: accuracy(m, val_data)})
    print(f"{steps} steps in {time.perf_counter() - start:.1f} s; validation accuracy "
          f"{result.history[-1]['val_accuracy']:.3f}")
    return result


torch.manual_seed(0)
bow_model = nn.Linear(len(bow), 2)                                      # one weight per word and class
bow_run = fit(bow_model, bow_data["train"], bow_data["val"], steps=400, lr=1e-2)

# %% [markdown]
# What did it learn? Each word's weight for "positive" minus its weight for "negative" says how
# much the word pushes the verdict. The extremes are the words you would guess:

# %%
push = (bow_model.weight[1] - bow_model.weight[0]).detach()             # (V_words,)
order = push.argsort()
print("most negative:", [bow.vocab[i] for i in order[:10].tolist()])
print("most positive:", [bow.vocab[i] for i in order[-10:].flip(0).tolist()])

# %% [markdown]
# ## 7. A linear probe on the pretrained features
#
# A linear probe trains only the head. Because the body is frozen, its pooled state of each
# sentence never changes, so we compute them once (`frozen_features`, in eval mode so dropout is
# off) and train the head on those vectors: the same model as `set_trainable(classifier, "head")`,
# hundreds of times cheaper per step. We try both poolings.

# %%
sentence_data = {name: SentenceBatches(tokenizer, pairs, base.config.block_size)
                 for name, pairs in splits.items()}  # token ids, lengths and labels per split
probes, probe_features = {}, {}
for pooling in ("last", "mean"):
    body = GPTClassifier(base, ClassifierConfig(pooling=pooling))
    probe_features[pooling] = {name: frozen_features(body, data) for name, data in sentence_data.items()}
    torch.manual_seed(0)
    probes[pooling] = nn.Linear(base.config.n_embd, 2)                   # the head alone
    print(f"{pooling} pooling: ", end="")
    fit(probes[pooling], probe_features[pooling]["train"], probe_features[pooling]["val"],
        steps=600, lr=1e-2, weight_decay=0.0)

# The cached features are exactly what the classifier's body computes, row i for sentence i:
ids, lengths = encode_batch(tokenizer, [s for s, _ in splits["val"][:8]], base.config.block_size)
body.eval()
with torch.no_grad():
    torch.testing.assert_close(body.pooled(ids, lengths), probe_features["mean"]["val"].inputs[:8])
print("cached features == GPTClassifier.pooled")

# %% [markdown]
# ## 8. Fine-tuning, and the same transformer from scratch
#
# Now the body learns too. Each run starts from a fresh copy of the pretrained weights
# (`load_pretrained` again), uses last-token pooling as GPT-1 did, and takes the same number of
# steps (`STEPS` batches of 32 sentences; the cell prints how many passes over the training split
# that is) with the same peak learning rate, 1e-3. These settings were chosen by watching
# validation accuracy, never the test split. Read the plot for each curve's end: one that is still
# rising when the steps run out would gain from a longer run, so the comparison below is a
# comparison at this budget.
#
# The third run is the control: the **same architecture, randomly initialised**, trained on the
# labelled sentences only. Whatever fine-tuning gains over it is what pre-training contributed.
#
# Batches group sentences of similar length (`SentenceBatches` buckets them), so a 5-token review
# is not padded to the length of a 100-token one in the same batch.

# %%
print(f"{STEPS} steps x 32 sentences = {STEPS * 32 / len(sentence_data['train']):.1f} passes "
      "over the training split")
runs, models = {}, {}
for name, part in (("fine-tune last block", "last_block"), ("full fine-tune", "all"),
                   ("from scratch", "scratch")):
    llmlab.set_seed(0)
    if part == "scratch":
        body = GPT(base.config)                  # same sizes, random weights: no pre-training
    else:
        body, _ = load_pretrained("english_bpe")  # a fresh copy of the pretrained weights
    model = GPTClassifier(body, ClassifierConfig(pooling="last"))
    set_trainable(model, "all" if part == "scratch" else part)
    print(f"{name} ({count_trainable(model)[0]:,} trainable): ", end="")
    runs[name] = fit(model, sentence_data["train"], sentence_data["val"], steps=STEPS, lr=1e-3)
    models[name] = model

plot_metric({name: run.history for name, run in runs.items()}, "val_accuracy",
            ylabel="validation accuracy")

# %%
if QUICK:  # the suite's short runs must still learn something: above chance, with 95 % confidence
    val_n = len(sentence_data["val"])
    val_correct = round(accuracy(models["full fine-tune"], sentence_data["val"]) * val_n)
    assert accuracy_interval(val_correct, val_n)[0] > 0.5, "fine-tuning did not beat chance"

# %% [markdown]
# ## 9. The comparison, on the test split
#
# Every method is now scored once on the 450 test sentences it has never seen. With 450
# sentences, an accuracy is uncertain by a few points. The **Wilson interval** (Wilson, 1927) is
# the range of true accuracies consistent with what we measured: built this way on many test sets,
# such intervals cover the true accuracy about 95 % of the time. It behaves better than
# $p \pm 1.96\sqrt{p(1-p)/n}$ near 0 and 1.
#
# Comparing two methods needs more care than comparing their intervals. Intervals that overlap do
# not show that two methods are equal, and looking at them separately throws information away:
# both methods answered *the same* sentences. **McNemar's test** (McNemar, 1947) uses that pairing.
# It ignores the sentences both get right or both get wrong and looks at the rest: if the two
# methods were equally good, each sentence that only one of them gets right would favour either
# with probability ½, like a coin. Its p-value says how surprising the observed split would be
# for a fair coin; below 0.05 we call the difference clear.
#
# `correct(model, data)` gives one True/False per sentence, in the order of the split, so the
# answers of different methods line up sentence by sentence.

# %%
n_test = len(test_labels)
for data in (bow_data["test"], sentence_data["test"], probe_features["last"]["test"]):
    assert torch.equal(data.labels, test_labels)  # every method's answers line up, sentence by sentence
answers = {                                         # method -> (450,) True where it is right
    "zero-shot prompt": zero_shot_pred == test_labels,
    "bag of words + logistic regression": correct(bow_model, bow_data["test"]),
    "from scratch (same transformer)": correct(models["from scratch"], sentence_data["test"]),
    "linear probe, last token": correct(probes["last"], probe_features["last"]["test"]),
    "linear probe, mean pooling": correct(probes["mean"], probe_features["mean"]["test"]),
    "fine-tune last block + head": correct(models["fine-tune last block"], sentence_data["test"]),
    "full fine-tune": correct(models["full fine-tune"], sentence_data["test"]),
}


def scored(answers):
    """method -> (accuracy, 95 % interval), from each method's per-sentence correctness."""
    return {name: (ok.float().mean().item(), accuracy_interval(int(ok.sum()), len(ok)))
            for name, ok in answers.items()}


results = scored(answers)
print(f"{'method':<36} {'test accuracy':>13}   95 % interval")
for name, (acc, (low, high)) in results.items():
    print(f"{name:<36} {acc:>13.3f}   {low:.3f}–{high:.3f}")
plot_accuracies(results)

# %% [markdown]
# Read the table before the prose: the sentences below are printed from these numbers.

# %%
def compare(a, b, answers=answers):
    """A sentence comparing methods a and b on the same sentences: who is ahead, and is it clear?"""
    right_a, right_b = answers[a], answers[b]
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p = mcnemar_p(right_a, right_b)
    if only_a == only_b:
        lead = f"{a} and {b} tie"
    else:
        ahead, behind = (a, b) if only_a > only_b else (b, a)
        gap = abs(only_a - only_b) / len(right_a) * 100
        lead = f"{ahead} is ahead of {behind} by {gap:.1f} points"
    verdict = "a clear difference" if p < 0.05 else "this test set cannot tell them apart"
    return (f"{lead}: of the sentences only one of them gets right, {only_a} go to {a} and "
            f"{only_b} to {b} (McNemar p = {p:.3f}, {verdict}).")


def ranking(results):
    """Methods from best to worst; '=' joins methods with the same accuracy."""
    order = sorted(results, key=lambda name: -results[name][0])
    links = [" = " if results[prev][0] == results[name][0] else " > " for prev, name in zip(order, order[1:])]
    return order[0] + "".join(link + name for link, name in zip(links, order[1:]))


print("·", compare("full fine-tune", "from scratch (same transformer)"))
print("·", compare("full fine-tune", "bag of words + logistic regression"))
print("·", compare("linear probe, mean pooling", "linear probe, last token"))
print("·", compare("full fine-tune", "linear probe, last token"))
print("ranking:", ranking(results))

# %% [markdown]
# ### What the numbers say, and why
#
# The sentences above are computed from your run. On ours (2-core CPU, torch 2.13) the ranking
# was not the one the pre-training story predicts:
#
# - **The bag of words came first.** These reviews are short (about 23 tokens) and their
#   sentiment is carried by a handful of words, the ones section 6 printed. A linear model that
#   sees every word of the training vocabulary and learns one weight for each is exactly suited to
#   that. A simpler method winning at small scale is common, and a comparison without it would have
#   overstated everything else.
# - **One run is one sample.** The seed fixes the order of the training batches and the dropout
#   masks; another seed gives another model and another accuracy. A careful study repeats each run
#   with several seeds and reports the spread. Pass `seed=1` to `fit` and see how much your
#   numbers move.
# - **Fine-tuning learns, but pre-training buys little here.** The first `compare` line above says
#   how far apart the fully fine-tuned GPT and the same transformer trained from scratch ended, and
#   whether this test set can tell them apart; on ours it could not. The probes show why:
#   the frozen pretrained features support only a weak linear classifier (mean pooling scored
#   higher than the last token, plausibly because every position contributes), so most of what the
#   fine-tuned model knows it learned from the labels, as the model from scratch did.
# - **Scale is the missing ingredient.** Our base model has 2.2 million parameters and read 12
#   million tokens of plays, novels and Wikipedia, in which product reviews and restaurant slang
#   barely occur. GPT-1 had about 117 million parameters and was pretrained on over 7,000 books for
#   many passes; it reached 91.3 % on a film-review benchmark (SST-2). ULMFiT's language model was
#   pretrained on WikiText-103 (103 million words) and then fine-tuned on the target reviews
#   themselves before the classifier was trained. What transfers is what was learned, and ours learned
#   little about opinions.
#
# You can test the scale explanation yourself: the pretrained model is a file, `data/pretrained/`
# says how to train a longer one with `python -m llmlab.train`, and the cells above run unchanged
# with it.

# %% [markdown]
# ### Exercise 3 · The confusion matrix
#
# Accuracy hides *which* mistakes a model makes. A **confusion matrix** counts them: cell
# `[i, j]` is the number of examples whose true label is `i` and whose predicted label is `j`,
# so the diagonal holds the correct answers. Write `confusion_matrix_by_hand(pred, true, n_classes)` for
# 1-D tensors of class ids; the checker also tries more than two classes.

# %%
def confusion_matrix_by_hand(pred, true, n_classes):
    """Counts (n_classes, n_classes): row = true label, column = predicted label."""
    raise NotImplementedError  # your code here


checks.check_confusion_matrix(confusion_matrix_by_hand)

# %% [markdown]
# The course's version works on a model and a dataset. For the fine-tuned GPT and the bag of words:

# %%
for name, model, data in (("full fine-tune", models["full fine-tune"], sentence_data["test"]),
                          ("bag of words", bow_model, bow_data["test"])):
    m = confusion_matrix(model, data)                                   # (2, 2)
    print(f"{name}: rows = true (negative, positive), columns = predicted\n{m}")
    print(f"  accuracy = trace / total = {m.trace() / m.sum():.3f}; of the truly negative, "
          f"{m[0, 0] / m[0].sum():.0%} are caught; of the truly positive, {m[1, 1] / m[1].sum():.0%}")

# %% [markdown]
# ## 10. Out of domain: a source the model has never seen
#
# A test split drawn from the same sources as training is the easy case. Here we train on Amazon
# and Yelp only and test on IMDB's film reviews. A bag of words knows only the words it saw:
# *plot*, *acting* and *actors* carry no weight if no product or restaurant review used them. A
# model that read Wikipedia before might, in principle, know that *masterpiece* is praise.

# %%
in_domain = ["amazon", "yelp"]
ood = {name: load_sentiment(in_domain, name) for name in ("train", "val")}
ood["test"] = load_sentiment("imdb", "test")
print({name: len(pairs) for name, pairs in ood.items()})

ood_bow = BagOfWords.fit([s for s, _ in ood["train"]])
ood_bow_data = {name: TensorExamples(ood_bow.transform([s for s, _ in pairs]), [y for _, y in pairs])
                for name, pairs in ood.items()}
unseen = sum(all(w not in ood_bow.index for w in words(s)) for s, _ in ood["test"])
print(f"IMDB test sentences with no word of the Amazon + Yelp vocabulary: {unseen}")
torch.manual_seed(0)
ood_bow_model = nn.Linear(len(ood_bow), 2)
print("bag of words: ", end="")
fit(ood_bow_model, ood_bow_data["train"], ood_bow_data["val"], steps=400, lr=1e-2)

ood_sentences = {name: SentenceBatches(tokenizer, pairs, base.config.block_size)
                 for name, pairs in ood.items()}
llmlab.set_seed(0)
ood_gpt = GPTClassifier(load_pretrained("english_bpe")[0], ClassifierConfig(pooling="last"))
print("full fine-tune: ", end="")
fit(ood_gpt, ood_sentences["train"], ood_sentences["val"], steps=STEPS, lr=1e-3)

n_ood = len(ood["test"])
ood_answers = {"bag of words": correct(ood_bow_model, ood_bow_data["test"]),
               "full fine-tune": correct(ood_gpt, ood_sentences["test"])}
assert torch.equal(ood_bow_data["test"].labels, ood_sentences["test"].labels)  # same sentences, same order
ood_results = scored(ood_answers)
imdb_test_bow = TensorExamples(bow.transform([s for s, _ in ood["test"]]), [y for _, y in ood["test"]])
imdb_test_ids = ood_sentences["test"]
print(f"\n{'IMDB test (' + str(n_ood) + ' sentences)':<28} {'trained on all three':>20} "
      f"{'trained without IMDB':>22}")
for name, (acc, (low, high)) in ood_results.items():
    seen = accuracy(bow_model, imdb_test_bow) if name == "bag of words" else \
        accuracy(models["full fine-tune"], imdb_test_ids)
    print(f"{name:<28} {seen:>20.3f} {acc:>14.3f} ({low:.2f}–{high:.2f})   lost "
          f"{(seen - acc) * 100:.1f} points")
print("out of domain:", compare("bag of words", "full fine-tune", answers=ood_answers))

# %% [markdown]
# The cell prints how much each model lost when IMDB was left out of training, and the same paired
# comparison as section 9 on the 150 IMDB sentences. On 150 sentences the intervals are about ±7
# points wide, so only a large gap would mean anything. On our run both models lost accuracy and
# the fine-tuned GPT did not come out ahead of counting words: whatever it carried over from
# Wikipedia did not make it more robust on a new domain. Robustness to new domains is one of the
# things large pretrained models are valued for; at our scale it does not show.

# %% [markdown]
# ## 11. What does the classifier read? Attention is not an explanation
#
# It is tempting to read the attention weights of the classification position as "what the model
# looked at". The explorer below shows them next to a different measurement, **occlusion**: remove
# one word at a time and see how P(positive) changes. A bar is P(positive) with the word minus
# P(positive) without it: green bars are words that push the verdict towards positive, orange bars
# towards negative. Type your own sentence; choose the layer whose attention is shown.

# %%
explorer = SentimentExplorer(models["full fine-tune"], tokenizer,
                             "The food was great but the service was slow.")
explorer

# %% [markdown]
# The static twin, for a printed handout or a projector, is `plot_sentiment`:

# %%
plot_sentiment(models["full fine-tune"], tokenizer,
               "I would not recommend this place, the staff were rude.", layer=-1)

# %% [markdown]
# The two panels answer different questions, and need not agree: compare them on the explorer's
# sentence and on your own. Attention weights say where one layer's classification position
# *read from*, averaged over heads; they say nothing about what the MLPs and later layers did with
# what was read. And above the first layer each position's state already mixes in earlier
# positions, so a weight on a token is not a weight on that word alone. Jain &
# Wallace (2019), studying recurrent (BiLSTM) and other encoders topped by one attention layer
# rather than transformers, found that attention weights often correlate poorly with gradient- and
# occlusion-based importance and can be swapped without changing the prediction; Wiegreffe &
# Pinter (2019) replied that whether attention *can* serve as an explanation depends on what one
# asks of it. Occlusion answers a causal question (what happens without this word?) but has its
# own limit: removing a word makes a sentence the model never saw in training. Use both, and trust
# neither alone.


# %% [markdown]
# ## Recap
#
# - **Pre-training** learns from unlabelled text; **fine-tuning** adapts the model to a labelled
#   task with a new head. Encoder-only models (BERT) attend both ways and are pretrained by filling
#   in masked tokens; decoder-only models (GPT) are causal and have no cross-attention;
#   encoder–decoder models (the 2017 Transformer, T5) join a bidirectional encoder to a causal
#   decoder through cross-attention.
# - Under right padding a causal model needs no mask; classify from the **last real token**
#   (`length - 1`) or **mean-pool** the real positions.
# - **Freezing** decides what learns: a linear probe (head only) measures the features; full
#   fine-tuning changes everything. `count_trainable` says how much.
# - An honest comparison uses one fixed test split, a simple strong baseline, intervals, and a
#   control trained from scratch. Here, at 2 million parameters and 12 million pretraining tokens,
#   the bag of words came first and pre-training added little over training from scratch; zero-shot
#   prompting was at chance. Those are facts about *this scale*, the reason large models exist.
# - Attention weights are not explanations; occlusion measures something else, and the two need
#   not agree.
#
# **Next:** lesson 08 builds the family this lesson only described, an encoder–decoder whose
# decoder reads the encoder through cross-attention.
#
# ## References
#
# - Vaswani et al. (2017), *Attention Is All You Need*: the encoder–decoder Transformer.
# - Howard & Ruder (2018), *Universal Language Model Fine-tuning for Text Classification* (ULMFiT).
# - Radford et al. (2018), *Improving Language Understanding by Generative Pre-Training* (GPT).
# - Radford et al. (2019), *Language Models are Unsupervised Multitask Learners* (GPT-2, zero-shot).
# - Devlin et al. (2019), *BERT: Pre-training of Deep Bidirectional Transformers for Language
#   Understanding*.
# - Raffel et al. (2020), *Exploring the Limits of Transfer Learning with a Unified Text-to-Text
#   Transformer* (T5).
# - Kotzias et al. (2015), *From Group to Individual Labels Using Deep Features*: the sentiment
#   sentences.
# - Wilson (1927), *Probable Inference, the Law of Succession, and Statistical Inference*: the interval.
# - McNemar (1947), *Note on the Sampling Error of the Difference Between Correlated Proportions or
#   Percentages*: the paired test.
# - Jain & Wallace (2019), *Attention is not Explanation*; Wiegreffe & Pinter (2019), *Attention is
#   not not Explanation*.
