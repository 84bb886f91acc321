"""Lesson 08's translation task: spelled-out English dates -> ISO dates, for an encoder-decoder.

    the fifth of December, 2026  ->  2026-12-05
    5th Dec 2026                 ->  2026-12-05

It is a small stand-in for machine translation with the same difficulties: the source has many
surface forms (FORMATS) and a variable length, and the target reorders it (the year comes last
in the source but first in the target), so the decoder must attend to different source positions
as it writes. Everything is generated here from a seed, character by character (CharVocab).

The splits hold out whole (month, day) pairs, not dates: if 5 December is a test pair, no training
example is 5 December in any year or format. The model has seen "fifth" and "December", just never
together, so test accuracy measures generalisation rather than recall.
"""
from __future__ import annotations

import calendar
import datetime
import functools
import itertools
import random
import string
from types import MappingProxyType

from ._validate_input import as_id_list, as_int, check_text

__all__ = ["PAD", "BOS", "EOS", "SPECIALS", "SPLITS", "MONTHS", "FORMATS", "FIRST_YEAR",
           "LAST_YEAR", "MAX_SOURCE_LEN", "spell_date", "iso_date", "split_of", "date_pairs",
           "CharVocab", "source_vocab", "target_vocab"]

PAD, BOS, EOS = 0, 1, 2  # the same ids in both vocabularies, so one model config serves both
SPECIALS = ("<pad>", "<s>", "</s>")
SPLITS = ("train", "val", "test")
FIRST_YEAR, LAST_YEAR = 1900, 2099

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_UNITS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
_TEENS = ("tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
          "seventeenth", "eighteenth", "nineteenth")
_TENS = ("twenty", "thirty")

# Every source format as a template. Fields: {nth} "fifth", {d} "5", {dth} "5th", {Month}
# "December", {Mon} "Dec", {Mon_dot} "Dec." (but "May": it is not shortened), {month}
# "december", {y} "2026". None is purely numeric: 05/12/2026 is 5 December in the UK and
# May 12 in the US, and no model can learn a mapping that the source does not determine.
_TEMPLATES = MappingProxyType({
    "the_nth_of_month": "the {nth} of {Month}, {y}",
    "month_d_y": "{Month} {d}, {y}",
    "month_dth_y": "{Month} {dth}, {y}",
    "d_month_y": "{d} {Month} {y}",
    "dth_mon_y": "{dth} {Mon} {y}",
    "mon_dot_d_y": "{Mon_dot} {d}, {y}",
    "nth_of_month_y": "{nth} of {Month} {y}",
    "month_the_nth_y": "{Month} the {nth}, {y}",
    "lower_the_dth_of_month_y": "the {dth} of {month} {y}",
    "lower_month_nth_y": "{month} {nth} {y}",
})
FORMATS: tuple[str, ...] = tuple(_TEMPLATES)


def _ordinal_word(day: int) -> str:
    """The day 1..31 as an English ordinal word: 'first', 'twelfth', 'twenty-first', 'thirtieth'."""
    if day < 10:
        return _UNITS[day - 1]
    if day < 20:
        return _TEENS[day - 10]
    tens, unit = _TENS[day // 10 - 2], day % 10
    # A round ten drops its 'y' for 'ieth' (twenty -> twentieth); otherwise the unit is the ordinal.
    return tens[:-1] + "ieth" if unit == 0 else f"{tens}-{_UNITS[unit - 1]}"


def _ordinal_suffix(day: int) -> str:
    """The suffix of the day as a numeral: 'st' for 1 and 21, 'th' for 11, 12, 13, 'nd', 'rd'..."""
    if 11 <= day % 100 <= 13:  # eleventh, twelfth, thirteenth, though they end in 1, 2, 3
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _check_date(d) -> datetime.date:
    """Return d if it is a datetime.date; raise a TypeError naming the fix otherwise."""
    if not isinstance(d, datetime.date):
        raise TypeError(f"expected a datetime.date, got {type(d).__name__} ({d!r}); "
                        "build one with datetime.date(2026, 12, 5)")
    return d


def spell_date(d: datetime.date, fmt: str) -> str:
    """The date d written in English in format fmt (one of FORMATS)."""
    d = _check_date(d)
    if not isinstance(fmt, str) or fmt not in _TEMPLATES:
        raise ValueError(f"unknown date format {fmt!r}: use one of {list(FORMATS)}")
    month = MONTHS[d.month - 1]
    return _TEMPLATES[fmt].format(
        nth=_ordinal_word(d.day), d=d.day, dth=f"{d.day}{_ordinal_suffix(d.day)}", Month=month,
        Mon=month[:3], Mon_dot=month if month == "May" else month[:3] + ".",
        month=month.lower(), y=d.year)


def iso_date(d: datetime.date) -> str:
    """The date d as an ISO 8601 string, 'YYYY-MM-DD'."""
    d = _check_date(d)
    # Not d.isoformat(): on a datetime.datetime (a subclass of date) it would append the time.
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _all_month_days() -> list[tuple[int, int]]:
    """Every (month, day) of the calendar, 29 February included: 366 pairs in calendar order."""
    # 2000 is a leap year, so its February has the 29th.
    return [(m, d) for m in range(1, 13) for d in range(1, calendar.monthrange(2000, m)[1] + 1)]


@functools.lru_cache(maxsize=None)
def _split_table() -> MappingProxyType:
    """The fixed partition {(month, day): split}: 10 % test, 10 % val, the rest (80 %) train."""
    pairs = _all_month_days()
    # A fixed seed, independent of date_pairs's seed: every run and every caller must agree on
    # which pairs are held out, or a "test" pair could leak into someone's training data.
    random.Random(2026).shuffle(pairs)
    n_held = round(0.1 * len(pairs))
    return MappingProxyType({p: "test" if k < n_held else "val" if k < 2 * n_held else "train"
                             for k, p in enumerate(pairs)})


def split_of(month: int, day: int) -> str:
    """Which split ("train", "val" or "test") the day-month pair belongs to."""
    month = as_int(month, "month", 1, 12)
    day = as_int(day, "day", 1, 31)
    if (month, day) not in _split_table():
        raise ValueError(f"there is no {day} {MONTHS[month - 1]}: that month has at most "
                         f"{calendar.monthrange(2000, month)[1]} days")
    return _split_table()[month, day]


def date_pairs(split: str, n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n (source, target) pairs of the split, deterministic for a given (split, n, seed)."""
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {list(SPLITS)}")
    n = as_int(n, "n (how many pairs)", 1)
    seed = as_int(seed, "seed", 0)
    # A str seed is hashed with SHA-512 by random.Random, so it repeats across processes (unlike
    # hash()), and naming the split in it gives the three splits different streams for one seed.
    rng = random.Random(f"date_pairs/{split}/{seed}")
    # The split's (month, day) pairs in a leap year, and in a common one (no 29 February):
    # picking from the year's list keeps every date valid.
    leap = [p for p in _all_month_days() if _split_table()[p] == split]
    common = [p for p in leap if p != (2, 29)]
    out = []
    for _ in range(n):
        year = rng.randint(FIRST_YEAR, LAST_YEAR)
        d = datetime.date(year, *rng.choice(leap if calendar.isleap(year) else common))
        out.append((spell_date(d, rng.choice(FORMATS)), iso_date(d)))
    return out


def _describe(chars: str) -> str:
    """The characters for a message, runs of letters or digits shortened: 'space , 0-9 a-e'."""
    words = []
    # Consecutive code points share ord(c) - position, so groupby cuts chars into runs.
    for _, group in itertools.groupby(enumerate(chars), key=lambda ic: ord(ic[1]) - ic[0]):
        run = "".join(c for _, c in group)
        # Only letters and digits: a shortened ",-." would read as the characters themselves.
        words += [f"{run[0]}-{run[-1]}"] if len(run) >= 3 and run.isalnum() else list(run)
    return " ".join("space" if w == " " else w for w in words)


class CharVocab:
    """Characters <-> ids for one side of the task, ids 0..2 being <pad>, <s>, </s>."""

    def __init__(self, chars: str, name: str = "text"):
        chars = check_text(chars, "chars")
        dupes = sorted({c for c in chars if chars.count(c) > 1})
        if not chars or dupes:
            raise ValueError(f"chars must list each allowed character once, got {chars!r}"
                             + (f" (repeated: {', '.join(map(repr, dupes))})" if dupes else "")
                             + "; pass e.g. ''.join(sorted(set(text)))")
        self.name = name  # for messages: "the source is empty"
        self.chars = chars  # the ordinary characters, ids 3, 4, ... in order
        self.tokens: tuple[str, ...] = SPECIALS + tuple(chars)
        self._ids = {c: i for i, c in enumerate(chars, start=len(SPECIALS))}

    def __len__(self) -> int:
        """How many ids there are: the three specials and the characters."""
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} tokens: {' '.join(SPECIALS)} {_describe(self.chars)})"

    def encode(self, text: str, eos: bool = True) -> list[int]:
        """The ids of text's characters, then EOS if eos (where the decoder learns to stop)."""
        text = check_text(text, f"the {self.name}")
        if not text:
            raise ValueError(f"the {self.name} is empty: there is nothing to encode; "
                             "pass at least one character")
        unknown = list(dict.fromkeys(c for c in text if c not in self._ids))  # once each, in order
        if unknown:
            names = ", ".join(map(repr, unknown[:-1])) + " and " + repr(unknown[-1]) \
                if len(unknown) > 1 else repr(unknown[0])
            raise ValueError(f"{names} {'are' if len(unknown) > 1 else 'is'} not in this "
                             f"vocabulary; it has only: {_describe(self.chars)}")
        return [self._ids[c] for c in text] + ([EOS] if eos else [])

    def _check_id(self, i: int) -> int:
        """Return i if it is an id of this vocabulary; raise naming it and the size otherwise."""
        if not 0 <= i < len(self):
            raise ValueError(f"id {i} is not in this vocabulary of {len(self)} tokens (ids 0.."
                             f"{len(self) - 1}): were these ids made with another vocabulary?")
        return i

    def decode(self, ids) -> str:
        """The text of ids (a list or 1-D tensor): stops at the first EOS, skips PAD and BOS."""
        ids = [self._check_id(i) for i in as_id_list(ids, "ids")]
        if EOS in ids:  # whatever a decoder writes after </s> is not part of its answer
            ids = ids[:ids.index(EOS)]
        return "".join(self.tokens[i] for i in ids if i not in (PAD, BOS))

    def token(self, i: int) -> str:
        """The display string of one id: '<pad>', '<s>', '</s>' or its character."""
        return self.tokens[self._check_id(as_int(i, "id"))]


def _every_spelling() -> list[str]:
    """Every source string of the year 2000 (every year from 1000 to 9999 spells as long)."""
    return [spell_date(datetime.date(2000, m, d), f) for m, d in _all_month_days() for f in FORMATS]


# Exhaustive over every (month, day) and format: the longest source, without the EOS.
MAX_SOURCE_LEN: int = max(map(len, _every_spelling()))
# Every character a source can hold, sorted; the digits are added so any year's digits are in.
_SOURCE_CHARS = "".join(sorted(set("".join(_every_spelling())) | set(string.digits)))


def source_vocab() -> CharVocab:
    """The vocabulary of the spelled-out dates: every character any of FORMATS can write."""
    return CharVocab(_SOURCE_CHARS, name="source")


def target_vocab() -> CharVocab:
    """The vocabulary of the ISO dates: the ten digits and the hyphen."""
    return CharVocab(string.digits + "-", name="target")
