"""The inner workings of byte-level BPE: learning merges with incremental pair counts, special-token
handling, GPT-2's exact pre-tokenization regex, and ids exposed under another numbering."""
from __future__ import annotations

import functools
import heapq
import re
import unicodedata
from collections import defaultdict

from llmlab._validate_input import check_text


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of pair in ids, scanning left to right without overlaps, by new_id."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class _GreatestFirst(tuple):
    """A (left bytes, right bytes) heap key that sorts backwards, so the heap pops the greatest first."""

    def __lt__(self, other):
        return tuple.__gt__(self, other)


def _learn_merges(chunk_counts: dict[bytes, int], num_merges: int) -> list[tuple[int, int]]:
    """Learn up to num_merges merges from {pre-token bytes: count}; stop early if no pair is left.

    Each step merges the most frequent adjacent pair; ties go to the greatest pair compared as
    (bytes of left token, bytes of right token), as subword-nmt's max(stats, key=lambda p: (stats[p], p)).
    Rather than recounting everything per merge, counts are updated only in the pre-tokens that
    contain the merged pair, and a heap with lazy deletion finds the next best pair.
    """
    chunks = [list(chunk) for chunk in chunk_counts]  # each distinct pre-token as token ids
    freqs = list(chunk_counts.values())
    token_bytes = [bytes([b]) for b in range(256)]
    counts: dict[tuple[int, int], int] = defaultdict(int)  # pair -> occurrences, weighted by freq
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> chunks that may contain it
    for i, (w, f) in enumerate(zip(chunks, freqs)):
        for pair in zip(w, w[1:]):
            counts[pair] += f
            where[pair].add(i)

    def entry(pair):
        return (-counts[pair], _GreatestFirst((token_bytes[pair[0]], token_bytes[pair[1]])), pair)

    heap = [entry(p) for p in counts]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(merges) < num_merges:
        # Outdated entries stay in the heap when a count changes; skip them as they surface.
        while heap and counts.get(heap[0][2]) != -heap[0][0]:
            heapq.heappop(heap)
        if not heap:
            break
        pair = heapq.heappop(heap)[2]
        new_id = 256 + len(merges)
        merges.append(pair)
        token_bytes.append(token_bytes[pair[0]] + token_bytes[pair[1]])
        delta: dict[tuple[int, int], int] = defaultdict(int)
        for i in where.pop(pair):
            old = chunks[i]
            new = _merge(old, pair, new_id)
            if len(new) == len(old):
                continue  # stale index: an earlier merge already used up this chunk's copy of the pair
            for p in zip(old, old[1:]):
                delta[p] -= freqs[i]
            for p in zip(new, new[1:]):
                delta[p] += freqs[i]
                where[p].add(i)
            chunks[i] = new
        for p, d in delta.items():
            if d:
                counts[p] += d
                if counts[p]:
                    heapq.heappush(heap, entry(p))
                else:
                    del counts[p]
    return merges


def _check_special(special_tokens) -> list[str]:
    """Return special_tokens as a list, or raise ValueError unless they are distinct non-empty strings."""
    if isinstance(special_tokens, str):
        raise ValueError(f"special_tokens must be a list of strings, got the string {special_tokens!r}: "
                         f"write special_tokens=[{special_tokens!r}]")
    tokens = list(special_tokens)
    if not all(isinstance(t, str) and t for t in tokens) or len(set(tokens)) != len(tokens):
        raise ValueError(f"special_tokens must be distinct non-empty strings, got {tokens!r}")
    for t in tokens:
        check_text(t, f"the special token {t!r}")
    return tokens


def _combining_marks() -> str:
    """A regex character class body of every combining mark (Unicode categories Mn, Mc, Me)."""
    ranges, start = [], None
    # Planes 0, 1 and 14 hold every combining mark; scanning only them keeps import fast.
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000), 0x10FFFF):
        mark = unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me") and cp != 0x10FFFF
        if mark and start is None:
            start = cp
        elif not mark and start is not None:
            ranges.append(f"{chr(start)}-{chr(cp - 1)}")
            start = None
    return "".join(ranges)


def _special_regex(special_tokens, capture: bool) -> re.Pattern:
    """Regex matching any special token, longest first so one that contains another wins."""
    body = "|".join(re.escape(t) for t in sorted(special_tokens, key=len, reverse=True))
    return re.compile(f"({body})" if capture else body)


# ------------------------------------------------------------------ pre-tokenization patterns

_MARK = "[" + _combining_marks() + "]"  # any combining mark (an accent written on its own)

# GPT-2's pre-tokenization pattern, written for the stdlib `re` module (no `regex` dependency):
# GPT-2's \p{L} (a letter) becomes [^\W\d_] and \p{N} (a number) becomes \d. Tiny differences:
# non-decimal numerals such as '²', '½', 'Ⅻ' count as letters here, and the separators
# U+001C..U+001F count as whitespace. One deliberate change: GPT-2's \p{L}+ cuts a combining
# accent (NFD "e" + U+0301) off its letter; here a letter run keeps its combining marks, so
# NFD and NFC text both split into whole words (and each still round-trips exactly as given).
GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?(?:[^\W\d_]|""" + _MARK
                + r""")+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
# GPT-2's own pre-tokenization regex, character for character (the one Hugging Face's GPT-2
# tokenizer runs). \p{L} and \p{N} need the third-party `regex` module, imported when first used.
GPT2_EXACT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _compile_exact(pattern: str):
    """Compile a pattern written for the `regex` module, or say how to install it."""
    try:
        import regex
    except ImportError:
        raise ImportError("the pre-tokenization pattern 'gpt2-exact' (GPT-2's own regex) needs the "
                          "`regex` package: pip install regex (transformers installs it too)") from None
    return regex.compile(pattern)


PATTERN_NAMES = ("gpt2", "gpt2-exact")  # what BPETokenizer(pattern=...) accepts


def _splitter(pattern: str):
    """The compiled regex of a pre-tokenization pattern name."""
    if not isinstance(pattern, str) or pattern not in PATTERN_NAMES:
        raise ValueError(f"unknown pre-tokenization pattern {pattern!r}; known: {', '.join(PATTERN_NAMES)}")
    return _compiled(pattern)


@functools.cache  # compile each pattern once; GPT-2's own waits until first used (needs `regex`)
def _compiled(pattern: str):
    return re.compile(GPT2_PATTERN) if pattern == "gpt2" else _compile_exact(GPT2_EXACT_PATTERN)


def _check_id_map(id_map, n: int) -> tuple[int, ...]:
    """id_map as a tuple (internal id -> exposed id), or raise unless it lists each of 0..n-1 once."""
    if isinstance(id_map, (str, bytes)) or not hasattr(id_map, "__iter__"):
        raise ValueError(f"id_map must be a list of ids, got {type(id_map).__name__}")
    ids = tuple(id_map)
    if len(ids) != n or not all(type(i) is int for i in ids) or sorted(ids) != list(range(n)):
        raise ValueError(f"id_map must give each of the {n} tokens (256 bytes, then the merges, then "
                         f"the special tokens) its own id from 0 to {n - 1}: a list that holds each "
                         f"of 0..{n - 1} exactly once, got {len(ids)} entries")
    return ids
