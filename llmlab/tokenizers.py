"""Three ways to turn text into integer ids: characters, words, and byte-level BPE (as in GPT-2).

All three share one interface: encode(text) -> list[int], decode(ids) -> str, vocab_size,
save(path) to JSON and load(path); load_tokenizer(path) reads back any of them.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from types import MappingProxyType

from llmlab._bpe import (_MARK, GPT2_EXACT_PATTERN, GPT2_PATTERN, _check_id_map, _check_special,
                         _learn_merges, _merge, _special_regex, _splitter)
from llmlab._validate_input import as_id_list, as_int, check_bool, check_text

__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "BPETokenizer", "load_tokenizer",
           "words", "pretokenize", "GPT2_PATTERN", "GPT2_EXACT_PATTERN", "FORMAT_VERSION"]

# Bump when the saved JSON layout changes; load() reads versions 1..FORMAT_VERSION. Version 2 adds
# BPETokenizer's id_map; a file without one is still written as version 1, so an older llmlab
# reads it, and one with an id_map is refused by an older llmlab instead of silently misread.
FORMAT_VERSION = 2
_FIX = "re-train the tokenizer and save it with this version of llmlab"


class Tokenizer(ABC):
    """The shared interface: text -> ids -> text, plus JSON save/load.

    A subclass keeps `vocab` (vocab[id] is what the id stands for), sets `kind` (the saved "type")
    and `_json_fields`: the constructor arguments that save() writes and load() passes back.
    """

    kind = ""
    _json_fields: tuple[str, ...] = ()
    _json_optional: tuple[str, ...] = ()  # fields a file may lack (older files): the default is used
    vocab: tuple = ()

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Turn text into a list of token ids."""

    @abstractmethod
    def decode(self, ids) -> str:
        """Turn a sequence of token ids back into text."""

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids; every id lies in range(vocab_size)."""
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"

    def _to_json(self) -> dict:
        """The constructor arguments that rebuild this tokenizer, as JSON-ready values."""
        return {k: getattr(self, k) for k in self._json_fields}

    def save(self, path) -> None:
        """Write the tokenizer to a JSON file (via a temporary file, so a crash never leaves half a file)."""
        fields = self._to_json()
        data = {"type": self.kind, "version": 2 if "id_map" in fields else 1, **fields}
        # Encode first: anything that cannot be written fails before a file is touched.
        payload = json.dumps(data, ensure_ascii=False).encode("utf-8")
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder, not a file: pass a file path such as "
                                    f"{path / (self.kind + '_tokenizer.json')}")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot save to {path}: the folder {path.parent} does not exist; "
                                    "create it first with Path(folder).mkdir(parents=True)")
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(payload)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # never leave a stray temporary file behind
            raise

    @classmethod
    def load(cls, path) -> Tokenizer:
        """Read a tokenizer written by save(); raise ValueError naming the file if it is unusable."""
        return _load(path, None if cls is Tokenizer else cls)  # Tokenizer.load reads any kind

    def _check_ids(self, ids) -> list[int]:
        """Return ids as a list of ints, or raise ValueError for an id outside range(vocab_size)."""
        ids, n = as_id_list(ids), self.vocab_size
        bad = next((i for i in ids if not 0 <= i < n), None)
        if bad is not None:
            raise ValueError(f"id {bad} is out of range: this tokenizer's ids are 0..{n - 1} "
                             f"(vocab_size={n}); were these ids made by a different tokenizer?")
        return ids


# ------------------------------------------------------------------------------ characters

class CharTokenizer(Tokenizer):
    """One id per character; trained, the vocabulary is the sorted set of characters in the text."""

    kind = "char"
    _json_fields = ("vocab", "unk_token")

    def __init__(self, vocab, unk_token: str | None = None):
        chars = list(vocab)
        for c in chars + ([] if unk_token is None else [unk_token]):
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"every vocabulary entry must be a single character, got {c!r}")
            check_text(c, "a vocabulary entry")
        if not chars and unk_token is None:
            raise ValueError("the vocabulary is empty, so no text could be encoded: train on "
                             "non-empty text, e.g. CharTokenizer.train('hello')")
        repeated = [c for c, n in Counter(chars).items() if n > 1]
        if repeated:
            raise ValueError(f"character {repeated[0]!r} appears twice in the vocabulary; list each once")
        if unk_token is not None and unk_token not in chars:
            chars.append(unk_token)  # the unknown token gets the last id
        self.vocab = tuple(chars)
        self.unk_token = unk_token
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def train(cls, text: str, unk_token: str | None = None) -> CharTokenizer:
        """Build the vocabulary from the sorted unique characters of text."""
        check_text(text)
        if not text:
            raise ValueError("cannot train on empty text: the vocabulary would be empty; pass the "
                             "text you want to encode, e.g. load_text('tinyshakespeare')")
        return cls(sorted(set(text)), unk_token=unk_token)

    def encode(self, text: str) -> list[int]:
        """Map each character to its id; an unseen one raises ValueError, or becomes unk_token if set."""
        check_text(text)
        try:
            return [self._ids[c] for c in text]  # fast path: every character is known
        except KeyError:
            pass
        unk = self._ids.get(self.unk_token)
        out = []
        for pos, c in enumerate(text):
            i = self._ids.get(c, unk)
            if i is None:
                raise ValueError(
                    f"character {c!r} (U+{ord(c):04X}) at position {pos} is not in this tokenizer's "
                    f"vocabulary of {self.vocab_size} characters: train on text that contains it, or "
                    "pass unk_token='\u2047' to CharTokenizer.train to map unseen characters to one id")
            out.append(i)
        return out

    def decode(self, ids) -> str:
        """Join the characters of the ids (exact inverse of encode for known characters)."""
        return "".join(self.vocab[i] for i in self._check_ids(ids))


# ----------------------------------------------------------------------------------- words

# A combining mark (_MARK: an accent written as its own code point, as in NFD text: "e" + U+0301)
# stays with the letter before it, so "café" is one word however it was typed.
# A word is a run of letters/digits (and their accents), keeping inner apostrophes ("don't");
# anything else that is not whitespace is a one-character punctuation token.
_WORD = rf"(?:\w|{_MARK})+(?:['\u2019](?:\w|{_MARK})+)*"
_WORD_RE = re.compile(_WORD)
_WORD_OR_PUNCT_RE = re.compile(_WORD + r"|[^\w\s]")
_UNK = "<unk>"


def words(text: str, lower: bool = False, punctuation: bool = True) -> list[str]:
    """Split text into words and (if punctuation=True) punctuation marks; whitespace is dropped."""
    check_text(text)
    if check_bool(lower, "lower"):
        text = text.lower()
    return (_WORD_OR_PUNCT_RE if punctuation else _WORD_RE).findall(text)


class WordTokenizer(Tokenizer):
    """One id per word or punctuation mark seen in training; any other word becomes <unk> (id 0).

    Lossy on purpose, as a teaching point: decode joins tokens with single spaces, so the original
    whitespace (and case, with lower=True) is lost, and a word never seen in training comes back
    as <unk>: a word tokenizer cannot spell new words. Byte-level BPE fixes both problems.
    """

    kind = "word"
    _json_fields = ("vocab", "lower")

    def __init__(self, vocab, lower: bool = False):
        vocab = list(vocab)
        for w in vocab:
            if not isinstance(w, str) or not w:
                raise ValueError(f"every vocabulary entry must be a non-empty str, got {w!r}")
            check_text(w, "a vocabulary entry")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary lists a word twice; list each word once")
        if _UNK not in vocab:
            vocab.insert(0, _UNK)
        self.vocab = tuple(vocab)
        self.lower = check_bool(lower, "lower")
        self._ids = {w: i for i, w in enumerate(vocab)}
        self.unk_id = self._ids[_UNK]

    @classmethod
    def train(cls, text: str, min_freq: int = 1, max_size: int | None = None,
              lower: bool = False) -> WordTokenizer:
        """Keep the words seen at least min_freq times, most frequent first, at most max_size with <unk>."""
        min_freq = as_int(min_freq, "min_freq", 1)
        if max_size is not None:
            max_size = as_int(max_size, "max_size (None for no limit; it counts <unk>)", 2)
        counts = Counter(words(text, lower=lower))
        # Most frequent first (ties alphabetical): ids are deterministic and max_size keeps the commonest.
        kept = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[:max_size - 1]
        return cls([_UNK] + kept, lower=lower)

    def encode(self, text: str) -> list[int]:
        """Split text with words() and look each piece up; unknown pieces become unk_id."""
        return [self._ids.get(w, self.unk_id) for w in words(text, lower=self.lower)]

    def decode(self, ids) -> str:
        """Join the tokens with single spaces (lossy: the original whitespace is gone)."""
        return " ".join(self.vocab[i] for i in self._check_ids(ids))


# --------------------------------------------------------------------- byte-level BPE (GPT-2)

# Pre-tokenization patterns, by name (defined in llmlab._bpe): "gpt2" is GPT2_PATTERN, GPT-2's
# regex rewritten for the stdlib `re` (which keeps combining accents with their letter);
# "gpt2-exact" is GPT-2's regex itself, GPT2_EXACT_PATTERN, as Hugging Face runs it.
_CACHE_LIMIT = 100_000  # pre-token encodings remembered per tokenizer before the cache is reset


def pretokenize(text: str, pattern: str = "gpt2") -> list[str]:
    """Split text into GPT-2 pre-tokens (words with their leading space, numbers, punctuation, spaces)."""
    check_text(text)
    return _splitter(pattern).findall(text)


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding trained from scratch, as in GPT-2.

    Text is cut into pre-tokens by GPT2_PATTERN; each pre-token becomes its UTF-8 bytes (ids
    0..255), then the learned merges glue neighbouring ids into new ids 256, 257, ... in the order
    they were learned. Merges never cross pre-token boundaries. Training merges the most frequent
    pair first; ties go to the greater pair compared as (left token's bytes, right token's bytes),
    the convention of subword-nmt. Special tokens (such as
    "<|endoftext|>") get the ids after the merges and are found in the text before anything else,
    so they are never split. Any str without lone surrogates (which UTF-8 cannot encode)
    round-trips exactly: decode(encode(text)) == text.

    id_map (optional) renumbers the tokens: id_map[i] is the id shown for internal token i (the
    bytes, the merges, the special tokens, in that order), which is how a tokenizer read from
    GPT-2's files (llmlab.hf) gives GPT-2's own ids. encode returns those ids; decode, vocab,
    merges, special_tokens and token_str use them (merges passed in and saved use the internal
    ids). pattern="gpt2-exact" pre-tokenizes with GPT-2's own regex (needs the `regex` package).
    """

    kind = "bpe"
    _json_fields = ("merges", "special_tokens", "pattern", "id_map")
    _json_optional = ("id_map",)  # saved only when there is one; older files have none

    def __init__(self, merges=(), special_tokens=(), pattern: str = "gpt2", id_map=None):
        self._split = _splitter(pattern)
        self._merges: dict[tuple[int, int], int] = {}  # (left id, right id) -> new id, in learned order
        vocab = [bytes([b]) for b in range(256)]  # id -> the bytes it stands for
        for rank, pair in enumerate(merges):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(type(i) is int and 0 <= i < len(vocab) for i in pair)):
                raise ValueError(f"merge {rank} is {pair!r}, but a merge must be two ids that already "
                                 f"exist before it (0..{len(vocab) - 1})")
            if tuple(pair) in self._merges:
                raise ValueError(f"merge {rank} repeats the earlier merge {tuple(pair)}")
            self._merges[tuple(pair)] = len(vocab)
            vocab.append(vocab[pair[0]] + vocab[pair[1]])
        special_tokens = _check_special(special_tokens)
        inner = vocab + [t.encode("utf-8") for t in special_tokens]  # internal id -> bytes
        self._id_map = None if id_map is None else _check_id_map(id_map, len(inner))
        ext = self._id_map or range(len(inner))  # internal id -> the id shown
        self._special = {t: ext[len(vocab) + k] for k, t in enumerate(special_tokens)}
        self.vocab = tuple(b for _, b in sorted(zip(ext, inner)))  # indexed by the id shown
        self._shown_merges = self._merges if id_map is None else {
            (ext[a], ext[b]): ext[new] for (a, b), new in self._merges.items()}
        self.pattern = pattern
        self._special_re = _special_regex(special_tokens, capture=True) if special_tokens else None
        self._cache: dict[str, list[int]] = {}  # pre-token -> its ids (text repeats words a lot)

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens=()) -> BPETokenizer:
        """Learn vocab_size - 256 - len(special_tokens) merges from text (fewer, with a warning, if it runs out)."""
        check_text(text)
        special_tokens = _check_special(special_tokens)
        smallest = 256 + len(special_tokens)
        vocab_size = as_int(vocab_size, "vocab_size", 1)
        if vocab_size < smallest:
            raise ValueError(f"vocab_size={vocab_size!r} is too small: byte-level BPE needs the 256 byte "
                             f"values plus {len(special_tokens)} special token(s); use vocab_size >= {smallest}")
        # Special tokens mark boundaries between documents, not text: no merge learns from them.
        pieces = _special_regex(special_tokens, capture=False).split(text) if special_tokens else [text]
        chunks = Counter(c for piece in pieces for c in _splitter("gpt2").findall(piece))
        num_merges = vocab_size - smallest
        merges = _learn_merges({c.encode("utf-8"): n for c, n in chunks.items()}, num_merges)
        if len(merges) < num_merges:
            warnings.warn(f"the training text ran out of pairs to merge after {len(merges)} merges, so "
                          f"vocab_size is {smallest + len(merges)} instead of {vocab_size}; train on more "
                          "text or ask for a smaller vocab_size", stacklevel=2)
        return cls(merges, special_tokens)

    @property
    def merges(self) -> MappingProxyType:
        """Read-only {(left id, right id): new id}, in the order the merges were learned."""
        return MappingProxyType(self._shown_merges)

    @property
    def special_tokens(self) -> MappingProxyType:
        """Read-only {special token text: id}."""
        return MappingProxyType(self._special)

    def encode(self, text: str, special: bool = True) -> list[int]:
        """Turn text into ids; special=False treats special-token text as plain text (for untrusted input)."""
        check_text(text)
        if not special or self._special_re is None:
            return self._encode_plain(text)
        ids: list[int] = []
        # Splitting on a capturing group alternates: plain text, special token, plain text, ...
        for k, part in enumerate(self._special_re.split(text)):
            if k % 2:
                ids.append(self._special[part])
            else:
                ids += self._encode_plain(part)
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        """Encode text that holds no special tokens, one pre-token at a time."""
        ids: list[int] = []
        for chunk in self._split.findall(text):
            cached = self._cache.get(chunk)
            if cached is None:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()  # keep memory bounded on huge, varied texts
                cached = self._cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
            ids += cached
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        """Apply merges to one pre-token, always the earliest-learned pair present first (as in training)."""
        ids = list(data)
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self._merges.get(p, float("inf")))
            if pair not in self._merges:
                break
            ids = _merge(ids, pair, self._merges[pair])
        return ids if self._id_map is None else [self._id_map[i] for i in ids]

    def decode(self, ids) -> str:
        """Join the ids' bytes and decode them; bytes that are not valid UTF-8 become '\ufffd'."""
        data = b"".join(self.vocab[i] for i in self._check_ids(ids))
        return data.decode("utf-8", errors="replace")

    def token_bytes(self, id: int) -> bytes:
        """The bytes one token stands for."""
        return self.vocab[self._check_ids([id])[0]]

    def token_str(self, id: int) -> str:
        """A readable form of one token: '·' for space, '↵' for newline, '\\xNN' for part of a character."""
        text = self.token_bytes(id).decode("utf-8", errors="backslashreplace")
        return text.replace(" ", "·").replace("\n", "↵").replace("\t", "⇥")

    def tokens(self, text: str) -> list[str]:
        """The readable pieces (token_str) that encode(text) cuts text into."""
        return [self.token_str(i) for i in self.encode(text)]

    def show_merges(self, n: int = 20) -> str:
        """A text table of the first n merges (rank, left, right, merged token and its id); print it."""
        n = as_int(n, "n (how many merges to show)", 0)
        rows = [("rank", "left", "right", "merged")]
        for rank, ((left, right), new) in enumerate(list(self._shown_merges.items())[:n]):
            rows.append((str(rank), self.token_str(left), self.token_str(right),
                         f"{self.token_str(new)} ({new})"))
        widths = [max(len(row[c]) for row in rows) for c in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

    def _to_json(self) -> dict:
        """Merges as [left, right] internal ids in learned order, special tokens, pattern, id_map."""
        data = {"merges": list(self._merges), "special_tokens": list(self._special), "pattern": self.pattern}
        return data if self._id_map is None else {**data, "id_map": list(self._id_map)}

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)}, "
                f"special_tokens={list(self._special)})")


# ------------------------------------------------------------------------------ save / load

def load_tokenizer(path) -> Tokenizer:
    """Read any tokenizer written by save(), choosing the class from the file's "type" field."""
    return _load(path)


def _load(path, expected: type | None = None) -> Tokenizer:
    """Read a saved tokenizer, raising ValueError that names the file and the problem if it is unusable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a saved tokenizer (not valid JSON: {e}); {_FIX}") from None
    if not isinstance(data, dict) or "type" not in data or "version" not in data:
        raise ValueError(f"{path} is not a saved tokenizer (no 'type' and 'version' fields); {_FIX}")
    if type(data["version"]) is not int or not 1 <= data["version"] <= FORMAT_VERSION:
        raise ValueError(f"{path} was saved in tokenizer format version {data['version']!r}, but this "
                         f"llmlab reads versions 1 to {FORMAT_VERSION}; {_FIX}")
    types = {c.kind: c for c in (CharTokenizer, WordTokenizer, BPETokenizer)}
    if not isinstance(data["type"], str) or data["type"] not in types:
        raise ValueError(f"{path} has unknown tokenizer type {data['type']!r} "
                         f"(known: {', '.join(types)}); {_FIX}")
    if expected is not None and data["type"] != expected.kind:
        raise ValueError(f"{path} holds a {data['type']!r} tokenizer, not a {expected.kind!r} one: "
                         "read it with llmlab.tokenizers.load_tokenizer(path)")
    try:
        cls = types[data["type"]]
        return cls(**{k: data[k] for k in cls._json_fields if k in data or k not in cls._json_optional})
    except KeyError as e:
        raise ValueError(f"{path} is missing the field {e.args[0]!r}; {_FIX}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path} is corrupt: {e}; {_FIX}") from None
