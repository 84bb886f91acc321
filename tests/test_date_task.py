"""Tests for llmlab.date_task: spelled-out dates, held-out splits, the pairs and the vocabularies."""
import calendar
import datetime
import os
import random
import re
import subprocess
import sys
from collections import Counter

import pytest
import torch

from llmlab.date_task import (BOS, EOS, FORMATS, MAX_SOURCE_LEN, PAD, SPECIALS, CharVocab,
                              date_pairs, iso_date, source_vocab, spell_date, split_of,
                              target_vocab)

D = datetime.date

# An independent parser, written from the English rather than from the module: if spell_date
# writes anything but the intended form, a pattern below fails to match or reads another date.
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]
ABBREVIATIONS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DAY_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
             "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
             "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty-first",
             "twenty-second", "twenty-third", "twenty-fourth", "twenty-fifth", "twenty-sixth",
             "twenty-seventh", "twenty-eighth", "twenty-ninth", "thirtieth", "thirty-first"]

WORD = r"(?P<word>[a-z-]+)"
NUM = r"(?P<num>[1-9][0-9]?)"
NUM_TH = r"(?P<num>[1-9][0-9]?)(?P<suffix>st|nd|rd|th)"
MONTH = r"(?P<month>[A-Z][a-z]+)"
ABBR = r"(?P<abbr>[A-Z][a-z]{2})"
ABBR_DOT = r"(?:(?P<abbr>[A-Z][a-z]{2})\.|(?P<may>May))"  # "May" is not shortened, so no dot
LOWER = r"(?P<lower>[a-z]+)"
YEAR = r"(?P<year>[0-9]{4})"
PATTERNS = {
    "the_nth_of_month": f"the {WORD} of {MONTH}, {YEAR}",
    "month_d_y": f"{MONTH} {NUM}, {YEAR}",
    "month_dth_y": f"{MONTH} {NUM_TH}, {YEAR}",
    "d_month_y": f"{NUM} {MONTH} {YEAR}",
    "dth_mon_y": f"{NUM_TH} {ABBR} {YEAR}",
    "mon_dot_d_y": f"{ABBR_DOT} {NUM}, {YEAR}",
    "nth_of_month_y": f"{WORD} of {MONTH} {YEAR}",
    "month_the_nth_y": f"{MONTH} the {WORD}, {YEAR}",
    "lower_the_dth_of_month_y": f"the {NUM_TH} of {LOWER} {YEAR}",
    "lower_month_nth_y": f"{LOWER} {WORD} {YEAR}",
}


def english_suffix(day):
    return {1: "st", 21: "st", 31: "st", 2: "nd", 22: "nd", 3: "rd", 23: "rd"}.get(day, "th")


def parse(source, fmt):
    """The date that source spells in format fmt, or None if it is not that format."""
    m = re.fullmatch(PATTERNS[fmt], source)
    if m is None:
        return None
    g = {k: v for k, v in m.groupdict().items() if v is not None}
    if "word" in g:
        day = DAY_WORDS.index(g["word"]) + 1 if g["word"] in DAY_WORDS else None
    else:
        day = int(g["num"])
        if "suffix" in g and g["suffix"] != english_suffix(day):
            return None
    if "may" in g:
        g["abbr"] = "May"
    names = {"month": MONTH_NAMES, "abbr": ABBREVIATIONS, "lower": [n.lower() for n in MONTH_NAMES]}
    key = next(k for k in names if k in g)
    if day is None or g[key] not in names[key]:
        return None
    try:
        return D(int(g["year"]), names[key].index(g[key]) + 1, day)
    except ValueError:  # e.g. 31 April
        return None


def parse_any(source):
    """{format: date} for every format that reads source as a date."""
    return {f: d for f in PATTERNS if (d := parse(source, f)) is not None}


def all_days(year):
    day, out = D(year, 1, 1), []
    while day.year == year:
        out.append(day)
        day += datetime.timedelta(days=1)
    return out


# ---- spelling -------------------------------------------------------------------------------

def test_the_formats_are_the_ones_the_parser_knows():
    assert len(FORMATS) >= 8 and len(set(FORMATS)) == len(FORMATS)
    assert set(FORMATS) == set(PATTERNS)


def test_every_format_of_the_fifth_of_december():
    expected = {
        "the_nth_of_month": "the fifth of December, 2026",
        "month_d_y": "December 5, 2026",
        "month_dth_y": "December 5th, 2026",
        "d_month_y": "5 December 2026",
        "dth_mon_y": "5th Dec 2026",
        "mon_dot_d_y": "Dec. 5, 2026",
        "nth_of_month_y": "fifth of December 2026",
        "month_the_nth_y": "December the fifth, 2026",
        "lower_the_dth_of_month_y": "the 5th of december 2026",
        "lower_month_nth_y": "december fifth 2026",
    }
    assert {f: spell_date(D(2026, 12, 5), f) for f in FORMATS} == expected


@pytest.mark.parametrize("date, fmt, expected", [
    (D(1900, 1, 1), "the_nth_of_month", "the first of January, 1900"),
    (D(1900, 1, 1), "dth_mon_y", "1st Jan 1900"),
    (D(1900, 1, 1), "mon_dot_d_y", "Jan. 1, 1900"),
    (D(1900, 1, 1), "lower_month_nth_y", "january first 1900"),
    (D(2000, 2, 22), "month_dth_y", "February 22nd, 2000"),
    (D(2000, 2, 22), "the_nth_of_month", "the twenty-second of February, 2000"),
    (D(2000, 2, 22), "dth_mon_y", "22nd Feb 2000"),
    (D(2024, 2, 29), "d_month_y", "29 February 2024"),
    (D(2024, 2, 29), "nth_of_month_y", "twenty-ninth of February 2024"),
    (D(2024, 2, 29), "lower_the_dth_of_month_y", "the 29th of february 2024"),
    (D(2099, 8, 31), "month_the_nth_y", "August the thirty-first, 2099"),
    (D(2099, 8, 31), "dth_mon_y", "31st Aug 2099"),
    (D(2099, 8, 31), "month_d_y", "August 31, 2099"),
    (D(2010, 3, 2), "dth_mon_y", "2nd Mar 2010"),
    (D(2010, 3, 3), "month_dth_y", "March 3rd, 2010"),
    (D(2010, 3, 4), "dth_mon_y", "4th Mar 2010"),
    (D(2010, 3, 11), "dth_mon_y", "11th Mar 2010"),
    (D(2010, 3, 12), "month_dth_y", "March 12th, 2010"),
    (D(2010, 3, 13), "lower_the_dth_of_month_y", "the 13th of march 2010"),
    (D(2010, 3, 21), "dth_mon_y", "21st Mar 2010"),
    (D(2010, 3, 23), "month_dth_y", "March 23rd, 2010"),
    (D(2010, 3, 30), "dth_mon_y", "30th Mar 2010"),
    (D(2010, 3, 11), "the_nth_of_month", "the eleventh of March, 2010"),
    (D(2010, 3, 12), "nth_of_month_y", "twelfth of March 2010"),
    (D(2010, 3, 13), "lower_month_nth_y", "march thirteenth 2010"),
    (D(2010, 3, 20), "month_the_nth_y", "March the twentieth, 2010"),
    (D(2010, 3, 30), "the_nth_of_month", "the thirtieth of March, 2010"),
    (D(2010, 3, 23), "nth_of_month_y", "twenty-third of March 2010"),
    (D(1999, 9, 9), "dth_mon_y", "9th Sep 1999"),
    (D(1999, 9, 9), "mon_dot_d_y", "Sep. 9, 1999"),
    (D(1999, 5, 17), "mon_dot_d_y", "May 17, 1999"),
    (D(1999, 6, 17), "mon_dot_d_y", "Jun. 17, 1999"),
])
def test_spellings_written_by_hand(date, fmt, expected):
    assert spell_date(date, fmt) == expected


def test_iso_date():
    assert iso_date(D(2026, 12, 5)) == "2026-12-05"
    assert iso_date(D(1900, 1, 1)) == "1900-01-01"
    assert iso_date(datetime.datetime(2099, 8, 31, 13, 45)) == "2099-08-31"  # the date part only


def test_every_day_and_format_reads_back_as_that_date_and_no_other():
    days = all_days(2000) + all_days(1900)  # a leap year and a common one (1900 is not leap)
    rng = random.Random(0)
    days += [D(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73049)) for _ in range(500)]
    for d in days:
        spellings = {f: spell_date(d, f) for f in FORMATS}
        for fmt, source in spellings.items():
            assert parse(source, fmt) == d, (fmt, source)
            # Unambiguous: whichever format reads it, a source means one date.
            assert set(parse_any(source).values()) == {d}, source
        assert len(set(spellings.values())) >= len(FORMATS) - (d.month == 5), spellings


def test_max_source_len_is_the_longest_spelling():
    lengths = [len(spell_date(d, f)) for d in all_days(2000) for f in FORMATS]
    assert MAX_SOURCE_LEN == max(lengths)
    assert len(spell_date(D(2026, 9, 27), "the_nth_of_month")) == MAX_SOURCE_LEN == 37
    # The year never changes the length: all the task's years have four digits.
    assert {len(spell_date(D(y, 9, 27), "the_nth_of_month")) for y in (1900, 1999, 2099)} == {37}


def test_spelling_rejects_bad_input():
    with pytest.raises(TypeError, match="datetime.date"):
        spell_date("2026-12-05", "month_d_y")
    with pytest.raises(TypeError, match="datetime.date"):
        iso_date((2026, 12, 5))
    with pytest.raises(ValueError, match="unknown date format 'iso'.*month_d_y"):
        spell_date(D(2026, 12, 5), "iso")
    with pytest.raises(ValueError, match="unknown date format"):
        spell_date(D(2026, 12, 5), ["month_d_y"])


# ---- splits ---------------------------------------------------------------------------------

def test_the_split_partitions_the_366_day_month_pairs():
    pairs = [(d.month, d.day) for d in all_days(2000)]
    splits = Counter(split_of(m, d) for m, d in pairs)
    assert len(pairs) == 366 and set(splits) == {"train", "val", "test"}
    assert 30 <= splits["test"] <= 44 and 30 <= splits["val"] <= 44
    assert splits["train"] == 366 - splits["test"] - splits["val"]
    # A test pair is a new combination of known parts: every day and month occurs in training.
    train = [p for p in pairs if split_of(*p) == "train"]
    assert {d for _, d in train} == set(range(1, 32)) and {m for m, _ in train} == set(range(1, 13))


def test_split_of_rejects_dates_that_do_not_exist():
    assert split_of(2, 29) in ("train", "val", "test")
    for month, day, words in [(2, 30, "no 30 February.*at most 29"), (4, 31, "no 31 April"),
                              (13, 1, "month"), (0, 1, "month"), (1, 0, "day"), ("1", 1, "month")]:
        with pytest.raises(ValueError, match=words):
            split_of(month, day)


# ---- pairs ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples():
    return {"train": date_pairs("train", 20000), "val": date_pairs("val", 4000),
            "test": date_pairs("test", 4000)}


def test_date_pairs_repeat_and_vary():
    assert date_pairs("train", 50, seed=3) == date_pairs("train", 50, seed=3)
    assert date_pairs("train", 50, seed=3) != date_pairs("train", 50, seed=4)
    assert date_pairs("train", 50) == date_pairs("train", 50, seed=0)
    # The splits draw from different streams, not one stream filtered: even their years differ.
    years = {split: [t[:4] for _, t in date_pairs(split, 50, seed=3)] for split in ("val", "test")}
    assert years["val"] != years["test"]
    assert date_pairs("train", 10, seed=3) == date_pairs("train", 50, seed=3)[:10]
    assert len(date_pairs("test", 1)) == 1


@pytest.mark.slow  # two fresh interpreters import torch (through llmlab)
def test_date_pairs_repeat_across_processes():
    # Python salts hash() of a str per process; a seed derived from it would differ between runs.
    code = "from llmlab.date_task import date_pairs; print(date_pairs('test', 20, seed=7))"
    runs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": salt}) for salt in ("1", "2")]
    outs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outs == [f"{date_pairs('test', 20, seed=7)}\n"] * 2


def test_pairs_are_a_source_and_its_iso_date(samples):
    src_vocab, tgt_vocab = source_vocab(), target_vocab()
    for pairs in samples.values():
        for source, target in pairs:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", target), target
            assert set(parse_any(source).values()) == {D.fromisoformat(target)}, (source, target)
            assert len(source) <= MAX_SOURCE_LEN
            src_vocab.encode(source)
            tgt_vocab.encode(target)
    lengths = [len(s) for s, _ in samples["train"]]
    assert min(lengths) < 16 and max(lengths) > 30  # the source length varies a lot


def test_held_out_pairs_never_reach_training(samples):
    seen = {split: {(D.fromisoformat(t).month, D.fromisoformat(t).day) for _, t in pairs}
            for split, pairs in samples.items()}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"]
    assert not seen["val"] & seen["test"]
    for split, pairs in seen.items():
        expected = {(d.month, d.day) for d in all_days(2000) if split_of(d.month, d.day) == split}
        assert pairs == expected  # within its split, and all of it drawn in a big sample


def test_years_are_uniform_and_february_29_needs_a_leap_year(samples):
    dates = [D.fromisoformat(t) for pairs in samples.values() for _, t in pairs]
    years = Counter(d.year for d in dates)
    assert min(years) == 1900 and max(years) == 2099 and len(years) == 200
    assert max(years.values()) < 3 * len(dates) / 200  # no year far above its share
    leap_days = [d for d in dates if (d.month, d.day) == (2, 29)]
    assert leap_days and all(calendar.isleap(d.year) for d in leap_days)


def test_every_format_is_used(samples):
    # "May 5, 2026" is both month_d_y and mon_dot_d_y; count only sources one format explains.
    used = Counter()
    for source, _ in samples["train"]:
        formats = parse_any(source)
        if len(formats) == 1:
            used.update(formats.keys())
    assert set(used) == set(FORMATS)
    assert min(used.values()) > 0.5 * len(samples["train"]) / len(FORMATS)


@pytest.mark.parametrize("args, error, words", [
    (("dev", 5), ValueError, "unknown split 'dev'.*'train', 'val', 'test'"),
    (("Train", 5), ValueError, "unknown split"),
    ((None, 5), ValueError, "unknown split"),
    (("train", 0), ValueError, "n .*>= 1, got 0"),
    (("train", 2.0), ValueError, "n .*whole number"),
    (("train", 5, -1), ValueError, "seed"),
])
def test_date_pairs_rejects_bad_input(args, error, words):
    with pytest.raises(error, match=words):
        date_pairs(*args)


# ---- vocabularies ---------------------------------------------------------------------------

def test_char_vocab_ids():
    vocab = CharVocab("ab c")
    assert (PAD, BOS, EOS) == (0, 1, 2) and SPECIALS == ("<pad>", "<s>", "</s>")
    assert vocab.tokens == ("<pad>", "<s>", "</s>", "a", "b", " ", "c") and len(vocab) == 7
    assert vocab.encode("cab") == [6, 3, 4, EOS]
    assert vocab.encode("a b", eos=False) == [3, 5, 4]
    assert [vocab.token(i) for i in range(7)] == list(vocab.tokens)


def test_encode_decode_round_trip():
    for vocab, texts in [(source_vocab(), [s for s, _ in date_pairs("val", 300)]),
                         (target_vocab(), [t for _, t in date_pairs("val", 300)])]:
        for text in texts:
            ids = vocab.encode(text)
            assert ids[-1] == EOS and EOS not in ids[:-1] and min(ids[:-1]) >= len(SPECIALS)
            assert vocab.decode(ids) == text == vocab.decode(vocab.encode(text, eos=False))
            assert vocab.decode(torch.tensor(ids)) == text


def test_decode_stops_at_eos_and_skips_pad_and_bos():
    vocab = target_vocab()
    one, two = vocab.encode("12", eos=False)
    assert vocab.decode([BOS, one, two, EOS, one, one]) == "12"
    assert vocab.decode([BOS, one, PAD, two, PAD]) == "12"
    assert vocab.decode([EOS, one]) == "" and vocab.decode([]) == ""
    assert vocab.decode(torch.tensor([BOS, two, EOS, PAD, PAD])) == "2"


def test_the_vocabularies_hold_exactly_what_the_task_writes():
    written = {c for d in all_days(2000) for f in FORMATS for c in spell_date(d, f)}
    written |= set("0123456789")  # every digit of some year 1900..2099
    assert set(source_vocab().tokens[len(SPECIALS):]) == written
    assert source_vocab().tokens[:3] == target_vocab().tokens[:3] == SPECIALS
    assert target_vocab().tokens[3:] == tuple("0123456789-") and len(target_vocab()) == 14


def test_encode_names_the_unknown_characters():
    with pytest.raises(ValueError, match=r"^'ß' and 'z' are not in this vocabulary; it has only: "
                                         r"space , - \. 0-9 .*a-"):
        source_vocab().encode("5 Deßember 2026 z")
    with pytest.raises(ValueError, match=r"^'x' is not in this vocabulary; it has only: 0-9 -$"):
        target_vocab().encode("2026-x")
    with pytest.raises(ValueError, match="the source is empty"):
        source_vocab().encode("")
    with pytest.raises(TypeError, match="str"):
        source_vocab().encode(["a"])


def test_ids_out_of_range_are_refused():
    vocab = target_vocab()
    for ids in ([3, 14], [-1], torch.tensor([99])):
        with pytest.raises(ValueError, match=r"id (14|-1|99) is not in this vocabulary of 14"):
            vocab.decode(ids)
    with pytest.raises(ValueError, match="id 14 is not in this vocabulary of 14"):
        vocab.token(14)
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="int"):
        vocab.decode([3.0])


def test_char_vocab_rejects_bad_characters():
    with pytest.raises(ValueError, match="once.*repeated: 'a'"):
        CharVocab("abca")
    with pytest.raises(ValueError, match="once"):
        CharVocab("")
    with pytest.raises(TypeError, match="str"):
        CharVocab(["a", "b"])
