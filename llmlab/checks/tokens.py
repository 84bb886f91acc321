"""Checkers for lesson 01 (tokens and embeddings): a character encoder, BPE's best pair, cosine similarity."""
from __future__ import annotations

import math
import random
import re
from collections import Counter

import numpy as np

from llmlab.checks._core import Verdict, call_safely, failed, passed

__all__ = ["check_char_encode", "check_most_frequent_pair", "check_cosine_similarity"]


class _Raised:
    """What a wrapped learner function returns instead of raising a specific exception type."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _catching(fn, exc_type):
    """Wrap fn so that exc_type comes back as a _Raised value (other exceptions still propagate)."""
    def wrapped(*args):
        try:
            return fn(*args)
        except exc_type as exc:
            return _Raised(exc)
    return wrapped


def _show(value, limit: int = 80) -> str:
    """A short repr of a learner's value for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ------------------------------------------------------------------------ character encoder

_CHAR_EX = "char_encode"


def _char_cases():
    """(text, stoi, unk_id) cases: known characters, unseen ones, an empty text, non-sorted ids."""
    abc = {c: i for i, c in enumerate(" abcdefghijklmnopqrstuvwxyz")}
    shuffled = {"h": 3, "i": 0, "!": 1, " ": 2, "?": 4}  # ids not in alphabetical order
    return [
        ("hello world", abc, 27),
        ("hi! hi!", shuffled, 5),
        ("café au lait", abc, 27),  # 'é' is not in the vocabulary
        ("oh, hi!", shuffled, 7),  # 'o', ',' unknown; unk_id is not len(stoi)
        ("", abc, 27),
        _random_char_case(),  # drawn afresh on every check
    ]


def _random_char_case() -> tuple[str, dict, int]:
    """A random vocabulary with shuffled ids, a text with some unseen characters, a random unk_id."""
    pick = random.SystemRandom()
    chars = pick.sample("abcdefghijklmnopqrstuvwxyz .,!?", pick.randint(5, 20))
    ids = pick.sample(range(len(chars)), len(chars))
    stoi = dict(zip(chars, ids))
    text = "".join(pick.choice(chars + ["é", "#", "7"]) for _ in range(pick.randint(5, 40)))
    return text, stoi, len(chars) + pick.randint(0, 5)


def check_char_encode(char_encode) -> Verdict:
    """Check char_encode(text, stoi, unk_id) -> list of ids, one per character, unk_id for unseen ones."""
    if not callable(char_encode):
        return call_safely(_CHAR_EX, char_encode)[1]
    fn = _catching(char_encode, KeyError)
    for text, stoi, unk in _char_cases():
        want = [stoi.get(c, unk) for c in text]
        given = dict(stoi)
        got, problem = call_safely(_CHAR_EX, fn, text, given, unk)
        if problem is not None:
            return problem
        if given != stoi:  # e.g. stoi.setdefault(ch, len(stoi)): the vocabulary grew
            added = sorted(set(given) - set(stoi))
            return failed(_CHAR_EX, "your function changed the vocabulary `stoi` in place"
                          + (f" (it added {added[:5]!r}, e.g. with setdefault)" if added else "")
                          + ": encoding must never grow the vocabulary. Look characters up with "
                            "stoi.get(ch, unk_id), which leaves stoi as it was.")
        if isinstance(got, _Raised):
            return failed(_CHAR_EX, f"char_encode({text!r}, ...) raised KeyError {got.exc}: that "
                                    "character is not in stoi. Look characters up with "
                                    "stoi.get(ch, unk_id), which returns unk_id for a missing key "
                                    "instead of raising.")
        if got is None:
            return failed(_CHAR_EX, "your function returned None: did you forget the `return` statement?")
        if isinstance(got, str) or not hasattr(got, "__len__"):
            return failed(_CHAR_EX, f"char_encode({text!r}, ...) returned {_show(got)}; return a list of "
                                    "ints, one id per character.")
        got = list(got)
        if got and all(isinstance(g, str) for g in got):
            return failed(_CHAR_EX, f"char_encode({text!r}, ...) returned the characters {_show(got)}, not "
                                    "their ids: look each character up in stoi.")
        if len(got) < len(want) and any(c not in stoi for c in text):
            return failed(_CHAR_EX, f"char_encode({text!r}, ...) returned {len(got)} ids for {len(text)} "
                                    "characters: unseen characters must become unk_id, not disappear "
                                    "(the model must know something was there).")
        if len(got) != len(want):
            return failed(_CHAR_EX, f"char_encode({text!r}, ...) returned {len(got)} ids for {len(text)} "
                                    "characters; return exactly one id per character.")
        if got == [stoi.get(c, len(stoi)) for c in text] and got != want:
            return failed(_CHAR_EX, f"for unseen characters you used len(stoi) = {len(stoi)}; use the "
                                    f"unk_id argument (here {unk}), whatever its value.")
        for pos, (c, g, w) in enumerate(zip(text, got, want)):
            if g != w:
                how = "it is in stoi" if c in stoi else "it is not in stoi, so it gets unk_id"
                return failed(_CHAR_EX, f"char_encode({text!r}, ...): character {c!r} at position {pos} "
                                        f"should be {w} ({how}), got {_show(g)}.")
    return passed(_CHAR_EX, "one id per character, and unseen characters become unk_id instead of "
                            "crashing.")


# ------------------------------------------------------------------------------ BPE best pair

_PAIR_EX = "most_frequent_pair"


def _pair_counts(chunks) -> Counter:
    """Adjacent-pair counts inside each chunk (overlapping positions all count)."""
    counts: Counter = Counter()
    for chunk in chunks:
        counts.update(zip(chunk, chunk[1:]))
    return counts


def _best(counts: Counter):
    """The most frequent pair, ties going to the greater pair; None if there is none."""
    return max(counts, key=lambda p: (counts[p], p)) if counts else None


def _pair_cases():
    """Chunk lists where the typical mistakes give different answers from the right one."""
    text = "the cat and the hat ate the bath"
    return [
        [[1, 2, 3, 1, 2]],  # (1, 2) twice: a clear winner
        [[5, 1, 5, 9]],  # three pairs once each: the greatest, (5, 9), wins
        [[1, 2], [3], [1, 2], [3], [1, 2], [3], [9, 9, 9]],  # (2, 3) only appears across chunks
        [list(w.encode("utf-8")) for w in re.findall(r" ?\w+", text)],  # GPT-2-like pre-tokens
        [[104, 105], [105, 104], [120]],  # a tie of two pairs, each in its own chunk
        [[7], [], [8]],  # no chunk has two ids: no pair at all
        _random_chunks(),  # drawn afresh on every check
    ]


def _random_chunks() -> list[list[int]]:
    """A few chunks of random ids from a small range (so pairs repeat), sizes drawn afresh."""
    pick = random.SystemRandom()
    n_ids = pick.randint(3, 8)
    return [[pick.randrange(n_ids) + 40 for _ in range(pick.randint(0, 12))]
            for _ in range(pick.randint(2, 7))]


def _times(n: int) -> str:
    """'1 time', '3 times'."""
    return f"{n} time" if n == 1 else f"{n} times"


def _as_pair(value):
    """value as a (int, int) tuple if it looks like one, else None."""
    try:
        if len(value) == 2 and all(float(v) == int(v) for v in value):
            return (int(value[0]), int(value[1]))
    except (TypeError, ValueError):
        pass
    return None


def _diagnose_pair(chunks, got, want, counts) -> str:
    """A hint aimed at the mistake that explains `got` on these chunks."""
    where = f"on chunks {_show(chunks, 120)}"
    top = counts[want]
    ties = sorted(p for p in counts if counts[p] == top)
    if isinstance(got, (int, np.integer)) and not isinstance(got, bool) and int(got) == top:
        return f"{where} you returned {got}, the count of the best pair; return the pair itself, {want}."
    if isinstance(got, (tuple, list)) and len(got) == 2:
        a, b = got
        if (_as_pair(a) == want and b == top) or (_as_pair(b) == want and a == top):
            return f"{where} you returned {_show(got)}, the pair and its count; return only the pair {want}."
    pair = _as_pair(got) if got is not None else None
    flat = _best(_pair_counts([[i for c in chunks for i in c]]))
    if pair is not None and pair == flat and flat != want:
        return (f"{where} you returned {pair}, which only occurs across a chunk boundary: count pairs "
                "inside each chunk separately (BPE never merges across pre-tokens), e.g. with "
                "zip(chunk, chunk[1:]).")
    if pair is not None and len(ties) > 1 and pair in ties:
        seen = next(p for c in chunks for p in zip(c, c[1:]) if p in ties)
        if pair == min(ties):
            return (f"{where} pairs {ties} each occur {_times(top)}, a tie, and you chose the smallest, "
                    f"{pair}; the rule is the greatest pair, {want} (compare (count, pair) tuples).")
        if pair == seen:
            return (f"{where} pairs {ties} each occur {_times(top)}, a tie, and you kept the first one "
                    f"seen, {pair}; break ties by taking the greatest pair, {want}, so the result does not "
                    "depend on the order of the text.")
        return (f"{where} pairs {ties} each occur {_times(top)}, a tie; the tie rule picks the "
                f"greatest, {want}, but you returned {pair}.")
    if pair is not None and pair not in counts:
        return f"{where} you returned {pair}, which is not an adjacent pair in any chunk; expected {want}."
    if pair is not None:
        return (f"{where} you returned {pair} (it occurs {_times(counts[pair])}), but {want} occurs "
                f"{_times(top)}: count every adjacent pair in every chunk and take the most frequent.")
    return f"{where} expected the pair {want} (a tuple of two ids), got {_show(got)}."


def check_most_frequent_pair(most_frequent_pair) -> Verdict:
    """Check most_frequent_pair(chunks) -> the commonest pair inside chunks (ties: the greatest), or None."""
    for chunks in _pair_cases():
        counts = _pair_counts(chunks)
        want = _best(counts)
        given = [list(c) for c in chunks]
        got, problem = call_safely(_PAIR_EX, most_frequent_pair, given)
        if problem is None and given != chunks:
            return failed(_PAIR_EX, f"on chunks {_show(chunks, 120)} your function changed the chunks "
                                    "in place; only count the pairs, and leave the input as it was.")
        if problem is not None:
            if want is None and "NotImplementedError" not in problem.message:
                detail = problem.message.split(". Read the message")[0].replace("your function", "it")
                return failed(_PAIR_EX, f"on chunks {chunks} (no chunk has two ids, so there is no pair) "
                                        f"{detail}. Return None when there is no pair.")
            return problem
        if want is None:
            if got is not None:
                return failed(_PAIR_EX, f"on chunks {chunks} no chunk has two ids, so there is no pair: "
                                        f"return None, not {_show(got)}.")
            continue
        if got is None:
            return failed(_PAIR_EX, f"on chunks {_show(chunks, 120)} your function returned None, but "
                                    f"{want} occurs {_times(counts[want])}. Did you forget `return`?")
        if _as_pair(got) != want or isinstance(got, str):
            return failed(_PAIR_EX, _diagnose_pair(chunks, got, want, counts))
    return passed(_PAIR_EX, "pairs counted inside each chunk, ties broken by the greatest pair, and "
                            "None when there is nothing to merge.")


# ----------------------------------------------------------------------- cosine similarity

_COS_EX = "cosine_similarity"


def _cos_cases():
    """Vector pairs: equal directions with different lengths, orthogonal, opposite, random."""
    rng = np.random.default_rng(1)
    return [
        ([2.0, 0.0], [5.0, 0.0]),  # same direction, lengths 2 and 5: the answer is 1
        ([3.0, 4.0], [4.0, 3.0]),
        ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
        ([1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]),
        ([1.0, -2.0, 0.5, 4.0], [0.5, 1.0, -3.0, 2.0]),  # sums of entries differ from norms
        (rng.normal(size=16).tolist(), rng.normal(size=16).tolist()),
        _random_pair(),  # a length drawn afresh on every check
    ]


def _random_pair() -> tuple[list[float], list[float]]:
    """Two random vectors of a length (2..64) and scales drawn afresh on every check."""
    rng = np.random.default_rng(random.SystemRandom().randrange(2 ** 32))
    d = int(rng.integers(2, 65))
    return (rng.normal(size=d) * rng.uniform(0.1, 10)).tolist(), (rng.normal(size=d) * 3).tolist()


def _cos_mistakes(a: np.ndarray, b: np.ndarray) -> list[tuple[float, str]]:
    """(value, hint) for each typical wrong formula, computed on a and b."""
    dot, na, nb = float(a @ b), float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = dot / (na * nb)
    out = [
        (dot, "you returned the dot product a · b; divide it by the lengths (norms) of both vectors, "
              "so that only the angle counts, not how long the vectors are."),
        (dot / na, "you divided by the norm of a only; divide by ‖a‖ · ‖b‖."),
        (dot / nb, "you divided by the norm of b only; divide by ‖a‖ · ‖b‖."),
        (dot / (na * nb) ** 2, "you divided by ‖a‖² · ‖b‖²: the squared lengths. Take the square "
                               "root of the sums of squares (np.linalg.norm does it)."),
        (1.0 - cos, "you returned 1 - cosine (the cosine *distance*); return the cosine itself."),
    ]
    if abs(cos) <= 1:
        out.append((math.acos(max(-1.0, min(1.0, cos))),
                    "you returned the angle (arccos); return its cosine, a number between -1 and 1."))
    sa, sb = float(a.sum()), float(b.sum())
    if sa and sb:
        out.append((dot / (sa * sb), "you divided by the sums of the entries; the length of a vector is "
                                     "its norm, sqrt(sum of squares), e.g. np.linalg.norm(a)."))
    sa, sb = float(np.abs(a).sum()), float(np.abs(b).sum())
    out.append((dot / (sa * sb), "you divided by the sums of absolute values (the L1 norm); use the "
                                 "Euclidean norm, sqrt(sum of squares), e.g. np.linalg.norm(a)."))
    return out


def check_cosine_similarity(cosine_similarity) -> Verdict:
    """Check cosine_similarity(a, b) -> float: a·b / (‖a‖‖b‖) for two 1-D NumPy arrays."""
    first_wrong = None  # a generic verdict, used if no case pins down one specific mistake
    for a_list, b_list in _cos_cases():
        a, b = np.array(a_list), np.array(b_list)
        want = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        a_in, b_in = a.copy(), b.copy()
        got, problem = call_safely(_COS_EX, cosine_similarity, a_in, b_in)
        if problem is not None:
            return problem
        shown = f"cosine_similarity({_show(a_list, 50)}, {_show(b_list, 50)})"
        if not (np.array_equal(a_in, a) and np.array_equal(b_in, b)):
            return failed(_COS_EX, f"{shown} changed its input vectors in place (e.g. a /= ...): the "
                                   "caller's vectors must stay as they were. Compute a new array "
                                   "instead, e.g. a_unit = a / np.linalg.norm(a).")
        if got is None:
            return failed(_COS_EX, f"{shown} returned None: did you forget the `return` statement?")
        if isinstance(got, (str, bytes)):
            return failed(_COS_EX, f"{shown} returned the string {_show(got)}; return a number.")
        value = np.asarray(got.detach() if hasattr(got, "detach") else got, dtype=object)
        if value.size != 1:
            return failed(_COS_EX, f"{shown} returned {value.size} numbers (shape {value.shape}); the "
                                   "answer is one number: sum the products a * b (that is a @ b) "
                                   "before dividing.")
        try:
            got = float(value.reshape(()).item())
        except (TypeError, ValueError):
            return failed(_COS_EX, f"{shown} returned {_show(got)}; return a number.")
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        # Several wrong formulas can agree on one case (e.g. for parallel vectors); name a mistake
        # only when exactly one of them explains the answer.
        hints = {hint for wrong, hint in _cos_mistakes(a, b)
                 if math.isclose(got, wrong, rel_tol=1e-6, abs_tol=1e-9)}
        if len(hints) == 1:
            return failed(_COS_EX, f"{shown} should be {want:.4f}, got {got:.4f}: {hints.pop()}")
        if first_wrong is None:
            first_wrong = failed(_COS_EX, f"{shown} should be {want:.4f}, got {got:.4f}. Cosine "
                                          "similarity is a · b / (‖a‖ ‖b‖).")
    if first_wrong is not None:
        return first_wrong
    return passed(_COS_EX, "1 for the same direction, 0 for perpendicular, -1 for opposite, whatever the "
                           "lengths.")
