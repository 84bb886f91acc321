"""Tests for llmlab.tokenizers: character, word and byte-level BPE tokenizers, and their files."""
import json
import re
import unicodedata
import warnings
from collections import Counter
from functools import lru_cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.data import load_text
from llmlab.tokenizers import (
    FORMAT_VERSION, BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, load_tokenizer, pretokenize,
    words,
)

EOT = "<|endoftext|>"
# Any Unicode text UTF-8 can encode: lone surrogates (category Cs) cannot be, so they are left out.
unicode_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
fast = settings(max_examples=60, deadline=None)


@lru_cache(maxsize=None)
def shakespeare() -> str:
    return load_text("tinyshakespeare")


@lru_cache(maxsize=None)
def small_bpe() -> BPETokenizer:
    """A BPE trained on a little English and Chinese, with one special token (shared by many tests)."""
    text = shakespeare()[:30_000] + EOT + load_text("tang300")[:3_000]
    return BPETokenizer.train(text, vocab_size=600, special_tokens=[EOT])


def naive_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    """Reference BPE: recount every pair after every merge; slow but obviously right."""
    chunks = Counter(tuple(c.encode("utf-8")) for c in pretokenize(text))
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for new_id in range(256, 256 + num_merges):
        counts = Counter()
        for w, n in chunks.items():
            for pair in zip(w, w[1:]):
                counts[pair] += n
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], (vocab[p[0]], vocab[p[1]])))
        merges.append(best)
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        merged = Counter()
        for w, n in chunks.items():
            out, i = [], 0
            while i < len(w):
                if w[i:i + 2] == best:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += n
        chunks = merged
    return merges


# ------------------------------------------------------------------------------ characters

def test_char_vocab_is_sorted_unique_characters_and_round_trips():
    tok = CharTokenizer.train("hello world")
    assert tok.vocab == tuple(" dehlorw") and tok.vocab_size == 8
    assert tok.encode("hello") == [3, 2, 4, 4, 5]
    assert tok.decode(tok.encode("world hello")) == "world hello"


def test_char_unseen_character_error_names_character_code_point_position_and_fix():
    tok = CharTokenizer.train("cafe ")
    with pytest.raises(ValueError) as err:
        tok.encode("face café")
    msg = str(err.value)
    assert "'é'" in msg and "U+00E9" in msg and "position 8" in msg
    assert "train on text that contains it" in msg and "unk_token=" in msg


def test_char_unk_token_maps_unseen_characters_to_one_id():
    tok = CharTokenizer.train("abc", unk_token="\u2047")
    assert tok.vocab_size == 4 and tok.vocab[-1] == "\u2047"
    ids = tok.encode("abXcY")
    assert ids == [0, 1, 3, 2, 3]
    assert tok.decode(ids) == "ab\u2047c\u2047"
    assert tok.decode(tok.encode("cab")) == "cab"


def test_char_constructor_takes_a_character_list_and_rejects_bad_ones():
    assert CharTokenizer(["x", "y"]).encode("yx") == [1, 0]
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer(["ab", "c"])
    with pytest.raises(ValueError, match="twice"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="single character"):
        CharTokenizer.train("abc", unk_token="<unk>")


def test_decode_rejects_out_of_range_ids_and_accepts_tensors():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"id 7 is out of range.*0\.\.2"):
        tok.decode([0, 7])
    with pytest.raises(ValueError, match="id -1"):
        tok.decode([-1])
    assert tok.decode(torch.tensor([2, 1, 0])) == "cba"


def test_encode_rejects_non_strings():
    with pytest.raises(TypeError, match="str"):
        CharTokenizer.train("abc").encode(["a", "b"])
    with pytest.raises(TypeError, match="decode"):
        small_bpe().encode(b"bytes")


@fast
@given(unicode_text.filter(bool))
def test_char_round_trips_any_text_it_was_trained_on(text):
    tok = CharTokenizer.train(text)
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text


# ----------------------------------------------------------------------------------- words

def test_words_splits_words_and_punctuation():
    text = "Don't stop, it's 3pm!  Ok?"
    assert words(text) == ["Don't", "stop", ",", "it's", "3pm", "!", "Ok", "?"]
    assert words(text, lower=True, punctuation=False) == ["don't", "stop", "it's", "3pm", "ok"]


def test_word_vocab_keeps_frequent_words_first_with_unk_at_zero():
    text = "the cat saw the dog . the dog ran ."
    tok = WordTokenizer.train(text)
    assert tok.vocab[:4] == ("<unk>", "the", ".", "dog") and tok.unk_id == 0
    assert WordTokenizer.train(text, min_freq=2).vocab == ("<unk>", "the", ".", "dog")
    assert WordTokenizer.train(text, max_size=3).vocab == ("<unk>", "the", ".")


def test_word_decode_is_lossy_and_unseen_words_become_unk():
    tok = WordTokenizer.train("Hello, world! Hello again.")
    ids = tok.encode("Hello,   brave world!")
    assert ids[2] == tok.unk_id and len(ids) == 5
    # Whitespace is gone and the unseen word cannot be spelled: the teaching point.
    assert tok.decode(ids) == "Hello , <unk> world !"


def test_word_lower_option_folds_case():
    tok = WordTokenizer.train("The the THE", lower=True)
    assert tok.vocab == ("<unk>", "the") and tok.encode("tHe") == [1]
    assert WordTokenizer.train("The the").vocab_size == 3


def test_word_training_rejects_bad_limits():
    with pytest.raises(ValueError, match="min_freq"):
        WordTokenizer.train("a b", min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        WordTokenizer.train("a b", max_size=1)


# ----------------------------------------------------------------------- BPE pre-tokenization

def test_pretokenize_follows_the_gpt2_pattern():
    assert pretokenize("Hello world's 123 !!") == ["Hello", " world", "'s", " 123", " !!"]
    # A run of spaces leaves its last space to the next word.
    assert pretokenize("a   b\n\nc") == ["a", "  ", " b", "\n", "\n", "c"]
    assert pretokenize("snake_case") == ["snake", "_", "case"]
    # The documented difference from GPT-2's \p{N}: non-decimal numerals count as letters.
    assert pretokenize("x² 42") == ["x²", " 42"]


@fast
@given(unicode_text)
def test_pretokenize_covers_every_character(text):
    assert "".join(pretokenize(text)) == text


# ------------------------------------------------------------------------------- BPE training

def test_bpe_vocab_size_too_small_is_a_clear_error():
    with pytest.raises(ValueError, match="vocab_size=200 is too small.*>= 256"):
        BPETokenizer.train("hello", vocab_size=200)
    with pytest.raises(ValueError, match=">= 258"):
        BPETokenizer.train("hello", vocab_size=257, special_tokens=["<a>", "<b>"])
    assert BPETokenizer.train("hello", vocab_size=256).vocab_size == 256


def test_bpe_ties_go_to_the_greater_byte_pair():
    # All three pairs occur once: (c, d) is the greatest, then (b, cd) beats (a, b).
    tok = BPETokenizer.train("abcd", vocab_size=259)
    assert list(tok.merges) == [(ord("c"), ord("d")), (ord("b"), 256), (ord("a"), 257)]
    assert tok.encode("abcd") == [258]


def test_bpe_ties_compare_bytes_not_ids():
    # After merging "ab" (id 256), (ab, x) and (b, y) both occur once. By ids (256, 120) would win;
    # by bytes (b"b", b"y") > (b"ab", b"x"), so "by" must be merged first.
    tok = BPETokenizer.train("ab\nab\nab\nabx\nby", vocab_size=259)
    assert list(tok.merges) == [(97, 98), (98, 121), (256, 120)]


def test_bpe_stops_early_with_a_warning_when_pairs_run_out():
    with pytest.warns(UserWarning, match="ran out of pairs to merge after 2 merges"):
        tok = BPETokenizer.train("abc", vocab_size=300, special_tokens=[EOT])
    assert tok.vocab_size == 256 + 2 + 1 and tok.special_tokens[EOT] == 258


def test_bpe_training_matches_a_naive_recount_on_real_text():
    text = shakespeare()[:8_000]
    assert list(BPETokenizer.train(text, vocab_size=256 + 80).merges) == naive_merges(text, 80)


@fast
@given(st.text(alphabet="aab b\n", max_size=60), st.integers(1, 12))
def test_bpe_training_matches_a_naive_recount_on_tie_heavy_text(text, num_merges):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short texts may run out of pairs; that is fine here
        tok = BPETokenizer.train(text, vocab_size=256 + num_merges)
    assert list(tok.merges) == naive_merges(text, num_merges)


def test_bpe_merges_never_cross_pre_token_boundaries():
    tok = BPETokenizer.train("hello world. hello there! " * 40, vocab_size=270)
    for i in range(256, tok.vocab_size):
        # A pre-token can start with a space but never has a space after other characters.
        assert not re.search(rb"\S\s", tok.token_bytes(i)), tok.token_bytes(i)


def test_bpe_merges_are_read_only_and_listed_in_order():
    tok = small_bpe()
    assert list(tok.merges.values()) == list(range(256, 256 + len(tok.merges)))
    with pytest.raises(TypeError):
        tok.merges[(1, 2)] = 3


@fast
@given(st.text(alphabet="abc \n", max_size=100), st.integers(0, 40),
       st.lists(st.sampled_from(["<|endoftext|>", "<pad>", "<s>"]), unique=True))
def test_bpe_vocab_size_is_bytes_plus_merges_plus_special_tokens(text, extra, specials):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = BPETokenizer.train(text, vocab_size=256 + len(specials) + extra, special_tokens=specials)
    assert tok.vocab_size == 256 + len(tok.merges) + len(tok.special_tokens)
    assert len(tok.merges) <= extra and len(tok.vocab) == tok.vocab_size
    assert sorted(tok.special_tokens.values()) == list(range(256 + len(tok.merges), tok.vocab_size))


# ------------------------------------------------------------------------------- BPE encoding

@fast
@given(unicode_text)
def test_bpe_round_trips_any_unicode_text(text):
    tok = small_bpe()
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode(text, special=False)) == text


def test_bpe_encode_applies_merges_in_learned_order():
    # (b, c) was learned first, so "abc" is a + bc even though (a, b) comes first in the text.
    assert BPETokenizer([(98, 99), (97, 98)]).encode("abc") == [97, 256]
    assert BPETokenizer([(97, 98), (98, 99)]).encode("abc") == [256, 99]


@fast
@given(st.text(alphabet="the quick brown fox, 你好。\n", max_size=60))
def test_bpe_encode_equals_replaying_every_merge_in_order(text):
    tok = small_bpe()
    expected = []
    for chunk in pretokenize(text):
        ids = list(chunk.encode("utf-8"))
        for (left, right), new_id in tok.merges.items():  # one pass per merge, in learned order
            out, i = [], 0
            while i < len(ids):
                if ids[i:i + 2] == [left, right]:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        expected += ids
    assert tok.encode(text) == expected


def test_bpe_round_trips_hard_cases_and_compresses_english():
    tok = small_bpe()
    for text in ["", "naïve café", "e\u0301\u0301", "😀👍🏽 ok", "tab\there\x00\x1f\r\n", "x² ½"]:
        assert tok.decode(tok.encode(text)) == text
    sample = shakespeare()[100_000:110_000]
    assert len(sample.encode()) / len(tok.encode(sample)) > 1.8  # 343 merges already pay off


LONE_SURROGATE = "lone surrogate U\\+D800 at index 3: it is not valid Unicode"


@pytest.mark.parametrize("make", [
    lambda text: CharTokenizer.train(text),
    lambda text: WordTokenizer.train(text),
    lambda text: BPETokenizer.train(text, vocab_size=260),
    lambda text: CharTokenizer.train("ok ").encode(text),
    lambda text: WordTokenizer.train("ok").encode(text),
    lambda text: small_bpe().encode(text),
    lambda text: small_bpe().encode(text, special=False),
    lambda text: pretokenize(text),
    lambda text: words(text),
], ids=["char train", "word train", "bpe train", "char encode", "word encode", "bpe encode",
        "bpe encode plain", "pretokenize", "words"])
def test_every_tokenizer_refuses_lone_surrogates_by_position_with_the_fix(make):
    with pytest.raises(ValueError, match=LONE_SURROGATE) as err:
        make("ok \ud800 x")
    assert "text.encode('utf-8', 'replace')" in str(err.value)


@pytest.mark.parametrize("make", [
    lambda: CharTokenizer(["a", "\ud800"]),
    lambda: CharTokenizer(["a"], unk_token="\udfff"),
    lambda: WordTokenizer(["ok", "a\ud800"]),
    lambda: BPETokenizer(special_tokens=["<\ud800>"]),
], ids=["char vocab", "char unk", "word vocab", "bpe special"])
def test_a_vocabulary_with_a_lone_surrogate_is_refused_before_it_could_be_saved(make, tmp_path):
    with pytest.raises(ValueError, match="lone surrogate"):
        make()
    assert list(tmp_path.iterdir()) == []


def test_bpe_decodes_incomplete_utf8_with_replacement_characters():
    tok = small_bpe()
    euro = list("€".encode("utf-8"))  # three bytes
    assert tok.decode(euro) == "€"
    assert tok.decode(euro[:2]) == "\ufffd"


@fast
@given(st.lists(unicode_text, min_size=1, max_size=4))
def test_bpe_special_tokens_are_never_split(pieces):
    tok, eot = small_bpe(), small_bpe().special_tokens[EOT]
    text = EOT.join(pieces)
    ids = tok.encode(text)
    assert ids.count(eot) == text.count(EOT) >= len(pieces) - 1
    assert tok.decode(ids) == text
    # With special=False the same characters are plain text, and never the special id.
    assert eot not in tok.encode(text, special=False)


def test_bpe_training_ignores_special_token_text():
    tok = BPETokenizer.train(("hello world" + EOT) * 50, vocab_size=265, special_tokens=[EOT])
    assert tok.encode(EOT) == [tok.special_tokens[EOT]]
    assert not any(b"|" in tok.token_bytes(i) and len(tok.token_bytes(i)) > 1
                   for i in range(256, 256 + len(tok.merges)))


def test_bpe_rejects_bad_special_tokens():
    with pytest.raises(ValueError, match="list of strings"):
        BPETokenizer.train("abc", vocab_size=300, special_tokens=EOT)
    with pytest.raises(ValueError, match="distinct non-empty"):
        BPETokenizer(special_tokens=["<a>", "<a>"])
    with pytest.raises(ValueError, match="distinct non-empty"):
        BPETokenizer(special_tokens=[""])


def test_bpe_on_chinese_round_trips_and_learns_whole_characters():
    text = load_text("tang300")[:2000]
    assert small_bpe().decode(small_bpe().encode(text)) == text
    tok = BPETokenizer.train(text, vocab_size=400)
    assert tok.decode(tok.encode(text)) == text
    # UTF-8 spends 3 bytes on each of these characters; merges glue them back into whole ones.
    whole = [tok.token_bytes(i).decode("utf-8") for i in range(256, tok.vocab_size)
             if len(tok.token_bytes(i)) >= 3 and _is_utf8(tok.token_bytes(i))]
    assert any(re.fullmatch(r"[\u4e00-\u9fff]+", w) for w in whole)
    assert len(text.encode()) / len(tok.encode(text)) > 1.4  # fewer tokens than bytes
    assert any(re.fullmatch(r"[\u4e00-\u9fff]+", t) for t in tok.tokens(text[:200]))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def test_bpe_teaching_helpers_show_readable_tokens():
    tok = BPETokenizer.train("the the the then", vocab_size=260)  # (t, h) ties (h, e) and wins
    assert tok.token_str(ord(" ")) == "·" and tok.token_str(10) == "↵"
    assert tok.token_bytes(256) == tok.vocab[256] and len(tok.token_bytes(256)) == 2
    assert small_bpe().token_str(0xE4) == "\\xe4"  # half a character shows its byte
    assert "".join(tok.tokens("the then")).replace("·", " ") == "the then"
    table = tok.show_merges(3).splitlines()
    assert table[0].split() == ["rank", "left", "right", "merged"] and len(table) == 4
    assert table[1].split()[:3] == ["0", "t", "h"] and table[1].endswith("(256)")


def test_bpe_constructor_rejects_merges_that_refer_to_unknown_ids():
    assert BPETokenizer([(104, 105), (256, 256)]).encode("hihi hi") == [257, 32, 256]
    with pytest.raises(ValueError, match=r"merge 1 is \[300, 1\].*0\.\.256"):
        BPETokenizer([[104, 105], [300, 1]])
    with pytest.raises(ValueError, match="repeats"):
        BPETokenizer([(1, 2), (1, 2)])


# ------------------------------------------------------------------------------ save / load

@pytest.mark.parametrize("make", [
    lambda: CharTokenizer.train("hello wörld", unk_token="?"),
    lambda: WordTokenizer.train("Hello, world. Hello!", lower=True),
    small_bpe,
])
def test_save_load_round_trip_keeps_encodings(tmp_path, make):
    tok, path = make(), tmp_path / "tok.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == tok.kind and data["version"] == 1  # readable by older llmlab too
    text = "Hello wörld, 你好 <|endoftext|> Zebra!"
    for loaded in (type(tok).load(path), load_tokenizer(path)):
        assert type(loaded) is type(tok) and loaded.vocab == tok.vocab
        assert loaded.encode(text) == tok.encode(text)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed into place


def _write(tmp_path, content) -> str:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def _good_bpe_json() -> dict:
    return {"type": "bpe", "version": FORMAT_VERSION, "merges": [[104, 105]],
            "special_tokens": [], "pattern": "gpt2"}


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "no 'type' and 'version'"),
    ({**_good_bpe_json(), "version": 99}, "format version 99"),
    ({k: v for k, v in _good_bpe_json().items() if k != "merges"}, "missing the field 'merges'"),
    ({**_good_bpe_json(), "merges": [[104, 105], [999, 1]]}, r"corrupt: merge 1 is \[999, 1\]"),
    ({**_good_bpe_json(), "pattern": "gpt9"}, "unknown pre-tokenization pattern"),
    ({**_good_bpe_json(), "type": "sentencepiece"}, "unknown tokenizer type 'sentencepiece'"),
])
def test_loading_a_bad_file_names_the_file_the_problem_and_the_fix(tmp_path, content, problem):
    path = _write(tmp_path, content)
    for load in (load_tokenizer, BPETokenizer.load):
        with pytest.raises(ValueError, match=problem) as err:
            load(path)
        assert path in str(err.value) and "re-train the tokenizer and save it" in str(err.value)


def test_loading_the_wrong_tokenizer_type_says_which_it_is(tmp_path):
    path = tmp_path / "chars.json"
    CharTokenizer.train("abc").save(path)
    with pytest.raises(ValueError, match=r"holds a 'char' tokenizer, not a 'bpe' one.*load_tokenizer"):
        BPETokenizer.load(path)
    assert isinstance(load_tokenizer(path), CharTokenizer)
    assert isinstance(Tokenizer.load(path), CharTokenizer)  # the base class reads any kind


# ------------------------------------------------------------------------------ bad input

def test_char_train_on_empty_text_is_refused_instead_of_an_empty_vocabulary():
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match="vocabulary is empty"):
        CharTokenizer([])
    assert CharTokenizer([], unk_token="?").vocab == ("?",)  # an unk-only tokenizer still encodes


@pytest.mark.parametrize("tok", [CharTokenizer.train("hello"), WordTokenizer.train("hello world"),
                                 small_bpe()], ids=["char", "word", "bpe"])
@pytest.mark.parametrize("ids, error, message", [
    ([1.0], ValueError, r"ids\[0\] is 1.0 \(float\).*must be ints"),
    ([0, 1.5], ValueError, r"ids\[1\] is 1.5"),
    ([True, 0], ValueError, r"ids\[0\] is True \(bool\)"),
    ("12", TypeError, "got str; encode the text"),
    (None, TypeError, "got None"),
    (7, TypeError, "got int"),
    (torch.tensor([[1, 0]]), ValueError, r"shape \(1, 2\).*decode each row separately"),
    (torch.tensor([1.0, 0.0]), ValueError, "dtype torch.float32"),
    (torch.tensor([True]), ValueError, "dtype torch.bool"),
])
def test_decode_refuses_what_is_not_a_1d_sequence_of_int_ids(tok, ids, error, message):
    with pytest.raises(error, match=message):
        tok.decode(ids)


def test_decode_accepts_ints_of_any_integer_kind():
    import numpy as np
    tok = CharTokenizer.train("hello")
    ids = tok.encode("hello")
    expected = "hello"
    assert tok.decode(torch.tensor(ids)) == expected
    assert tok.decode(np.array(ids)) == expected
    assert tok.decode([np.int64(i) for i in ids]) == expected
    assert tok.decode(torch.tensor(ids, dtype=torch.int32)) == expected


def _saved(tmp_path, **fields):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"version": FORMAT_VERSION, **fields}), encoding="utf-8")
    return path


@pytest.mark.parametrize("lower", ["false", "true", 0, 1, None])
def test_word_json_lower_must_be_a_real_bool(tmp_path, lower):
    path = _saved(tmp_path, type="word", vocab=["<unk>", "a"], lower=lower)
    with pytest.raises(ValueError, match=f"corrupt: lower must be True or False, got {lower!r}"):
        load_tokenizer(path)
    with pytest.raises(ValueError, match="lower must be True or False"):
        WordTokenizer.train("A b", lower="false")


def test_word_json_lower_false_round_trips(tmp_path):
    tok = WordTokenizer.train("Hello hello", lower=False)
    tok.save(tmp_path / "w.json")
    assert load_tokenizer(tmp_path / "w.json").lower is False


@pytest.mark.parametrize("merges", [[[True, False]], [[1.0, 2]], [["1", 2]]])
def test_bpe_json_merges_must_be_int_ids(tmp_path, merges):
    path = _saved(tmp_path, type="bpe", merges=merges, special_tokens=[], pattern="gpt2")
    with pytest.raises(ValueError, match="corrupt: merge 0 is .* must be two ids"):
        load_tokenizer(path)


@pytest.mark.parametrize("fields, message", [
    ({"type": ["word"]}, r"unknown tokenizer type \['word'\]"),
    ({"type": {"a": 1}}, "unknown tokenizer type"),
    ({"type": "bpe", "merges": [], "special_tokens": [], "pattern": ["gpt2"]},
     "unknown pre-tokenization pattern"),
])
def test_json_fields_of_the_wrong_kind_are_named(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        load_tokenizer(_saved(tmp_path, **fields))


def test_json_version_true_is_not_version_1(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text(json.dumps({"type": "char", "version": True, "vocab": ["a"], "unk_token": None}))
    with pytest.raises(ValueError, match="format version True"):
        load_tokenizer(path)


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 300.0}, "vocab_size must be an int"),
    ({"vocab_size": True}, "vocab_size must be an int"),
    ({"vocab_size": "300"}, "vocab_size must be an int"),
])
def test_bpe_train_sizes_must_be_ints(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer.train("hello world", **kwargs)


@pytest.mark.parametrize("kwargs", [{"min_freq": True}, {"min_freq": 2.0}, {"max_size": 10.0},
                                    {"max_size": True}])
def test_word_train_sizes_must_be_ints_not_bools_or_floats(kwargs):
    with pytest.raises(ValueError, match="must be an int"):
        WordTokenizer.train("a b a", **kwargs)


def test_show_merges_count_must_be_an_int():
    with pytest.raises(ValueError, match="n \\(how many merges to show\\) must be an int"):
        small_bpe().show_merges(2.5)
    with pytest.raises(ValueError, match="token ids must be ints"):
        small_bpe().token_str(1.0)


@pytest.mark.parametrize("tok", [CharTokenizer.train("ab"), WordTokenizer.train("a b"),
                                 BPETokenizer.train("ab ab", 257)], ids=["char", "word", "bpe"])
def test_save_to_an_existing_folder_says_so_and_leaves_no_temporary_file(tok, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder, not a file: pass a file path"):
        tok.save(folder)
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        tok.save(tmp_path / "missing" / "tok.json")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]


def test_save_cleans_up_its_temporary_file_when_the_write_fails(tmp_path, monkeypatch):
    tok = CharTokenizer.train("ab")
    (tmp_path / "old.json").write_text("keep me")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("llmlab.tokenizers.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        tok.save(tmp_path / "old.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "keep me"


# NFD writes "é" as "e" + U+0301 (a combining acute accent); NFC writes it as one code point.
NFC = "café naïve Ångström résumé"
NFD = unicodedata.normalize("NFD", NFC)


def test_pretokenize_keeps_a_combining_accent_with_its_letter():
    assert NFD != NFC
    assert pretokenize(NFD) == [unicodedata.normalize("NFD", w) for w in pretokenize(NFC)]
    assert pretokenize(NFC) == ["café", " naïve", " Ångström", " résumé"]
    assert words(NFD) == [unicodedata.normalize("NFD", w) for w in words(NFC)]
    assert len(words(NFD)) == 4


@pytest.mark.parametrize("text", [NFC, NFD])
def test_every_tokenizer_round_trips_nfc_and_nfd_text_exactly_as_given(text):
    # No normalisation: what goes in comes back, code point for code point.
    for tok in (CharTokenizer.train(text), small_bpe()):
        assert tok.decode(tok.encode(text)) == text
    word = WordTokenizer.train(text)
    assert word.decode(word.encode(text)) == text  # single spaces only, so this text is exact
    assert word.unk_id not in word.encode(text)


def test_bpe_merges_a_base_letter_with_its_combining_accent():
    tok = BPETokenizer.train(NFD * 20, vocab_size=280)
    e_acute = "e\u0301".encode("utf-8")
    assert any(tok.token_bytes(i).endswith(e_acute) for i in tok.merges.values())


# ---------------------------------------------------- GPT-2's exact regex, renumbered ids

def test_gpt2_exact_is_gpt2s_own_regex():
    # \p{L}+ stops at a combining accent, and \p{N} takes any numeral, as in GPT-2 itself.
    assert pretokenize(NFD, "gpt2-exact")[:2] == ["cafe", "\u0301"]
    assert pretokenize("x² 42 ½", "gpt2-exact") == ["x", "²", " 42", " ½"]
    assert pretokenize("Hello world's 123 !!", "gpt2-exact") == pretokenize("Hello world's 123 !!")
    tok = BPETokenizer(small_bpe().merges, [EOT], pattern="gpt2-exact")
    assert tok.decode(tok.encode(NFD + EOT)) == NFD + EOT
    with pytest.raises(ValueError, match="unknown pre-tokenization pattern 'gpt3'; known: gpt2, gpt2-exact"):
        pretokenize("a", "gpt3")


def test_gpt2_exact_without_the_regex_package_says_how_to_install_it(monkeypatch):
    import sys

    import llmlab._bpe
    llmlab._bpe._compiled.cache_clear()  # not compiled yet
    monkeypatch.setitem(sys.modules, "regex", None)
    with pytest.raises(ImportError, match="needs the `regex` package: pip install regex"):
        BPETokenizer(pattern="gpt2-exact")
    monkeypatch.undo()
    llmlab._bpe._compiled.cache_clear()  # nothing cached from the failed attempt
    assert BPETokenizer().encode("still fine") == list(b"still fine")  # "gpt2" needs only `re`


def renumbered() -> BPETokenizer:
    """258 tokens (256 bytes, 'hi', '<s>') shown in reverse order: '<s>' is 0, 'hi' 1, byte 255 2."""
    return BPETokenizer([(104, 105)], ["<s>"], id_map=list(range(257, -1, -1)))


def test_id_map_renumbers_encode_decode_vocab_and_merges():
    tok = renumbered()
    assert tok.encode("hi<s>h") == [1, 0, 257 - 104]
    assert tok.decode([1, 0, 153]) == "hi<s>h"
    assert tok.vocab[1] == tok.token_bytes(1) == b"hi" and tok.vocab[0] == b"<s>"
    assert tok.vocab[257] == b"\x00" and tok.vocab_size == 258
    assert dict(tok.merges) == {(257 - 104, 257 - 105): 1}
    assert dict(tok.special_tokens) == {"<s>": 0}
    assert tok.token_str(1) == "hi" and "hi (1)" in tok.show_merges()
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([258])


def test_id_map_is_saved_and_files_without_one_load_unchanged(tmp_path):
    tok = renumbered()
    tok.save(tmp_path / "renumbered.json")
    data = json.loads((tmp_path / "renumbered.json").read_text(encoding="utf-8"))
    # version 2: an older llmlab (version 1 only) refuses the file rather than ignore the id_map
    assert data["version"] == FORMAT_VERSION == 2 and data["id_map"] == list(range(257, -1, -1))
    again = load_tokenizer(tmp_path / "renumbered.json")
    assert again.encode("hi<s>hi") == tok.encode("hi<s>hi") and again.vocab == tok.vocab
    small_bpe().save(tmp_path / "plain.json")  # no id_map: the layout older versions wrote
    assert "id_map" not in json.loads((tmp_path / "plain.json").read_text(encoding="utf-8"))
    assert load_tokenizer(_write(tmp_path, _good_bpe_json())).encode("hi") == [256]


@pytest.mark.parametrize("id_map", [list(range(257)), [0] * 258, [str(i) for i in range(258)], "0"])
def test_id_map_must_list_each_id_once(tmp_path, id_map):
    with pytest.raises(ValueError, match="id_map must"):
        BPETokenizer([(104, 105)], ["<s>"], id_map=id_map)
    path = _write(tmp_path, {**_good_bpe_json(), "special_tokens": ["<s>"], "id_map": id_map})
    with pytest.raises(ValueError, match="corrupt: id_map must"):
        load_tokenizer(path)
