"""Tests for llmlab.hf: a course GPT exported for Hugging Face transformers (and a GPT-2 folder
read back into llmlab) gives the same logits, attention, greedy tokens and token ids.

Offline, with small random models only; transformers is imported once for the module.
"""
import json
import random
import sys

import pytest
import torch

import transformers  # in the tested set (requirements.txt): a missing one fails, never skips
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel  # noqa: E402

from llmlab.data import load_text  # noqa: E402
from llmlab.gpt import GPT, GPTConfig  # noqa: E402
from llmlab.hf import bytes_to_unicode, gpt2_tokenizer, load_hf, save_hf  # noqa: E402
from llmlab.pretrained import load_pretrained  # noqa: E402
from llmlab.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, load_tokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

EOT = "<|endoftext|>"
TEXTS = [
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "Hello, world! It's 2024: 3.14159 apples cost $12,345.67 (about 10%)...",
    "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nnewlines\n",
    "Café naïve façade — résumé, Zürich, São Paulo, Ελληνικά, Кириллица",
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "emoji 🙂👍🏽 flags 🇫🇷 family 👨‍👩‍👧 ok",
    f"end of one text{EOT}start of the next {EOT}{EOT}",
    "don't I'll we've they're she'd YOU'RE x'y ''",
]
# Where the course's "gpt2" pattern (for `re`) and GPT-2's own regex cut text differently:
# a combining accent (NFD), non-decimal numerals, the separators U+001C..U+001F.
ODD = "cafe\u0301 re\u0301sume\u0301 x\u00b2 y\u00b2 \u00bd cup \u2167 a\x1cb"


def make_text() -> str:
    """A few KB of the shipped corpora, plus the odd characters above, many times."""
    return (load_text("tinyshakespeare")[:6000] + EOT + load_text("tang300")[:800] + EOT
            + (ODD + " ") * 40 + " ".join(TEXTS))


@pytest.fixture(scope="module")
def bpe():
    """A BPE tokenizer of about 330 ids, trained as the course trains them (pattern "gpt2")."""
    return BPETokenizer.train(make_text(), vocab_size=330, special_tokens=[EOT])


def random_gpt(vocab_size: int, seed: int, bias: bool = True) -> GPT:
    """A small GPT-2 preset with sizes drawn from a seeded RNG and large random weights (so a
    wrong transpose or a missing bias would show in the logits)."""
    rng = random.Random(seed)
    n_head = rng.choice([2, 4])
    config = GPTConfig(vocab_size=vocab_size, block_size=rng.choice([24, 32, 40]), n_layer=2,
                       n_head=n_head, n_embd=n_head * rng.choice([8, 16]),
                       dropout=rng.choice([0.0, 0.1]), bias=bias)
    torch.manual_seed(seed)
    model = GPT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


def hf_model(folder) -> GPT2LMHeadModel:
    return GPT2LMHeadModel.from_pretrained(folder, attn_implementation="eager",
                                           local_files_only=True).eval()


def until_eos(ids: list[int], eos) -> list[int]:
    """ids cut after the first eos: where Hugging Face's generate stops."""
    return ids[:ids.index(eos) + 1] if eos in ids else ids


@pytest.mark.parametrize("bias", [True, False])
def test_export_gives_the_same_logits_attention_and_greedy_tokens(tmp_path, bpe, bias):
    model = random_gpt(bpe.vocab_size, seed=11 if bias else 12, bias=bias)
    folder = save_hf(model, bpe, tmp_path / "export")
    hf = hf_model(folder)
    c = model.config
    assert (hf.config.n_positions, hf.config.n_embd, hf.config.n_layer, hf.config.n_head,
            hf.config.vocab_size) == (c.block_size, c.n_embd, c.n_layer, c.n_head, c.vocab_size)
    assert hf.config.resid_pdrop == hf.config.attn_pdrop == hf.config.embd_pdrop == c.dropout
    assert hf.config.activation_function == "gelu_new" and hf.config.layer_norm_epsilon == 1e-5
    assert hf.config.bos_token_id == hf.config.eos_token_id == bpe.special_tokens[EOT]
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied
    if not bias:
        assert torch.count_nonzero(hf.transformer.h[0].attn.c_attn.bias) == 0

    idx = torch.randint(0, c.vocab_size, (2, c.block_size), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(idx, return_attention=True)
        theirs = hf(idx, output_attentions=True)
    assert ours.logits.abs().max() > 1.0  # big enough that a mistake would show
    assert (ours.logits - theirs.logits).abs().max() <= 1e-5
    assert len(theirs.attentions) == c.n_layer
    assert (ours.attention - torch.stack(theirs.attentions)).abs().max() <= 1e-5

    prompt = torch.tensor([bpe.encode("First Citizen:")])
    n_new = c.block_size - prompt.shape[1]
    ours = model.generate(prompt, n_new, greedy=True)[0].tolist()
    theirs = hf.generate(prompt, do_sample=False, max_new_tokens=n_new)[0].tolist()
    assert theirs == until_eos(ours, bpe.special_tokens[EOT]) and len(theirs) > prompt.shape[1] + 3


def test_exported_tokenizer_gives_the_same_ids_and_text(tmp_path, bpe):
    folder = save_hf(random_gpt(bpe.vocab_size, seed=3), bpe, tmp_path / "export")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert len(tok) == bpe.vocab_size
    assert tok.eos_token == tok.bos_token == EOT and tok.eos_token_id == bpe.special_tokens[EOT]
    for text in TEXTS:
        ids = tok(text)["input_ids"]
        assert ids == bpe.encode(text), text
        assert tok.decode(ids) == bpe.decode(ids) == text
    assert "".join(tok.convert_ids_to_tokens(bpe.encode(" the\n"))) == "ĠtheĊ"  # GPT-2's spelling
    # The export runs GPT-2's own regex. With the course's "gpt2" pattern, text such as ODD splits
    # differently, so it encodes differently; a tokenizer made with "gpt2-exact" matches everywhere.
    assert tok(ODD)["input_ids"] != bpe.encode(ODD)
    exact = BPETokenizer(list(bpe.merges), list(bpe.special_tokens), pattern="gpt2-exact")
    folder = save_hf(random_gpt(exact.vocab_size, seed=3), exact, tmp_path / "exact")
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    for text in TEXTS + [ODD]:
        assert tok(text)["input_ids"] == exact.encode(text), text


def gpt2_files(folder, bpe: BPETokenizer) -> dict[int, int]:
    """Write vocab.json and merges.txt of bpe's merges laid out as GPT-2's are: the bytes in
    bytes_to_unicode order ('!' is id 0), the merges from 256 in rank order, <|endoftext|> last.
    Returns {bpe's id: the id in these files}."""
    b2u = bytes_to_unicode()
    order = sorted(range(256), key=lambda b: (ord(b2u[b]) >= 256, ord(b2u[b])))
    new_id = {b: i for i, b in enumerate(order)}
    for rank, new in enumerate(bpe.merges.values()):
        new_id[new] = 256 + rank
    new_id[bpe.special_tokens[EOT]] = len(new_id)
    text = {i: "".join(b2u[b] for b in bpe.vocab[i]) for i in range(256 + len(bpe.merges))}
    vocab = {text[i]: new_id[i] for i in text} | {EOT: new_id[bpe.special_tokens[EOT]]}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = [f"{text[a]} {text[b]}" for a, b in bpe.merges]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return new_id


def test_load_hf_reads_a_gpt2_checkpoint_written_by_transformers(tmp_path, bpe):
    folder = tmp_path / "gpt2"
    torch.manual_seed(5)
    # reorder_and_upcast_attn only reorders float32 operations: llmlab computes the same function.
    config = GPT2Config(vocab_size=bpe.vocab_size, n_positions=32, n_embd=48, n_layer=2, n_head=3,
                        bos_token_id=bpe.vocab_size - 1, eos_token_id=bpe.vocab_size - 1,
                        reorder_and_upcast_attn=True, attn_implementation="eager")
    hf = GPT2LMHeadModel(config).eval()
    assert hf.config._attn_implementation == "eager"  # the reordered path runs only there
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0.0, 0.2)
    hf.save_pretrained(folder)
    new_id = gpt2_files(folder, bpe)
    model, tok = load_hf(folder)
    assert not model.training and model.config.is_gpt2 and model.config.block_size == 32
    idx = torch.randint(0, bpe.vocab_size, (2, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(idx).logits - hf(idx).logits).abs().max() <= 1e-5

    # The tokenizer gives GPT-2's ids, those of Hugging Face's tokenizer of the same files.
    theirs = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert tok.pattern == "gpt2-exact" and tok.vocab_size == len(theirs) == bpe.vocab_size
    assert tok.encode("!") == [0] and tok.encode(EOT) == [bpe.vocab_size - 1]
    assert tok.special_tokens == {EOT: bpe.vocab_size - 1}
    for text in TEXTS + [ODD]:
        ids = theirs(text)["input_ids"]
        assert tok.encode(text) == ids, text
        assert tok.decode(ids) == text
    # ODD is cut differently by the course's "gpt2" pattern: the exact regex is what matched.
    assert [new_id[i] for i in bpe.encode(ODD)] != tok.encode(ODD)
    assert [new_id[i] for i in bpe.encode(TEXTS[0])] == tok.encode(TEXTS[0])
    # Its renumbering survives llmlab's own tokenizer file, and gpt2_tokenizer reads the same.
    tok.save(tmp_path / "tok.json")
    again = load_tokenizer(tmp_path / "tok.json")
    assert again.encode(ODD) == tok.encode(ODD) and again.vocab == tok.vocab
    assert gpt2_tokenizer(folder / "vocab.json", folder / "merges.txt").encode(ODD) == tok.encode(ODD)

    # transformers 5 saves a tokenizer as tokenizer.json only: load_hf reads that too.
    v5 = tmp_path / "v5"
    hf.save_pretrained(v5)
    theirs.save_pretrained(v5)
    assert not (v5 / "vocab.json").exists() and (v5 / "tokenizer.json").exists()
    _, from_json = load_hf(v5)
    assert from_json.vocab == tok.vocab and from_json.encode(ODD) == tok.encode(ODD)
    data = json.loads((v5 / "tokenizer.json").read_text(encoding="utf-8"))
    (v5 / "tokenizer.json").write_text(json.dumps({**data, "normalizer": {"type": "NFC"}}))
    with pytest.raises(ValueError, match="is not a GPT-2-style tokenizer"):
        load_hf(v5)


def test_load_hf_reads_hub_style_names_and_pytorch_model_bin(tmp_path, bpe):
    """Checkpoints on the Hub name weights without "transformer." and carry mask buffers."""
    model = random_gpt(bpe.vocab_size, seed=8)
    folder = save_hf(model, bpe, tmp_path / "hub")
    (folder / "model.safetensors").unlink()
    sd = {k.removeprefix("transformer."): v for k, v in model.gpt2_state_dict().items()
          if k != "lm_head.weight"}
    for i in range(model.config.n_layer):
        sd[f"h.{i}.attn.bias"] = torch.ones(1, 1, 4, 4).tril()
    torch.save(sd, folder / "pytorch_model.bin")
    loaded, _ = load_hf(folder)
    idx = torch.randint(0, bpe.vocab_size, (1, 16))
    with torch.no_grad():
        assert torch.equal(loaded(idx).logits, model(idx).logits)


def test_a_round_trip_keeps_model_and_tokenizer(tmp_path, bpe):
    model = random_gpt(bpe.vocab_size, seed=4)
    folder = save_hf(model, bpe, tmp_path / "export")
    loaded, tok = load_hf(folder)
    assert tok.vocab == bpe.vocab and tok.special_tokens == bpe.special_tokens
    assert loaded.config.dropout == model.config.dropout
    assert all(tok.encode(t) == bpe.encode(t) for t in TEXTS)
    idx = torch.randint(0, bpe.vocab_size, (1, 20))
    with torch.no_grad():
        assert torch.equal(loaded(idx).logits, model(idx).logits)


@pytest.fixture(scope="module")
def shakespeare_export(tmp_path_factory):
    model, tok = load_pretrained("shakespeare_char")
    return model, tok, save_hf(model, tok, tmp_path_factory.mktemp("hf") / "shakespeare")


def test_the_shipped_char_model_exports(shakespeare_export):
    model, tok, folder = shakespeare_export
    text = "ROMEO:\nBut soft, what light through yonder window breaks?"
    ids = AutoTokenizer.from_pretrained(folder, local_files_only=True)(text)["input_ids"]
    assert ids == tok.encode(text)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == 65 and vocab["Ġ"] == tok.encode(" ")[0] and vocab["Ċ"] == tok.encode("\n")[0]
    idx = torch.tensor([ids])
    with torch.no_grad():
        assert (hf_model(folder)(idx).logits - model(idx).logits).abs().max() <= 1e-5
    loaded, char = load_hf(folder)
    assert isinstance(char, CharTokenizer) and char.vocab == tok.vocab
    with torch.no_grad():
        assert torch.equal(loaded(idx).logits, model(idx).logits)


def test_a_text_generation_pipeline_runs_offline_on_an_export(shakespeare_export):
    model, tok, folder = shakespeare_export
    pipe = transformers.pipeline("text-generation", model=str(folder), device="cpu")
    out = pipe("ROMEO:", max_new_tokens=40, do_sample=False)[0]["generated_text"]
    ours = tok.decode(model.generate(torch.tensor([tok.encode("ROMEO:")]), 40, greedy=True)[0].tolist())
    assert out == ours and len(ours) == len("ROMEO:") + 40


# --- refusals: clear errors, and nothing written ---------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda t: (GPT(GPTConfig.preset("llama", vocab_size=300, n_embd=32, n_head=2, n_layer=1)), t),
     r"GPT2LMHeadModel, and this model is not a GPT-2 \(.*rmsnorm"),
    (lambda t: (random_gpt(300, 1), WordTokenizer.train("a b c")), "WordTokenizer cannot be written"),
    (lambda t: (random_gpt(300, 1), CharTokenizer.train("héllo")), r"more than one UTF-8 byte \(\['é'\]\)"),
    (lambda t: (random_gpt(300, 1), CharTokenizer.train("hello", unk_token="?")), "unk_token '\\?'"),
    (lambda t: (random_gpt(100, 1), t), "the tokenizer has 330 ids but the model only 100"),
    (lambda t: (random_gpt(300, 1), BPETokenizer([(97, 98), (98, 99), (256, 99), (97, 257)])),
     "ids 258 and 259 both stand for 'abc'"),
    (lambda t: (random_gpt(300, 1), "gpt2"), "takes an llmlab tokenizer"),
])
def test_refused_exports_name_the_reason_and_write_nothing(tmp_path, bpe, make, message):
    model, tok = make(bpe)
    with pytest.raises((ValueError, TypeError), match=message):
        save_hf(model, tok, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_save_hf_replaces_only_its_own_exports_and_writes_atomically(tmp_path, bpe, monkeypatch):
    model = random_gpt(bpe.vocab_size, seed=2)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an earlier save_hf export.*overwrite=True"):
        save_hf(model, bpe, other)
    assert [p.name for p in other.iterdir()] == ["todo.txt"]
    save_hf(model, bpe, other, overwrite=True)
    assert not (other / "todo.txt").exists() and (other / "config.json").is_file()
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        save_hf(model, bpe, tmp_path / "no" / "such")

    folder = save_hf(model, bpe, tmp_path / "export")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    save_hf(random_gpt(bpe.vocab_size, seed=3), bpe, folder)  # an earlier export: replaced
    assert (folder / "model.safetensors").read_bytes() != before["model.safetensors"]
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_write = type(folder).write_bytes

    def crash_on_merges(path, data):
        if path.name == "merges.txt":
            raise OSError("disk full")
        return real_write(path, data)

    monkeypatch.setattr(type(folder), "write_bytes", crash_on_merges)
    with pytest.raises(OSError, match="disk full"):
        save_hf(random_gpt(bpe.vocab_size, seed=4), bpe, folder)
    with pytest.raises(OSError, match="disk full"):
        save_hf(model, bpe, tmp_path / "fresh")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the old export, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "notes"]  # no temporaries


def test_missing_safetensors_names_the_install_command(tmp_path, bpe, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match="pip install transformers safetensors"):
        save_hf(random_gpt(bpe.vocab_size, seed=1), bpe, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def good_export(tmp_path_factory, bpe):
    return save_hf(random_gpt(bpe.vocab_size, seed=9), bpe, tmp_path_factory.mktemp("hf") / "good")


def broken(tmp_path, good, change=None, remove=()):
    """A copy of the good export with config.json changed and some files removed."""
    folder = tmp_path / "broken"
    folder.mkdir()
    for p in good.iterdir():
        if p.name not in remove:
            (folder / p.name).write_bytes(p.read_bytes())
    if change:
        config = json.loads((good / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, **change}))
    return folder


@pytest.mark.parametrize("change, remove, error, message", [
    (None, ["config.json"], FileNotFoundError, "has no config.json"),
    (None, ["model.safetensors"], FileNotFoundError, "has no weights: load_hf reads model.safetensors"),
    (None, ["vocab.json", "merges.txt"], FileNotFoundError, "has no tokenizer: .*vocab.json"),
    (None, ["merges.txt"], FileNotFoundError, "has no merges.txt"),
    ({"model_type": "llama"}, (), ValueError, r"a 'llama' model, not a GPT-2.*AutoModelForCausalLM"),
    ({"activation_function": "gelu"}, (), ValueError, r"activation_function='gelu' \(llmlab's GELU"),
    ({"scale_attn_by_inverse_layer_idx": True, "n_inner": 8}, (), ValueError,
     "n_inner=8 .*scale_attn_by_inverse_layer_idx=True.*GPT2LMHeadModel instead"),
    ({"n_embd": "64"}, (), ValueError, "has no int 'n_embd'"),
    ({"vocab_size": 50}, (), ValueError, "tokenizer has 330 ids but the model only 50"),
])
def test_load_hf_names_what_is_missing_or_unsupported(tmp_path, good_export, change, remove, error,
                                                      message):
    with pytest.raises(error, match=message):
        load_hf(broken(tmp_path, good_export, change, remove))


def test_load_hf_takes_one_dropout_rate_and_says_so(tmp_path, good_export):
    folder = broken(tmp_path, good_export, {"resid_pdrop": 0.1, "attn_pdrop": 0.2})
    with pytest.warns(UserWarning, match=r"different dropout rates \[0.1, 0.2\].*takes resid_pdrop"):
        model, _ = load_hf(folder)
    assert model.config.dropout == 0.1


def test_load_hf_needs_a_folder_and_a_byte_level_vocabulary(tmp_path, good_export):
    with pytest.raises(FileNotFoundError, match="is not a folder.*hf download"):
        load_hf(tmp_path / "missing")
    folder = broken(tmp_path, good_export)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    del vocab["Ġ"]
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(ValueError, match="no token for 1 of the 256 bytes .*byte 32, written 'Ġ'"):
        load_hf(folder)
