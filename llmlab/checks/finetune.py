"""Checkers for lesson 07 (fine-tuning): pool the last real token, freeze all but the head, count errors.

Each checker draws fresh random sizes on every call (so no answer can be memorised), compares the
learner's result with a reference computed here, catches answers that change their input in place,
and when the answer is wrong names the typical mistake it looks like.
"""
from __future__ import annotations

import random

import torch

from llmlab.classifier import ClassifierConfig, GPTClassifier
from llmlab.gpt import GPT, GPTConfig

from ._core import (Verdict, as_count, as_tensor, call_safely, call_unchanged, close,
                    distinct_sizes, failed, passed, unchanged)

__all__ = ["check_last_real_state", "check_freeze_all_but_head", "check_confusion_matrix"]


# --- exercise: the state of each sentence's last real token ------------------------------------

def _pool_cases(pick: random.Random) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(h, lengths) cases: first all sentences shorter than T, then one with a full-length sentence."""
    cases = []
    for full in (False, True):
        B, T, C = pick.randint(3, 6), pick.randint(4, 11), pick.randint(2, 7)
        lengths = [pick.randint(1, T - 1) for _ in range(B)]
        lengths[0] = 1                          # a one-token sentence: its state is at position 0
        if full:
            lengths[pick.randrange(1, B)] = T   # a sentence that fills the batch: no pad at all
        gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
        cases.append((torch.randn(B, T, C, generator=gen), torch.tensor(lengths)))
    return cases


def check_last_real_state(pool_fn) -> Verdict:
    """Check last_real_state(h, lengths): h (B, T, C) right-padded, lengths (B,) -> (B, C)."""
    ex = "last_real_state(h, lengths)"
    for h, lengths in _pool_cases(random.SystemRandom()):
        B, T, C = h.shape
        want = h[torch.arange(B), lengths - 1]  # (B, C)
        h_in, lengths_in = h.clone(), lengths.clone()
        result, verdict = call_safely(ex, pool_fn, h_in, lengths_in)
        if verdict is not None:
            if lengths.max() < T or "index" not in verdict.message.lower():
                return verdict
            return failed(ex, f"{verdict.message} With a sentence of length T = {T}, position "
                              "lengths is one past the end: the last real token sits at "
                              "lengths - 1 (positions count from 0).")
        spoiled = unchanged(ex, {"h": h, "lengths": lengths}, {"h": h_in, "lengths": lengths_in})
        if spoiled is not None:
            return spoiled
        if isinstance(result, (list, tuple)) and result and isinstance(result[0], torch.Tensor):
            return failed(ex, f"you returned a Python {type(result).__name__} of "
                              f"{len(result)} tensors; the result should be one tensor of shape "
                              f"{(B, C)}. One indexing expression gives it: "
                              "h[torch.arange(B), lengths - 1] (or torch.stack your list).")
        if not isinstance(result, torch.Tensor):
            return failed(ex, f"the result should be a torch tensor of shape {(B, C)}, but your "
                              f"function returned {type(result).__name__}. Index h directly, so "
                              "the answer stays a tensor (and keeps its gradient).")
        got, verdict = as_tensor(result, ex)
        if verdict is not None:
            return verdict
        if got.shape == (B, B, C):
            return failed(ex, f"the result has shape {(B, B, C)}: h[:, lengths - 1] takes every "
                              "sentence's position for every row. Index the rows too: "
                              "h[torch.arange(B), lengths - 1] picks one position per row.")
        if got.shape != (B, C):
            return failed(ex, f"for h of shape {(B, T, C)} the result should have shape {(B, C)} "
                              f"(one state per sentence), got {tuple(got.shape)}.")
        if close(got, want):
            continue
        if close(got, h[:, -1]):
            return failed(ex, "you took position T - 1 of every row, but in a shorter sentence that "
                              "is a pad token, whose state says nothing about the sentence. Take "
                              "position lengths - 1 of each row instead.")
        if lengths.max() < T and close(got, h[torch.arange(B), lengths]):
            return failed(ex, "off by one: you took position lengths, the first pad after the "
                              "sentence. A sentence of length n has its tokens at 0 .. n - 1, so "
                              "the last real one is at lengths - 1.")
        real = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
        if close(got, (h * real[..., None]).sum(1) / lengths[:, None]):
            return failed(ex, "that is mean pooling (the average of the real positions), a good "
                              "alternative, but this exercise asks for the single state of the "
                              "last real token, position lengths - 1.")
        return failed(ex, f"wrong values for h of shape {(B, T, C)} and lengths "
                          f"{lengths.tolist()}: row b should be h[b, lengths[b] - 1].")
    return passed(ex, "each sentence is read at its last real token, whatever its padding. "
                      "That is what llmlab.classifier.last_token_pool does.")


# --- exercise: freeze everything but the head and count what still trains ---------------------

def _tiny_classifier(pick: random.Random, n_classes: int, n_embd: int) -> GPTClassifier:
    """A small random GPTClassifier of the given head size; the other sizes change on every call."""
    n_head = pick.choice([h for h in (1, 2) if n_embd % h == 0])
    config = GPTConfig(vocab_size=pick.randint(20, 60), block_size=pick.randint(6, 16),
                       n_layer=pick.randint(1, 3), n_head=n_head, n_embd=n_embd, dropout=0.0)
    with torch.random.fork_rng(devices=[]):  # the learner's random state is left alone
        torch.manual_seed(pick.randrange(2 ** 31))
        return GPTClassifier(GPT(config), ClassifierConfig(n_classes=n_classes))


def check_freeze_all_but_head(freeze_fn) -> Verdict:
    """Check freeze_all_but_head(model): only model.head trains; returns the trainable count."""
    ex = "freeze_all_but_head(model)"
    pick = random.SystemRandom()
    # Never 2 classes, and different sizes in the two cases, so a count written for the lesson's
    # two-class head (or copied from the first case) cannot pass.
    k1, k2 = distinct_sizes((3, 5), (3, 5))
    c1, c2 = distinct_sizes((3, 16), (3, 16))
    for start_frozen, n_classes, n_embd in ((False, k1, c1), (True, k2, c2)):
        model = _tiny_classifier(pick, n_classes, n_embd)
        if start_frozen:  # a model frozen before: the head must be switched back on
            for p in model.parameters():
                p.requires_grad_(False)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        result, verdict = call_safely(ex, freeze_fn, model)
        if verdict is not None:
            return verdict
        changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
        if changed:
            return failed(ex, f"the weights {changed[0]!r} changed: freezing only switches "
                              "requires_grad; it must not touch the numbers.")
        head = {id(p) for p in model.head.parameters()}
        head_frozen = [n for n, p in model.named_parameters() if id(p) in head and not p.requires_grad]
        body_trainable = [n for n, p in model.named_parameters()
                          if id(p) not in head and p.requires_grad]
        n_head = sum(p.numel() for p in model.head.parameters())
        n_all = sum(p.numel() for p in model.parameters())
        if head_frozen:
            why = (" This model arrived with every parameter frozen, so set requires_grad = True "
                   "on the head's parameters explicitly.") if start_frozen else ""
            return failed(ex, f"the head is frozen too ({', '.join(head_frozen)}): nothing would "
                              f"learn. Leave model.head's weight and bias trainable.{why}")
        if body_trainable:
            n = len(body_trainable)
            return failed(ex, f"{n} tensors of the body still train, e.g. "
                              f"{', '.join(body_trainable[:3])}. Loop over model.gpt.parameters() "
                              "(embeddings, every block and ln_f) and set requires_grad = False.")
        count = as_count(result)
        if result is None:
            return failed(ex, "the freezing is right, but the function returned None: also return "
                              "the number of trainable parameters (sum of p.numel() where "
                              "p.requires_grad).")
        if count is None:
            return failed(ex, f"return the count as one int (the sum of p.numel() over the "
                              f"trainable parameters), got {type(result).__name__}.")
        C, K = model.gpt.config.n_embd, model.config.n_classes
        if count == n_all:
            return failed(ex, f"the freezing is right, but {count} is every parameter: count only "
                              "those with p.requires_grad.")
        if count == C * K:
            return failed(ex, f"{count} = n_embd x n_classes is the head's weight only; its bias "
                              f"({K} numbers) trains too.")
        if count == len(list(model.head.parameters())):
            return failed(ex, "you counted parameter tensors; count their numbers (p.numel()).")
        if count != n_head:
            return failed(ex, f"the freezing is right, but the count is {count}; the head holds "
                              f"{n_head} numbers (n_embd x n_classes + n_classes for n_embd={C}, "
                              f"n_classes={K}).")
    return passed(ex, "only the head trains, and you counted it right: a linear probe on frozen "
                      "features. llmlab.classifier.set_trainable(model, 'head') does the same.")


# --- exercise: the confusion matrix ------------------------------------------------------------

def check_confusion_matrix(confusion_fn) -> Verdict:
    """Check confusion_matrix(pred, true, n_classes) -> counts (n_classes, n_classes), rows = true."""
    ex = "confusion_matrix(pred, true, n_classes)"
    pick = random.SystemRandom()
    for n_classes in (2, pick.randint(3, 6)):
        n = pick.randint(15, 60)
        gen = torch.Generator().manual_seed(pick.randrange(2 ** 31))
        # With more than two classes the last never occurs: its row and column must still exist.
        seen = n_classes if n_classes == 2 else n_classes - 1
        while True:  # an asymmetric matrix, so that a transposed answer shows
            pred = torch.randint(seen, (n,), generator=gen)
            true = torch.randint(seen, (n,), generator=gen)
            want = torch.zeros(n_classes, n_classes)
            for t, p in zip(true.tolist(), pred.tolist()):
                want[t, p] += 1
            if not torch.equal(want, want.T):
                break
        result, verdict = call_unchanged(ex, confusion_fn, pred, true, n_classes)
        if verdict is not None:
            if n_classes > 2 and "shape" in verdict.message and "invalid" in verdict.message:
                return failed(ex, f"{verdict.message} With n_classes={n_classes} the last class "
                                  "never occurs in this sample, so torch.bincount returns fewer "
                                  f"than {n_classes * n_classes} counts: pass "
                                  "minlength=n_classes * n_classes.")
            return verdict
        got, verdict = as_tensor(result, ex)
        if verdict is not None:
            return verdict
        if got.shape != (n_classes, n_classes):
            return failed(ex, f"with n_classes={n_classes} the matrix should be "
                              f"{(n_classes, n_classes)}, got {tuple(got.shape)}. Size it from "
                              "n_classes, not from the labels you happen to see: a class may "
                              "never occur in a sample.")
        if torch.equal(got, want):
            continue
        if torch.equal(got, want.T):
            return failed(ex, "rows and columns are swapped: row i must be the true label i and "
                              "column j the predicted label j, so m[true, pred] += 1.")
        if torch.equal(got, (want > 0).to(got.dtype)) or torch.equal(got.T, (want > 0).to(got.dtype)):
            return failed(ex, "every cell holds 0 or 1: m[true, pred] += 1 with index tensors adds "
                              "1 once per distinct (true, pred) pair, because repeated pairs write "
                              "the same cell at the same time. Count repeats: loop over the "
                              "examples, use m.index_put_((true, pred), torch.ones(n), "
                              "accumulate=True), or torch.bincount(true * n_classes + pred).")
        if got.sum() != n:
            return failed(ex, f"the counts add up to {int(got.sum())} but there are {n} "
                              "examples: every example adds 1 to exactly one cell.")
        return failed(ex, f"wrong counts for n_classes={n_classes}: cell [i, j] counts the "
                          "examples whose true label is i and whose prediction is j.")
    return passed(ex, "rows are the truth, columns the prediction; the diagonal holds the correct "
                      "answers, so accuracy = trace / total.")
