"""Tests for llmlab.pretrained: the shipped checkpoint loads, scores as documented, writes text, and
refuses a corrupted or missing file with a message that says how to restore it."""
import re
from pathlib import Path
import shutil

import pytest
import torch

from llmlab.data import ChecksumError, data_dir, load_text, train_val_split
from llmlab.gpt import GPT
from llmlab.pretrained import PRETRAINED, load_pretrained, pretrained_files
from llmlab.tokenizers import CharTokenizer
from llmlab.training import estimate_loss

# data/pretrained/README.md: the shipped model's validation loss on the last 10 % of Tiny
# Shakespeare (estimate_loss, 200 batches of 12 x 64 at seed 0: 1.5765; the whole text: 1.5772).
DOCUMENTED_VAL_LOSS = 1.577
TOLERANCE = 0.03  # 20 seeded batches instead of 200 give 1.595: sampling error, not a regression


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def pretrained():
    """The shipped model and tokenizer, loaded once for the module."""
    return load_pretrained("shakespeare_char")


def test_loads_lesson_06_gpt_and_its_character_tokenizer(pretrained):
    model, tokenizer = pretrained
    assert isinstance(model, GPT) and isinstance(tokenizer, CharTokenizer)
    assert not model.training  # ready for generation and evaluation
    cfg = model.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (4, 4, 128, 64, 65)
    # The tokenizer is the one the CLI trains on the corpus: its sorted characters.
    assert tokenizer.vocab == CharTokenizer.train(load_text("tinyshakespeare")).vocab
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_validation_loss_is_the_documented_one(pretrained):
    model, tokenizer = pretrained
    text = load_text("tinyshakespeare")
    _, val_ids = train_val_split(torch.tensor(tokenizer.encode(text)), 0.1)
    loss = estimate_loss(model, val_ids, batch_size=12, block_size=64, eval_steps=20, seed=0)
    assert loss == pytest.approx(DOCUMENTED_VAL_LOSS, abs=TOLERANCE)
    assert loss < 1.8  # far below an untrained model's ln(65) = 4.17


def test_generates_shakespeare_like_text(pretrained):
    model, tokenizer = pretrained
    prompt = torch.tensor([tokenizer.encode("ROMEO:\n")])  # (1, 7)
    gen = torch.Generator().manual_seed(1337)
    out = model.generate(prompt, 300, temperature=0.8, generator=gen)  # (1, 307)
    assert out.shape == (1, 307)
    text = tokenizer.decode(out[0].tolist())
    assert text.startswith("ROMEO:\n")
    # Most of what it writes are real words of the play (a random model manages almost none).
    known = set(re.findall(r"[a-z]+", load_text("tinyshakespeare").lower()))
    words = re.findall(r"[a-z]+", text[7:].lower())
    assert len(words) > 30
    assert sum(w in known for w in words) / len(words) > 0.7
    again = model.generate(prompt, 300, temperature=0.8, generator=torch.Generator().manual_seed(1337))
    assert torch.equal(out, again)  # seeded sampling repeats


def _copy_pretrained(tmp_path, monkeypatch):
    """A data folder with SHA256SUMS and the pretrained files only, selected via LLMLAB_DATA."""
    copy = tmp_path / "data"
    (copy / "pretrained").mkdir(parents=True)
    shutil.copy(data_dir() / "SHA256SUMS", copy / "SHA256SUMS")
    for rel in PRETRAINED["shakespeare_char"]:
        shutil.copy(data_dir() / rel, copy / rel)
    monkeypatch.setenv("LLMLAB_DATA", str(copy))
    return copy


def test_the_copy_loads_and_a_corrupted_checkpoint_fails_its_checksum(tmp_path, monkeypatch):
    copy = _copy_pretrained(tmp_path, monkeypatch)
    weights, _ = pretrained_files("shakespeare_char")
    assert weights == (copy / "pretrained/shakespeare_char.pt").resolve()
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
    weights.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"data/pretrained/shakespeare_char\.pt is corrupted.*"
                                            r"Copy pretrained/shakespeare_char\.pt from the course repository's data/ "
                                            r"folder into .* again \(LLMLAB_DATA points there"):
        load_pretrained("shakespeare_char")


def test_an_edited_tokenizer_and_a_missing_file_say_how_to_restore_them(tmp_path, monkeypatch):
    copy = _copy_pretrained(tmp_path, monkeypatch)
    tok = copy / "pretrained/shakespeare_char.tokenizer.json"
    tok.write_text(tok.read_text().replace('"char"', '"char" '))
    with pytest.raises(ChecksumError, match=r"shakespeare_char\.tokenizer\.json.*Copy pretrained/"
                                            r"shakespeare_char\.tokenizer\.json from"):
        load_pretrained()
    (copy / "pretrained/shakespeare_char.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing data/pretrained/shakespeare_char\.pt.*"
                                                r"Copy pretrained/shakespeare_char\.pt from"):
        load_pretrained()


def test_unknown_name_lists_the_choices():
    with pytest.raises(KeyError, match="unknown pretrained model 'shakespeare'.*shakespeare_char"):
        load_pretrained("shakespeare")


def test_the_english_base_model_matches_its_readme_and_reads_any_text():
    import math

    from llmlab.checkpoint import load_checkpoint
    model, tok = load_pretrained("english_bpe")
    assert not model.training and tok.vocab_size == model.config.vocab_size == 2048
    assert model.num_parameters(non_embedding=False) == 2_197_632
    readme = (Path(__file__).resolve().parent.parent / "data/pretrained/README.md").read_text()
    assert "2,197,632 parameters" in readme and "validation **3.669**" in readme
    review = "Ça marche ! 10/10 😀 — the café's Wi-Fi was great"
    assert tok.decode(tok.encode(review)) == review  # byte-level: no unknown characters
    saved = load_checkpoint(pretrained_files("english_bpe")[0])
    names = saved.extra["data"]["corpus"].split(",")
    text = "\n\n".join(load_text(n) for n in names)
    _, val = train_val_split(torch.tensor(tok.encode(text)), saved.extra["data"]["val_fraction"])
    cfg = saved.train_config
    loss = estimate_loss(model, val, cfg["batch_size"], cfg["block_size"], cfg["eval_steps"],
                         seed=cfg["seed"])
    assert math.isclose(loss, saved.history[-1]["val_loss"], abs_tol=2e-3)
    assert f"{saved.history[-1]['val_loss']:.3f}" == "3.669"


def test_the_poem_model_matches_its_readme_and_scores_on_the_held_out_poems():
    import math

    from llmlab.checkpoint import load_checkpoint
    from llmlab.poems import FORM7, load_quatrains, poems_text, split_poems
    model, tok = load_pretrained("tang5_char")
    assert not model.training and isinstance(tok, CharTokenizer)
    assert tok.vocab_size == model.config.vocab_size == 5186
    assert model.num_parameters(non_embedding=False) == 1_455_488
    cfg = model.config
    assert (cfg.norm, cfg.mlp, cfg.positions, cfg.bias, cfg.tie_weights) == (
        "rmsnorm", "swiglu", "rope", False, True)
    readme = (Path(__file__).resolve().parent.parent / "data/pretrained/README.md").read_text()
    assert "1,455,488 parameters" in readme and "validation **5.725**" in readme
    saved = load_checkpoint(pretrained_files("tang5_char")[0])
    assert saved.extra["data"]["corpus"] == "tang7_quatrains,tang5_train"
    assert saved.extra["data"]["val_corpus"] == "tang5_val"
    assert f"{saved.history[-1]['val_loss']:.3f}" == "5.725"
    train, val = split_poems(load_quatrains())
    seven = load_quatrains("tang7_simplified", FORM7)
    # The vocabulary is exactly the characters of what it read and was validated on.
    assert set(tok.vocab) == set(poems_text(seven) + "\n\n" + poems_text(train) + poems_text(val))
    val_ids = torch.tensor(tok.encode(poems_text(val)))
    c = saved.train_config
    loss = estimate_loss(model, val_ids, c["batch_size"], c["block_size"], c["eval_steps"],
                         seed=c["seed"])
    assert math.isclose(loss, saved.history[-1]["val_loss"], abs_tol=2e-3)
    assert loss < 6.0  # far below the unigram baseline's 6.63 (lesson 10) and ln(5186) = 8.55
