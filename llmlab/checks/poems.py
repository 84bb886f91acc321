"""Checkers for lesson 10 (your own GPT): UTF-8 bytes, the form mask, the memorisation measure.

Each checker draws fresh random cases on every call (no answer can be memorised), compares the
learner's result with a reference computed here, catches answers that change their input in
place, and when the answer is wrong names the typical mistake it looks like.
"""
from __future__ import annotations

import copy
import random

import torch

from llmlab.poems import FORM, POEM_LEN, form_table, memorised_lines, poem_lines
from ._core import Verdict, call_safely, failed, passed, unchanged

__all__ = ["check_utf8_bytes", "check_form_mask", "check_memorised_share"]


# --- exercise: UTF-8 by hand ---------------------------------------------------------------------

# Code points by how many bytes UTF-8 gives them; the edges of each range are where mistakes show.
_UTF8_RANGES = {1: (0x20, 0x7F), 2: (0x80, 0x7FF), 3: (0x800, 0xFFFF), 4: (0x10000, 0x10FFFF)}
_EDGES = [0x41, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000]
_EXAMPLES = "aZ7éßΩж月床，。€😀𠀋"  # a few every learner recognises, of every length


class _NoEncode(str):
    """A character that refuses .encode(): the exercise is to compute the bytes from ord(ch)."""

    def encode(self, *args, **kwargs):
        raise RuntimeError("this exercise computes the bytes from ord(ch) with the table, "
                           "without ch.encode (use that only to test yourself)")


def _utf8_cases(pick: random.Random) -> list[str]:
    """Characters of every length: the range edges, familiar ones, and random ones."""
    chars = [chr(c) for c in _EDGES] + pick.sample(_EXAMPLES, 6)
    for lo, hi in _UTF8_RANGES.values():
        for _ in range(3):
            c = pick.randint(lo, hi)
            while 0xD800 <= c <= 0xDFFF:  # surrogates are not characters: UTF-8 cannot hold them
                c = pick.randint(lo, hi)
            chars.append(chr(c))
    pick.shuffle(chars)
    return [_NoEncode(c) for c in chars]


def _utf8_hint(ch: str, got: list[int], want: list[int]) -> str:
    """The mistake a wrong byte list for ch looks like."""
    cp = ord(ch)
    if len(got) != len(want):
        edges = {1: "below 0x80", 2: "0x80 to 0x7FF", 3: "0x800 to 0xFFFF", 4: "0x10000 and up"}
        return (f"U+{cp:04X} needs {len(want)} byte(s) but you gave {len(got)}: code points "
                f"{edges[len(want)]} take {len(want)}. Check the limits of your if/elif "
                "(is each one < or <=?).")
    if got[1:] != want[1:] and [b | 0x80 for b in got[1:]] == want[1:]:
        return ("a continuation byte lacks its 0b10 marker: each one is 0x80 + 6 bits of the "
                "code point (0x80 | (cp >> shift) & 0x3F).")
    if got[0] != want[0]:
        n = len(want)
        marker = {2: 0xC0, 3: 0xE0, 4: 0xF0}.get(n, 0)
        if n > 1 and got[0] == (marker + cp) >> (6 * (n - 1)):
            return ("the lead byte is (marker + cp) >> shift: in Python `+` binds more tightly "
                    "than `>>`, so write marker | (cp >> shift), with the parentheses.")
        markers = {2: "0b110xxxxx (0xC0 + the top 5 bits)", 3: "0b1110xxxx (0xE0 + the top 4 bits)",
                   4: "0b11110xxx (0xF0 + the top 3 bits)"}
        if len(want) == 1:
            return f"a character below 0x80 is one byte, its code point itself ({cp})."
        return (f"the lead byte of a {len(want)}-byte character is {markers[len(want)]}; you "
                f"gave {got[0]:#04x}, it should be {want[0]:#04x}. The top bits are cp >> "
                f"{6 * (len(want) - 1)}.")
    return ("the bytes carry the code point's bits in the wrong places: the lead byte holds the "
            "highest bits, then each continuation byte the next 6, lowest last.")


def check_utf8_bytes(utf8_fn) -> Verdict:
    """Check utf8_bytes(ch) -> the list of byte values (ints 0-255) of one character in UTF-8."""
    ex = "utf8_bytes(ch)"
    for ch in _utf8_cases(random.SystemRandom()):
        want = list(str(ch).encode("utf-8"))
        result, verdict = call_safely(ex, utf8_fn, ch)
        if verdict is not None:
            return verdict
        if result is None:
            return failed(ex, "you returned None. Did you forget a `return`?")
        if isinstance(result, (str, int)) or not hasattr(result, "__iter__"):
            return failed(ex, f"for {ch!r} return a list of byte values such as {want}, got "
                              f"{type(result).__name__} {result!r}.")
        got = list(result)
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in got):
            return failed(ex, f"for {ch!r} return ints (byte values 0-255), got {got!r}.")
        if any(not 0 <= b <= 255 for b in got):
            return failed(ex, f"for {ch!r} (U+{ord(ch):04X}) you returned {got}: a byte holds 0 "
                              "to 255, so a value is too big. Keep 6 bits per continuation byte "
                              "with & 0x3F, and only the top bits in the lead byte.")
        if got != want:
            return failed(ex, f"for {ch!r} (U+{ord(ch):04X}) UTF-8 gives {want}, you returned "
                              f"{got}: {_utf8_hint(ch, got, want)}")
    return passed(ex, "right for characters of 1, 2, 3 and 4 bytes, at the edges of each range. "
                      "Every Chinese character here is 3 bytes: byte-level BPE starts from them.")


# --- exercise: the form mask ---------------------------------------------------------------------

# The form's marks, other marks, ASCII look-alikes, kana and a full-width letter (not ideographs),
# and ideographs outside U+4E00-U+9FFF (Extension A: 㑹 㒿, Extension B: 𠀋), which count as CJK.
_OTHERS = list("，。？！、；：,.?!;: \nabcXYZ019のアＡ") + ["㑹", "㒿", "𠀋"]


def _mask_cases(pick: random.Random):
    """(vocab, positions): a shuffled vocabulary with CJK, the form's marks and look-alikes."""
    cjk = [chr(pick.randint(0x4E00, 0x9FFF)) for _ in range(pick.randint(8, 20))]
    vocab = list(dict.fromkeys(cjk + _OTHERS))  # distinct tokens
    pick.shuffle(vocab)
    positions = [5, 11, 17, 23, POEM_LEN, 0, 6] + pick.sample(range(POEM_LEN + 1), 6)
    return vocab, positions


def _reference_mask(vocab: list[str], position: int) -> torch.Tensor:
    """(V,) bool: the tokens the form allows at position (POEM_LEN: only the poem's end, "\\n")."""
    return form_table(vocab)[position]


def _mask_hint(vocab, position, got: torch.Tensor, want: torch.Tensor) -> str:
    """What a wrong mask at position looks like."""
    allowed = [vocab[i] for i in range(len(vocab)) if got[i]]
    extra = [vocab[i] for i in range(len(vocab)) if got[i] and not want[i]]
    missing = [vocab[i] for i in range(len(vocab)) if want[i] and not got[i]]
    slot = (FORM + "\n")[position]
    near = [position + d for d in (-1, 1) if 0 <= position + d <= POEM_LEN
            and torch.equal(got, _reference_mask(vocab, position + d))]
    if near:
        return (f"your mask is the one for a neighbouring position ({' or '.join(map(str, near))}): "
                f"positions count from 0, and FORM[{position}] is {slot!r}. Use "
                "(FORM + '\\n')[position].")
    if position == POEM_LEN:
        return (f"position {POEM_LEN} is just after the last '。': the poem must end there, so "
                f"only '\\n' is allowed; you allowed {allowed}.")
    if "\n" in extra:
        return "you allowed '\\n' inside the poem: it may only come at position 24, the end."
    if slot == "H" and extra:
        return (f"a character slot allows CJK characters only (use is_cjk), but you also allowed "
                f"{extra[:4]}.")
    if slot == "H":
        return (f"every CJK character is allowed in a character slot; you left out {missing[:4]} "
                "(ideographs outside U+4E00-U+9FFF count too: use is_cjk).")
    ascii_twin = {"，": ",", "。": "."}[slot]
    if ascii_twin in extra:
        return (f"the form's {slot!r} is the full-width Chinese mark (U+{ord(slot):04X}), not "
                f"the ASCII {ascii_twin!r}: compare tokens with the slot itself.")
    return (f"at position {position} the form needs {slot!r} and nothing else; you allowed "
            f"{allowed[:5]}.")


def check_form_mask(mask_fn) -> Verdict:
    """Check form_mask(vocab, position) -> (V,) bool tensor of the tokens the form allows there."""
    ex = "form_mask(vocab, position)"
    vocab, positions = _mask_cases(random.SystemRandom())
    for position in positions:
        want = _reference_mask(vocab, position)
        before = list(vocab)
        given = list(vocab)
        result, verdict = call_safely(ex, mask_fn, given, position)
        if verdict is not None and position == POEM_LEN and "IndexError" in verdict.message:
            return failed(ex, f"position {POEM_LEN} raised IndexError: FORM has slots 0 to "
                              f"{POEM_LEN - 1}, and position {POEM_LEN}, just after the last '。', "
                              "is the poem's end, where only '\\n' is allowed. Use "
                              "(FORM + '\\n')[position].")
        if verdict is not None:
            return verdict
        if (verdict := unchanged(ex, {"vocab": before}, {"vocab": given})) is not None:
            return verdict
        if result is None:
            return failed(ex, "you returned None. Did you forget a `return`?")
        if not isinstance(result, torch.Tensor):
            return failed(ex, f"return a torch tensor of bools, got {type(result).__name__}: "
                              "torch.tensor([... for token in vocab]) makes one.")
        if result.shape != (len(vocab),):
            return failed(ex, f"the mask needs one entry per token, shape ({len(vocab)},); got "
                              f"{tuple(result.shape)}.")
        if result.dtype != torch.bool:
            return failed(ex, f"the mask has dtype {result.dtype}: return bools (True = allowed), "
                              "which masked_fill and ~ need.")
        if not torch.equal(result, want):
            return failed(ex, f"with vocab {vocab} at position {position}: "
                              f"{_mask_hint(vocab, position, result, want)}")
    return passed(ex, "right at every position tried, the poem's end included, with look-alike "
                      "ASCII punctuation in the vocabulary.")


# --- exercise: how much is memorised -----------------------------------------------------------

def _memo_cases(pick: random.Random, training_poems: list[str]):
    """(poems, training) pairs whose share tells the usual mistakes apart."""
    train = pick.sample(training_poems, 40)
    lines = [line for p in train for line in poem_lines(p)]
    others = [p for p in training_poems if p not in train]
    cases = []
    for _ in range(3):
        poems = []
        for _ in range(pick.randint(4, 9)):
            # Some lines copied from training, the rest from poems it has not seen.
            fresh = poem_lines(pick.choice(others))
            chosen = [pick.choice(lines) if pick.random() < 0.4 else fresh[i] for i in range(4)]
            poems.append(f"{chosen[0]}，{chosen[1]}。{chosen[2]}，{chosen[3]}。")
        copied = pick.choice(train)
        poems += [copied, copied]  # copied whole, twice: every line counts each time it is written
        unseen = poem_lines(others.pop(pick.randrange(len(others))))
        poems.append(f"{unseen[0]}，{unseen[1]}。{unseen[2]}，{unseen[3]}。")  # nothing copied
        pick.shuffle(poems)
        # A 7-character training line that ends with an unseen generated line: not a match.
        long_line = "春风" + unseen[0]
        cases.append((poems, train + [f"{long_line}，{long_line}。"]))
    return cases


def check_memorised_share(share_fn, training_poems=None) -> Verdict:
    """Check memorised_share(poems, training_poems) -> share of lines found as a training line."""
    ex = "memorised_share(poems, training_poems)"
    if training_poems is None:
        from llmlab.poems import load_quatrains
        training_poems = load_quatrains()
    pick = random.SystemRandom()
    for poems, train in _memo_cases(pick, list(training_poems)):
        want = memorised_lines(poems, train)
        originals = {"poems": copy.copy(poems), "training_poems": copy.copy(train)}
        given_p, given_t = list(poems), list(train)
        result, verdict = call_safely(ex, share_fn, given_p, given_t)
        if verdict is not None:
            return verdict
        verdict = unchanged(ex, originals, {"poems": given_p, "training_poems": given_t})
        if verdict is not None:
            return verdict
        if result is None:
            return failed(ex, "you returned None. Did you forget a `return`?")
        if isinstance(result, torch.Tensor) and result.numel() == 1:
            result = result.item()
        if isinstance(result, bool) or not isinstance(result, (int, float)):
            return failed(ex, f"return a share, a number from 0 to 1; got {result!r}.")
        if abs(result - want) < 1e-6:  # float32 tensors and rounding in the last digits are fine
            continue
        lines = [line for p in poems for line in poem_lines(p)]
        known = {line for p in train for line in poem_lines(p)}
        text = "".join(train)
        hints = [
            (100 * want, "you returned a percentage: return the share (0 to 1), not times 100"),
            (sum(p in set(train) for p in poems) / len(poems),
             "you counted whole poems copied; the measure counts lines, each poem has four"),
            (len(set(lines) & known) / len(set(lines)),
             "you counted each distinct line once (a set of generated lines); count every line "
             "the model wrote, a line written twice counts twice"),
            (sum(line in text for line in lines) / len(lines),
             "you searched the training text for each line (`line in text`), which also finds it "
             "inside a longer line; compare with whole training lines (poem_lines, then a set)"),
            (sum(line in known for line in lines) / len(poems),
             "you divided by the number of poems; divide by the number of lines"),
            (sum(line in known for line in lines),
             "you returned the number of copied lines; divide it by the number of lines"),
        ]
        for value, hint in hints:
            if abs(result - value) < 1e-6:
                return failed(ex, f"for these {len(poems)} poems the share is {want:.3f}, you "
                                  f"returned {result:.3f}: {hint}.")
        if any(abs(result - round(want, d)) < 1e-9 for d in (0, 1, 2, 3)):
            return failed(ex, f"for these {len(poems)} poems the share is {want!r}, you returned "
                              f"{result!r}: do not round, return the share itself.")
        return failed(ex, f"for these {len(poems)} poems ({len(lines)} lines) the share is "
                          f"{want:.3f}, you returned {result:.3f}. Split every poem into its lines "
                          "(poem_lines), collect the training lines in a set, and count the "
                          "generated lines found in it.")
    return passed(ex, "right, with repeated poems, a copied poem and a line hidden inside a "
                      "longer one.")
