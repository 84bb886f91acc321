"""Time byte-level BPE training on Tiny Shakespeare, against a naive recount-every-merge baseline.

Run from the repository root:  .venv/bin/python benchmarks/bpe_train.py
"""
from __future__ import annotations

import os
import platform
import sys
import time
from collections import Counter

from llmlab.data import load_text, train_val_split
from llmlab.tokenizers import BPETokenizer, pretokenize

from _common import load_average  # benchmarks/_common.py (scripts run from this folder)
from llmlab import cpu_name

VOCAB_SIZE = 1000
REPEATS = 3          # the incremental trainer is timed REPEATS times; the best run counts
NAIVE_MERGES = 20    # merges the naive baseline runs at the start, middle and end of training


def naive_merges(chunks: dict[tuple[int, ...], int], vocab: list[bytes], num_merges: int):
    """The textbook loop: before every merge, recount every pair in every distinct pre-token."""
    chunks, vocab, merges = dict(chunks), list(vocab), []
    for _ in range(num_merges):
        counts: Counter = Counter()
        for ids, n in chunks.items():
            for pair in zip(ids, ids[1:]):
                counts[pair] += n
        # Same rule as llmlab: most frequent, ties to the greater (left bytes, right bytes).
        best = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        new_id = len(vocab)
        vocab.append(vocab[best[0]] + vocab[best[1]])
        merges.append(best)
        merged = {}
        for ids, n in chunks.items():
            out, i = [], 0
            while i < len(ids):
                if ids[i:i + 2] == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            merged[tuple(out)] = n
        chunks = merged
    return merges


def timed(fn, *args):
    """Run fn(*args); return (result, seconds)."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    text = load_text("tinyshakespeare")
    num_merges = VOCAB_SIZE - 256
    print("BPE training benchmark (llmlab.tokenizers.BPETokenizer.train)")
    print(f"hardware: {cpu_name()}, {os.cpu_count()} logical cores "
          f"({len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'} usable), "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"load average before the run (other work on this machine makes timings noisy): "
          f"{load_average()}")
    pieces = pretokenize(text)
    distinct = Counter(pieces)
    print(f"corpus: tinyshakespeare, {len(text):,} characters, {len(text.encode()):,} bytes, "
          f"{len(pieces):,} pre-tokens ({len(distinct):,} distinct)")

    # 1. The incremental trainer (what llmlab ships), best of REPEATS.
    runs = []
    for _ in range(REPEATS):
        tok, seconds = timed(BPETokenizer.train, text, VOCAB_SIZE)
        runs.append(seconds)
    fast = min(runs)
    merges = list(tok.merges)
    print(f"\nincremental BPE to vocab {VOCAB_SIZE} ({num_merges} merges): best of {REPEATS} = "
          f"{fast:.2f} s  (runs: {', '.join(f'{s:.2f}' for s in runs)})")

    # 2. The naive baseline is too slow to run all the way, so time NAIVE_MERGES of its merges at
    # the start, the middle and the end of training, each from the state the earlier merges leave.
    _, prep = timed(lambda: {tuple(c.encode("utf-8")): n for c, n in Counter(pretokenize(text)).items()})
    print("naive recount-every-merge baseline (it already counts each distinct pre-token once, "
          "weighted by frequency):")
    print(f"  pre-tokenize and count: {prep:.2f} s")
    per_merge, same = [], True
    for start in (0, (num_merges - NAIVE_MERGES) // 2, num_merges - NAIVE_MERGES):
        partial = BPETokenizer(merges[:start])
        chunks = {tuple(partial.encode(c)): n for c, n in distinct.items()}
        got, seconds = timed(naive_merges, chunks, list(partial.vocab), NAIVE_MERGES)
        same = same and got == merges[start:start + NAIVE_MERGES]
        per_merge.append(seconds / NAIVE_MERGES)
        print(f"  merges {start + 1}-{start + NAIVE_MERGES}: {seconds:.2f} s = "
              f"{1000 * per_merge[-1]:.1f} ms/merge")
    print(f"  same merges as the incremental trainer in all three windows: {'yes' if same else 'NO'}")
    # Trapezoid rule across start, middle and end: the per-merge cost falls as pre-tokens shrink.
    mean_cost = (per_merge[0] + 2 * per_merge[1] + per_merge[2]) / 4
    naive_total = prep + num_merges * mean_cost
    print(f"  extrapolated to {num_merges} merges: {prep:.2f} s + {num_merges} x {1000 * mean_cost:.1f} ms "
          f"(trapezoid mean of the three windows' ms/merge) = {naive_total:.1f} s")
    print(f"  speed-up of the incremental trainer: {naive_total:.1f} s / {fast:.2f} s = "
          f"{naive_total / fast:.0f}x")

    # 3. Compression: train on the first 90 %, measure on the unseen last 10 %.
    train, val = train_val_split(text, 0.1)
    tok = BPETokenizer.train(train, VOCAB_SIZE)
    for name, part in (("train", train), ("validation", val)):
        ids, seconds = timed(tok.encode, part)
        assert tok.decode(ids) == part, "round trip failed"
        print(f"\ncompression on the {name} text (vocab {VOCAB_SIZE}, trained on the first 90%): "
              f"{len(part.encode()) / len(ids):.2f} bytes/token, {len(part) / len(ids):.2f} characters/token "
              f"({len(ids):,} tokens, encoded in {seconds:.2f} s)", end="")
    print()
    if not same:
        sys.exit("the naive baseline disagrees with the incremental trainer")


if __name__ == "__main__":
    main()
