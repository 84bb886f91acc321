"""The corpora the course ships in data/: checksum-verified loading, splits and batches."""
from __future__ import annotations

import hashlib
import itertools
import os
import re
from pathlib import Path
from types import MappingProxyType

import torch

from llmlab._validate_input import as_id_tensor, as_int, is_number

__all__ = [
    "CORPORA",
    "ChecksumError",
    "data_dir",
    "corpus_path",
    "verify",
    "load_text",
    "read_text_file",
    "train_val_split",
    "random_batch",
    "load_sentiment",
    "sentiment_splits",
    "SENTIMENT_SPLIT",
]

# Short names for the shipped text files (paths relative to data/). Read-only on purpose.
CORPORA = MappingProxyType({
    "tinyshakespeare": "tinyshakespeare.txt",
    "tang300": "chinese/tang300.txt",
    "tang300_simplified": "chinese/tang300_simplified.txt",
    "tang5": "chinese/tang_5char_quatrains.txt",
    "tang5_simplified": "chinese/tang_5char_quatrains_simplified.txt",
    "tang7": "chinese/tang_7char_quatrains.txt",
    "tang7_simplified": "chinese/tang_7char_quatrains_simplified.txt",
    "emma": "gutenberg/austen-emma.txt",
    "persuasion": "gutenberg/austen-persuasion.txt",
    "sense": "gutenberg/austen-sense.txt",
    "wikitext2_valid": "wikitext-2/valid.txt",
    "wikitext2_test": "wikitext-2/test.txt",
})

SENTIMENT_SOURCES = ("amazon", "imdb", "yelp")
SENTIMENT_SPLIT = MappingProxyType({"train": 0.70, "val": 0.15, "test": 0.15})
_SENTIMENT_FILES = MappingProxyType({
    "amazon": "sentiment/amazon_cells_labelled.txt",
    "imdb": "sentiment/imdb_labelled.txt",
    "yelp": "sentiment/yelp_labelled.txt",
})


class ChecksumError(ValueError):
    """A shipped data file does not match its SHA-256 in data/SHA256SUMS."""


def data_dir() -> Path:
    """Return the folder holding the shipped data (LLMLAB_DATA overrides the repository's data/)."""
    override = os.environ.get("LLMLAB_DATA")
    root = Path(override) if override else Path(__file__).resolve().parent.parent / "data"
    if not (root / "SHA256SUMS").is_file():
        raise FileNotFoundError(
            f"llmlab cannot find its data folder at {root} (no SHA256SUMS there). "
            "Install llmlab from a clone of the course with `pip install -e .`, or set the "
            "environment variable LLMLAB_DATA to the course's data/ folder."
        )
    return root


def _expected_checksums(root: Path) -> dict[str, str]:
    """Parse data/SHA256SUMS into {relative path: hex digest}."""
    sums = {}
    lines = (root / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            raise ChecksumError(
                f"{root / 'SHA256SUMS'} line {lineno} is malformed: {line!r}; each line must be "
                "'<64 hex digits>  <path in data/>' as written by `sha256sum`. "
                f"{_restore_hint(root, 'SHA256SUMS')}")
        sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def _restore_hint(root: Path, rel: str) -> str:
    """How to get a shipped data file back: git for the repository's data/, a copy for LLMLAB_DATA."""
    if os.environ.get("LLMLAB_DATA"):
        return (f"Copy {rel} from the course repository's data/ folder into {root} again "
                "(LLMLAB_DATA points there, so git cannot restore it).")
    return f"Restore it with `git checkout -- data/{rel}` (or copy it again from the course repository)."


def corpus_path(name: str) -> Path:
    """Return the path of a shipped corpus, given its short name (see CORPORA) or its path in data/."""
    known = ", ".join(sorted(CORPORA))
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name must be a corpus name (a str), got {type(name).__name__} {name!r}; "
                        f"choose one of: {known}")
    rel = CORPORA.get(os.fspath(name), os.fspath(name))
    root = data_dir()
    path = root / rel
    if not path.is_file():
        if name in CORPORA or Path(rel).as_posix() in _expected_checksums(root):
            raise FileNotFoundError(f"{path} is missing: the corpus {name!r} ships with the course "
                                    f"but its file is not in the data folder. "
                                    f"{_restore_hint(root, Path(rel).as_posix())}")
        raise KeyError(f"unknown corpus {name!r}; choose one of: {known}")
    return path


def verify(path: str | Path) -> Path:
    """Check a data file's SHA-256 against data/SHA256SUMS; return its path or raise ChecksumError."""
    root = data_dir()
    path = Path(path).resolve()
    try:
        rel = path.relative_to(root.resolve()).as_posix()
    except ValueError:
        raise ValueError(f"{path} is not inside the course data folder {root}") from None
    expected = _expected_checksums(root).get(rel)
    if expected is None:
        raise ChecksumError(f"data/{rel} has no entry in data/SHA256SUMS, so it cannot be verified")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"data/{rel} is corrupted or was edited: its SHA-256 is {actual[:16]}..., "
            f"expected {expected[:16]}.... {_restore_hint(root, rel)}"
        )
    return path


def load_text(name: str) -> str:
    """Return a shipped corpus as one string after verifying its checksum."""
    path = verify(corpus_path(name))
    # newline="" keeps the bytes as shipped (every file uses LF line ends).
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def read_text_file(path, block_size: int | None = None) -> str:
    """The text of your own UTF-8 file, line ends made "\\n"; errors name the problem and the fix.

    With block_size, the text must hold at least block_size + 1 characters: one window for the
    model to read plus the character after it to predict.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"there is no file {path} (relative paths start from the current "
                                f"folder, {Path.cwd()}): check the name and the folder")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give the path of a text file inside it")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OSError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(_not_utf8_message(path, data, e)) from None
    # A byte-order mark (Windows editors) is not text; \r\n and \r become \n, as open() does.
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"{path} is empty{' (only whitespace)' if text else ''}: put the text "
                         "to train on in it and save it as UTF-8")
    if block_size is not None:
        block_size = as_int(block_size, "block_size", 1)
        if len(text) < block_size + 1:
            raise ValueError(
                f"{path} holds {len(text)} characters, too few for block_size={block_size}: a model "
                f"reading {block_size} characters needs at least {block_size + 1} (a window plus the "
                f"next character), and far more to learn anything; add text (a few thousand "
                "characters at least) or choose a smaller block_size")
    return text


def _not_utf8_message(path: Path, data: bytes, e: UnicodeDecodeError) -> str:
    """Which byte is not UTF-8, and how to convert the file (GBK if it reads as Chinese)."""
    where = f"byte {data[e.start]:#04x} at offset {e.start}"
    try:
        chinese = re.search("[\u4e00-\u9fff]", data.decode("gb18030")) is not None
    except UnicodeDecodeError:
        chinese = False
    source = "gb18030" if chinese else "latin1"  # GB18030 extends GBK
    guess = " It reads as Chinese in GBK, the older Chinese encoding." if chinese else ""
    return (f"{path} is not UTF-8 text ({where} cannot be decoded).{guess} Save it again as UTF-8 "
            f"(in your editor: Save As, encoding UTF-8), or convert it with "
            f"`iconv -f {source} -t utf-8 {path} > {path.stem}.utf8{path.suffix}`")


def train_val_split(data, val_fraction: float = 0.1):
    """Split a sequence (ids, a tensor, or a str of text) into its first (1 - val_fraction) and last val_fraction."""
    if not is_number(val_fraction) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be a number between 0 and 1 (exclusive), got "
                         f"{val_fraction!r}; 0.1 keeps the last 10% for validation")
    if not hasattr(data, "__len__") or not hasattr(data, "__getitem__") or isinstance(data, (dict, set)):
        raise TypeError(f"data must be a sequence that can be sliced (token ids, a tensor or a str), "
                        f"got {type(data).__name__}")
    n = len(data)
    cut = int(round(n * (1.0 - val_fraction)))
    if cut <= 0 or cut >= n:
        raise ValueError(f"cannot split {n} items with val_fraction={val_fraction}: one part would be empty")
    # Contiguous, not shuffled: the validation text is text the model has never seen.
    return data[:cut], data[cut:]


def random_batch(ids: torch.Tensor, batch_size: int, block_size: int,
                 generator: torch.Generator | None = None, device=None):
    """Sample batch_size random windows of block_size ids; return inputs x and next-token targets y."""
    ids = as_id_tensor(ids, "ids")
    if ids.dim() != 1:
        raise ValueError(f"ids must be a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
    batch_size = as_int(batch_size, "batch_size", 1)
    block_size = as_int(block_size, "block_size", 1)
    if len(ids) < block_size + 1:
        raise ValueError(
            f"need at least block_size + 1 = {block_size + 1} ids for one window, got {len(ids)}: "
            "use a smaller block_size or more text"
        )
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)  # (T,)
    index = starts[:, None] + offsets[None, :]  # (B, T)
    x = ids[index]  # (B, T)
    y = ids[index + 1]  # (B, T): each position's target is the next token
    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y


def load_sentiment(source="all", split: str | None = None) -> list[tuple[str, int]]:
    """Return (sentence, label) pairs from the UCI sentiment sentences; label 1 = positive.

    source: "all", one of SENTIMENT_SOURCES, or a list of them. split: None (every sentence) or
    "train" / "val" / "test", the course's fixed split (see sentiment_splits).
    """
    sources = SENTIMENT_SOURCES if source == "all" else \
        tuple(source) if isinstance(source, (list, tuple)) else (source,)
    if split is not None and split not in SENTIMENT_SPLIT:
        raise ValueError(f"unknown split {split!r}; choose None or one of {tuple(SENTIMENT_SPLIT)}")
    assigned = sentiment_splits() if split is not None else {}
    pairs: list[tuple[str, int]] = []
    for src in sources:
        pairs += [p for p in _read_sentiment(src) if split is None or assigned[p[0]] == split]
    return pairs


def _read_sentiment(src: str) -> list[tuple[str, int]]:
    """The (sentence, label) pairs of one source file, checksum-verified."""
    if not isinstance(src, str) or src not in _SENTIMENT_FILES:
        raise ValueError(f"unknown sentiment source {src!r}; choose 'all' or one or more of "
                         f"{SENTIMENT_SOURCES}")
    path = verify(data_dir() / _SENTIMENT_FILES[src])
    text = path.read_text(encoding="utf-8")
    pairs = []
    # Split on "\n" only: imdb_labelled.txt contains U+0085 (NEXT LINE) inside sentences,
    # which str.splitlines() would wrongly treat as a line break.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        sentence, sep, label = line.rstrip("\r").rpartition("\t")
        if not sep or label.strip() not in ("0", "1"):
            raise ValueError(f"{_SENTIMENT_FILES[src]} line {lineno}: expected 'sentence<TAB>0|1'")
        pairs.append((sentence.strip(), int(label)))
    return pairs


def sentiment_splits() -> dict[str, str]:
    """The course's fixed split: sentence -> "train" / "val" / "test" (70 / 15 / 15 %).

    Stratified: each (source, label) group of 500 is split 70/15/15 on its own, so every split
    has the three sources and both labels in equal shares. Within a group the order is the
    SHA-256 of the lower-cased sentence: no random generator, so the split is the same on every
    machine and version. A sentence that occurs more than once (18 do) always lands in the split
    of its first occurrence, so no test sentence is ever seen in training.
    """
    split_of: dict[str, str] = {}
    bounds = list(itertools.accumulate(SENTIMENT_SPLIT.values()))
    for src in SENTIMENT_SOURCES:
        pairs = _read_sentiment(src)
        for label in (0, 1):
            group = sorted({t for t, y in pairs if y == label},
                           key=lambda t: hashlib.sha256(t.lower().encode("utf-8")).hexdigest())
            for rank, sentence in enumerate(group):
                name = next(n for n, b in zip(SENTIMENT_SPLIT, bounds) if rank < round(b * len(group)))
                split_of.setdefault(sentence, name)
    return split_of
