"""Tests for llmlab.data: checksums, corpora, splits, batches, the sentiment loader."""
import shutil

import pytest
import torch

from llmlab import data


def test_every_shipped_file_matches_its_checksum():
    root = data.data_dir()
    names = [line.split(maxsplit=1)[1].strip() for line in (root / "SHA256SUMS").read_text().splitlines() if line.strip()]
    assert len(names) >= 15
    for name in names:
        assert data.verify(root / name) == (root / name).resolve()


def test_load_text_by_short_name():
    text = data.load_text("tinyshakespeare")
    assert len(text) == 1115394
    assert text.startswith("First Citizen:")
    poems = data.load_text("tang300")
    assert "床前明月光" in poems or "月" in poems


def test_unknown_corpus_lists_the_choices():
    with pytest.raises(KeyError, match="tinyshakespeare"):
        data.load_text("shakespear")


def _copy_data(tmp_path, monkeypatch):
    copy = tmp_path / "data"
    shutil.copytree(data.data_dir(), copy)
    monkeypatch.setenv("LLMLAB_DATA", str(copy))
    return copy


def test_corrupted_file_fails_with_a_checksum_error_naming_it_and_the_fix(tmp_path, monkeypatch):
    copy = _copy_data(tmp_path, monkeypatch)
    target = copy / "tinyshakespeare.txt"
    target.write_bytes(target.read_bytes().replace(b"First Citizen", b"First Citizen!", 1))
    with pytest.raises(data.ChecksumError) as err:
        data.load_text("tinyshakespeare")
    msg = str(err.value)
    assert "data/tinyshakespeare.txt" in msg
    # With LLMLAB_DATA set the folder is not the git checkout, so git cannot restore the file.
    assert "git checkout" not in msg
    assert f"Copy tinyshakespeare.txt from the course repository's data/ folder into {copy}" in msg


def test_restore_hint_is_git_for_the_repository_data_folder(monkeypatch):
    monkeypatch.delenv("LLMLAB_DATA", raising=False)
    hint = data._restore_hint(data.data_dir(), "tinyshakespeare.txt")
    assert "git checkout -- data/tinyshakespeare.txt" in hint


def test_a_missing_shipped_file_says_missing_and_how_to_restore_it(tmp_path, monkeypatch):
    copy = _copy_data(tmp_path, monkeypatch)
    (copy / "tinyshakespeare.txt").unlink()
    for name in ("tinyshakespeare", "tinyshakespeare.txt"):
        with pytest.raises(FileNotFoundError) as err:
            data.load_text(name)
        msg = str(err.value)
        assert "tinyshakespeare.txt is missing" in msg and "unknown corpus" not in msg
        assert f"into {copy}" in msg


@pytest.mark.parametrize("line", ["deadbeef  tinyshakespeare.txt", "just-one-field", "z" * 64 + "  x.txt"])
def test_a_malformed_sha256sums_line_is_named(tmp_path, monkeypatch, line):
    copy = _copy_data(tmp_path, monkeypatch)
    sums = copy / "SHA256SUMS"
    sums.write_text(sums.read_text() + "\n" + line + "\n")
    n = len(sums.read_text().splitlines())
    with pytest.raises(data.ChecksumError, match=f"SHA256SUMS line {n} is malformed: {line!r}"):
        data.load_text("tinyshakespeare")


@pytest.mark.parametrize("name", [3, None, ["tinyshakespeare"], b"tinyshakespeare"])
def test_load_text_needs_a_corpus_name(name):
    with pytest.raises(TypeError, match="must be a corpus name .*choose one of: .*tinyshakespeare"):
        data.load_text(name)


@pytest.mark.parametrize("source", [["yelp", 3], 1, None, {"yelp"}])
def test_load_sentiment_source_must_be_a_name(source):
    with pytest.raises(ValueError, match="unknown sentiment source"):
        data.load_sentiment(source)


def test_corrupted_sentiment_file_is_caught_too(tmp_path, monkeypatch):
    copy = _copy_data(tmp_path, monkeypatch)
    with open(copy / "sentiment/yelp_labelled.txt", "a", encoding="utf-8") as f:
        f.write("extra line\t1\n")
    with pytest.raises(data.ChecksumError, match="yelp_labelled"):
        data.load_sentiment("yelp")


def test_missing_data_folder_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="LLMLAB_DATA"):
        data.load_text("tinyshakespeare")


def test_train_val_split_is_contiguous_and_complete():
    seq = list(range(100))
    train, val = data.train_val_split(seq, 0.1)
    assert train == list(range(90)) and val == list(range(90, 100))
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(seq, 1.5)
    with pytest.raises(ValueError, match="empty"):
        data.train_val_split([1, 2], 0.1)


def test_random_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(1000)
    g = torch.Generator().manual_seed(0)
    x, y = data.random_batch(ids, batch_size=4, block_size=8, generator=g)
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y, x + 1)  # ids are consecutive, so the next token is id + 1
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 7, dtype=torch.long))  # contiguous windows
    assert int(x.max()) + 1 <= 999


def test_random_batch_is_reproducible_and_covers_the_end():
    ids = torch.arange(20)
    a = data.random_batch(ids, 64, 5, generator=torch.Generator().manual_seed(1))
    b = data.random_batch(ids, 64, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    last_targets = set(a[1][:, -1].tolist())
    assert 19 in last_targets  # the final token can be a target


def test_random_batch_rejects_bad_input():
    with pytest.raises(ValueError, match="block_size"):
        data.random_batch(torch.arange(5), 2, 8)
    with pytest.raises(ValueError, match="1-D"):
        data.random_batch(torch.zeros(3, 3, dtype=torch.long), 2, 1)


def test_sentiment_loader_keeps_u0085_inside_sentences():
    imdb = data.load_sentiment("imdb")
    assert len(imdb) == 1000  # splitlines() would break lines at U+0085 and miscount
    assert sum(label for _, label in imdb) == 500
    assert any("\x85" in sentence for sentence, _ in imdb)
    everything = data.load_sentiment()
    assert len(everything) == 3000
    assert {label for _, label in everything} == {0, 1}
    with pytest.raises(ValueError, match="unknown sentiment source"):
        data.load_sentiment("twitter")


@pytest.mark.parametrize("fraction", ["0.1", None, float("nan"), True])
def test_train_val_split_needs_a_number_as_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction must be a number between 0 and 1"):
        data.train_val_split(list(range(10)), fraction)


def test_train_val_split_splits_text_and_refuses_what_cannot_be_sliced():
    assert data.train_val_split("abcdefghij") == ("abcdefghi", "j")  # a str is a sequence of characters
    for bad in (12345, None, {1, 2, 3}):
        with pytest.raises(TypeError, match="must be a sequence that can be sliced"):
            data.train_val_split(bad)


@pytest.mark.parametrize("ids, message", [
    (torch.tensor([1.5, 2.0, 3.0, 4.0]), "dtype torch.float32"),
    ([1.0, 2.0, 3.0, 4.0], "dtype torch.float32"),
    (torch.tensor([True, False, True, False]), "dtype torch.bool"),
    ("abcd", "got str; encode the text"),
])
def test_random_batch_refuses_ids_that_are_not_integers(ids, message):
    with pytest.raises((ValueError, TypeError), match=message):
        data.random_batch(ids, 2, 2)


@pytest.mark.parametrize("kwargs", [{"batch_size": 2.0}, {"batch_size": True}, {"block_size": 2.5},
                                    {"block_size": "2"}])
def test_random_batch_sizes_must_be_ints(kwargs):
    args = {"batch_size": 2, "block_size": 2, **kwargs}
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be an int >= 1"):
        data.random_batch(torch.arange(10), **args)


def test_the_sentiment_split_is_fixed_disjoint_stratified_and_complete():
    from collections import Counter

    from llmlab.data import SENTIMENT_SOURCES, load_sentiment, sentiment_splits
    splits = {name: load_sentiment(split=name) for name in ("train", "val", "test")}
    assert splits == {name: load_sentiment(split=name) for name in splits}  # deterministic
    assert sum(map(len, splits.values())) == len(load_sentiment()) == 3000
    texts = {name: {t for t, _ in pairs} for name, pairs in splits.items()}
    assert not (texts["train"] & texts["val"] or texts["train"] & texts["test"]
                or texts["val"] & texts["test"])  # disjoint, duplicates included
    for src in SENTIMENT_SOURCES:  # each source and label split 70 / 15 / 15 on its own
        for name, share in (("train", 0.70), ("val", 0.15), ("test", 0.15)):
            counts = Counter(y for _, y in load_sentiment(src, split=name))
            assert all(abs(counts[y] - share * 500) <= 3 for y in (0, 1)), (src, name, counts)
    assert set(sentiment_splits().values()) == {"train", "val", "test"}
    two = load_sentiment(["amazon", "yelp"], split="train")
    assert len(two) == len(load_sentiment("amazon", split="train")) + len(
        load_sentiment("yelp", split="train"))
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        load_sentiment(split="validation")
    with pytest.raises(ValueError, match="unknown sentiment source 'twitter'"):
        load_sentiment(["amazon", "twitter"])
