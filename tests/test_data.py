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
    assert "git checkout -- data/tinyshakespeare.txt" in msg


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
