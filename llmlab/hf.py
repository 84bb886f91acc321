"""Hugging Face interop for GPT-2-style models: export a course GPT with its tokenizer as a folder
that `transformers` loads as it is, and read such a folder (or a downloaded GPT-2) back.

    save_hf(model, tokenizer, "shakespeare-hf")   # config.json, model.safetensors, vocab.json, ...
    GPT2LMHeadModel.from_pretrained("shakespeare-hf"); AutoTokenizer.from_pretrained("shakespeare-hf")
    model, tokenizer = load_hf("gpt2")             # a GPT-2 folder -> llmlab GPT + tokenizer

GPT-2's tokenizer files write every token as text in which each byte is one visible character
(bytes_to_unicode): vocab.json maps those strings to ids, merges.txt lists the merges as
"left right" lines in rank order. Nothing here touches the network. Writing and reading
model.safetensors needs the safetensors package (pip install transformers safetensors).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import warnings
from pathlib import Path

import torch

from llmlab import __version__
from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import BPETokenizer, CharTokenizer, Tokenizer
from llmlab.transformer import LayerNorm

__all__ = ["save_hf", "load_hf", "gpt2_tokenizer", "bytes_to_unicode"]

_EOT = "<|endoftext|>"  # GPT-2's one special token: end of text, also its bos and unk
_MARKER = "llmlab_version"  # a config.json key that says the folder is a save_hf export
_INSTALL = "pip install transformers safetensors"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> character table: the 188 printable bytes stand for themselves, the other 68
    (space, control bytes, ...) for chr(256), chr(257), ... in byte order; so ' ' is 'Ġ', '\\n' 'Ċ'."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)}
    table, n = {}, 0
    for b in range(256):
        table[b] = chr(b) if b in printable else chr(256 + n)
        n += b not in printable
    return table


_B2U = bytes_to_unicode()
_U2B = {c: b for b, c in _B2U.items()}


def _safetensors():
    """The safetensors.torch module, or an ImportError saying how to install it."""
    try:
        import safetensors.torch
    except ImportError:
        raise ImportError(f"llmlab.hf reads and writes model.safetensors with the safetensors "
                          f"package, which is not installed: {_INSTALL}") from None
    return safetensors.torch


# ----------------------------------------------------------------------------------- export

def _hf_vocab(tokenizer) -> tuple[list[str], list[str], dict[str, int]]:
    """The tokenizer as GPT-2's files hold it: token texts by id, merge lines, special tokens."""
    if isinstance(tokenizer, BPETokenizer):
        names = {i: t for t, i in tokenizer.special_tokens.items()}
        texts = [names.get(i) or "".join(_B2U[x] for x in b) for i, b in enumerate(tokenizer.vocab)]
        merges = [f"{texts[a]} {texts[b]}" for a, b in tokenizer.merges]
        special = dict(tokenizer.special_tokens)
    elif isinstance(tokenizer, CharTokenizer):
        wide = [c for c in tokenizer.vocab if len(c.encode("utf-8")) != 1]
        if wide:
            raise ValueError(f"this CharTokenizer has characters of more than one UTF-8 byte "
                             f"({wide[:5]}): GPT-2's byte-level tokenizer would split each into "
                             "bytes, so it cannot keep one id per character. Train a BPETokenizer "
                             "on the text instead (BPETokenizer.train) to export to Hugging Face")
        if tokenizer.unk_token is not None:
            raise ValueError(f"this CharTokenizer maps unseen characters to unk_token "
                             f"{tokenizer.unk_token!r}; GPT-2's tokenizer has no such rule, so "
                             "Hugging Face would encode such text differently. Export a "
                             "CharTokenizer trained without unk_token")
        texts, merges, special = [_B2U[ord(c)] for c in tokenizer.vocab], [], {}
    elif isinstance(tokenizer, Tokenizer):
        raise ValueError(f"a {type(tokenizer).__name__} cannot be written as a GPT-2 tokenizer, "
                         "which is byte-level BPE (a word tokenizer has no way to spell an unseen "
                         "word): export a BPETokenizer or a CharTokenizer of single-byte characters")
    else:
        raise TypeError(f"save_hf takes an llmlab tokenizer, not a {type(tokenizer).__name__}")
    seen: dict[str, int] = {}
    for i, t in enumerate(texts):
        if t in seen:
            raise ValueError(f"ids {seen[t]} and {i} both stand for {t!r}: GPT-2's vocab.json maps "
                             "each token text to one id, so this tokenizer cannot be exported "
                             "(two merges that make the same bytes, or a special token that "
                             "equals a token's text)")
        seen[t] = i
    return texts, merges, special


def _hf_weights(model: GPT) -> dict[str, torch.Tensor]:
    """The weights under GPT-2's names; a model without biases gets zero ones (exactly the same)."""
    sd = model.gpt2_state_dict()
    del sd["lm_head.weight"]  # tied to wte: transformers ties it again when it loads
    for name in [n for n in sd if n.endswith(".weight") and not n.endswith(("wte.weight", "wpe.weight"))]:
        bias = name[: -len("weight")] + "bias"
        if bias not in sd:  # Conv1D weights are (in, out), LayerNorm's (C,): bias has the last size
            sd[bias] = torch.zeros(sd[name].shape[-1], dtype=sd[name].dtype)
    return {k: v.cpu().contiguous() for k, v in sorted(sd.items())}


def _export_files(model, tokenizer) -> dict[str, bytes]:
    """Every file of the export, checked and serialised; nothing is written here."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_hf takes an llmlab GPT, not a {type(model).__name__}")
    if not model.config.is_gpt2:
        try:
            model.gpt2_state_dict()  # raises, naming the parts GPT-2 does not have
        except ValueError as e:
            raise ValueError(f"save_hf writes transformers' GPT2LMHeadModel, and {e}") from None
    texts, merges, special = _hf_vocab(tokenizer)
    c = model.config
    if len(texts) > c.vocab_size:
        raise ValueError(f"the tokenizer has {len(texts)} ids but the model only {c.vocab_size} "
                         "rows in its token table: they were not trained together")
    eps = {m.eps for m in model.modules() if isinstance(m, LayerNorm)}
    eot = special.get(_EOT)
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": c.vocab_size,
        "n_positions": c.block_size, "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head,
        "n_inner": None,  # 4 * n_embd, as in llmlab's FeedForward
        # llmlab's GELU is the tanh approximation, which transformers calls "gelu_new".
        "activation_function": "gelu_new", "layer_norm_epsilon": eps.pop(),
        "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": None,
        "dtype": str(model.lm_head.weight.dtype).removeprefix("torch."), _MARKER: __version__,
    }
    # Special tokens are added tokens: Hugging Face finds them in the text before anything else.
    added = {str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                      "normalized": False, "single_word": False} for t, i in special.items()}
    named = {k: (_EOT if eot is not None else None) for k in ("bos_token", "eos_token", "unk_token")}
    tokenizer_config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": c.block_size,
                        "add_prefix_space": False, "clean_up_tokenization_spaces": False,
                        "errors": "replace", **named, "added_tokens_decoder": added}
    dumps = lambda d: (json.dumps(d, indent=2, ensure_ascii=False) + "\n").encode("utf-8")  # noqa: E731
    return {
        "config.json": dumps(config),
        "generation_config.json": dumps({"bos_token_id": eot, "eos_token_id": eot}),
        "model.safetensors": _safetensors().save(_hf_weights(model), metadata={"format": "pt"}),
        "vocab.json": dumps({t: i for i, t in enumerate(texts)}),
        "merges.txt": "".join(f"{m}\n" for m in ["#version: 0.2", *merges]).encode("utf-8"),
        "tokenizer_config.json": dumps(tokenizer_config),
        "special_tokens_map.json": dumps({k: v for k, v in named.items() if v is not None}),
    }


def _is_export(folder: Path) -> bool:
    """True if folder holds a config.json written by save_hf."""
    try:
        return _MARKER in json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return False


def save_hf(model: GPT, tokenizer: Tokenizer, folder, *, overwrite: bool = False) -> Path:
    """Write model and tokenizer as a Hugging Face GPT-2 folder; return its path.

    transformers.GPT2LMHeadModel.from_pretrained(folder) then gives the same logits, and
    AutoTokenizer.from_pretrained(folder) the same ids (the tokenizer runs GPT-2's own
    pre-tokenization regex; GPT2_PATTERN in llmlab.tokenizers says where the course's "gpt2"
    pattern differs).
    Everything is checked before anything is written, and the folder appears whole or not at all
    (written beside it, then renamed). An earlier export is replaced; any other non-empty folder
    only with overwrite=True, which deletes what it held.
    """
    files = _export_files(model, tokenizer)
    folder = Path(folder).absolute()  # so that "." has a name and a parent
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {folder}: the folder {folder.parent} does not "
                                "exist; create it first with Path(folder).mkdir(parents=True)")
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file, not a folder: choose another name")
    if folder.is_dir() and any(folder.iterdir()) and not (overwrite or _is_export(folder)):
        raise FileExistsError(f"{folder} is not empty and is not an earlier save_hf export: choose "
                              "a new folder, or pass overwrite=True to replace it (everything in "
                              "it is deleted)")
    stem = f".{folder.name}.{os.getpid()}-{secrets.token_hex(4)}"
    tmp, old = folder.with_name(stem + ".tmp"), folder.with_name(stem + ".old")
    tmp.mkdir()
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if folder.exists():
            folder.rename(old)  # kept until the new folder is in place
        try:
            tmp.rename(folder)
        except BaseException:
            if old.exists():
                old.rename(folder)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder


# ----------------------------------------------------------------------------------- import

def _read_json(path: Path, what: str):
    """A JSON file's content, or an error naming the file and what it should be."""
    if not path.is_file():
        raise FileNotFoundError(f"{path.parent} has no {path.name}: load_hf needs {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): restore the file") from None


def _bpe(vocab: dict, merges: list, where: str) -> BPETokenizer:
    """A BPETokenizer that gives vocab's ids, from GPT-2-style token texts and merge pairs."""
    missing = [b for b in range(256) if _B2U[b] not in vocab]
    if missing:
        raise ValueError(f"{where} lists no token for {len(missing)} of the 256 bytes (the first "
                         f"is byte {missing[0]}, written {_B2U[missing[0]]!r}): it is not a "
                         "byte-level BPE vocabulary such as GPT-2's")
    inner = {_B2U[b]: b for b in range(256)}  # token text -> llmlab's internal id
    pairs = []
    for rank, (left, right) in enumerate(merges):
        new = left + right
        problem = ("uses a token that is neither a byte nor made by an earlier merge"
                   if left not in inner or right not in inner else
                   "makes a token an earlier merge made already" if new in inner else
                   "makes a token the vocabulary does not list" if new not in vocab else None)
        if problem:
            raise ValueError(f"{where}: merge {rank} ({left!r} + {right!r}) {problem}")
        pairs.append((inner[left], inner[right]))
        inner[new] = 255 + len(pairs)
    special = sorted((i, t) for t, i in vocab.items() if t not in inner)  # neither byte nor merge
    id_map = [vocab[t] for t in inner] + [i for i, _ in special]
    if sorted(id_map) != list(range(len(id_map))):
        raise ValueError(f"{where}: the ids must be 0..{len(id_map) - 1}, each used once")
    return BPETokenizer(pairs, [t for _, t in special], pattern="gpt2-exact",
                        id_map=None if id_map == sorted(id_map) else id_map)


def _read_files(vocab_path: Path, merges_path: Path) -> tuple[dict, list]:
    """vocab.json's {token text: id} and merges.txt's [left, right] pairs, checked."""
    vocab = _read_json(vocab_path, "GPT-2's vocab.json")
    if not isinstance(vocab, dict) or not all(type(i) is int for i in vocab.values()):
        raise ValueError(f"{vocab_path} should map each token text to an int id")
    if not merges_path.is_file():
        raise FileNotFoundError(f"{merges_path.parent} has no {merges_path.name}: GPT-2's merges, "
                                "next to vocab.json")
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    merges = [line.split(" ") for line in lines if line and not line.startswith("#version")]
    bad = next((m for m in merges if len(m) != 2), None)
    if bad is not None:
        raise ValueError(f"{merges_path}: the line {' '.join(bad)!r} is not two tokens")
    return vocab, merges


def gpt2_tokenizer(vocab_path, merges_path, special_tokens=None) -> BPETokenizer:
    """The BPETokenizer of GPT-2-style vocab.json and merges.txt files: the same ids as Hugging
    Face's GPT-2 tokenizer made from them (its pre-tokenization pattern is "gpt2-exact").

    Entries of vocab.json that are neither a byte nor made by a merge (GPT-2: '<|endoftext|>',
    id 50256) become special tokens, as do special_tokens ({text: id}, e.g. added tokens).
    """
    vocab, merges = _read_files(Path(vocab_path), Path(merges_path))
    return _bpe({**(special_tokens or {}), **vocab}, merges, str(merges_path))


def _char_tokenizer(vocab: dict, merges: list):
    """The CharTokenizer of a save_hf export of one (single-byte characters, no merges), or None."""
    if merges or not all(len(t) == 1 and _U2B.get(t, 128) < 128 for t in vocab) \
            or sorted(vocab.values()) != list(range(len(vocab))):
        return None
    return CharTokenizer([chr(_U2B[t]) for t in sorted(vocab, key=vocab.get)])


def _tokenizer_json(path: Path) -> tuple[dict, list]:
    """Vocabulary (added tokens included) and merges of a tokenizer.json, if it is GPT-2's kind."""
    data = _read_json(path, "GPT-2's tokenizer files")
    model, pre = data.get("model") or {}, data.get("pre_tokenizer") or {}
    if not (model.get("type") == "BPE" and not model.get("continuing_subword_prefix")
            and not model.get("end_of_word_suffix") and not model.get("ignore_merges")
            and data.get("normalizer") is None and pre.get("type") == "ByteLevel"
            and not pre.get("add_prefix_space") and pre.get("use_regex", True)
            and isinstance(model.get("vocab"), dict)):
        raise ValueError(f"{path} is not a GPT-2-style tokenizer (byte-level BPE with GPT-2's "
                         "pre-tokenization and no normalizer): use it with transformers")
    vocab = {**{t["content"]: t["id"] for t in data.get("added_tokens") or []}, **model["vocab"]}
    if not all(type(i) is int for i in vocab.values()):
        raise ValueError(f"{path} should map each token text to an int id")
    return vocab, [m.split(" ") if isinstance(m, str) else m for m in model.get("merges") or []]


def _read_tokenizer(folder: Path) -> Tokenizer:
    """The llmlab tokenizer of an export or a GPT-2 folder."""
    config = folder / "tokenizer_config.json"
    settings = _read_json(config, "") if config.is_file() else {}
    if settings.get("add_prefix_space"):
        raise ValueError(f"{config} adds a space before the text (add_prefix_space), which "
                         "llmlab's tokenizers never do: set it to false")
    if (folder / "vocab.json").is_file():
        vocab, merges = _read_files(folder / "vocab.json", folder / "merges.txt")
        added = settings.get("added_tokens_decoder") or {}
        vocab = {**{t["content"]: int(i) for i, t in added.items()}, **vocab}
    elif (folder / "tokenizer.json").is_file():
        vocab, merges = _tokenizer_json(folder / "tokenizer.json")
    else:
        raise FileNotFoundError(f"{folder} has no tokenizer: load_hf needs GPT-2's vocab.json and "
                                "merges.txt (or a tokenizer.json); download them with the model")
    return _char_tokenizer(vocab, merges) or _bpe(vocab, merges, str(folder))


def _gpt_config(cfg, path: Path) -> GPTConfig:
    """The GPTConfig of a GPT-2 config.json, or an error naming what llmlab's GPT cannot hold."""
    if not isinstance(cfg, dict) or cfg.get("model_type") != "gpt2":
        kind = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise ValueError(f"{path} describes a {kind!r} model, not a GPT-2 (model_type 'gpt2'): "
                         "load_hf reads GPT-2-style checkpoints only; load this one with "
                         "transformers (AutoModelForCausalLM.from_pretrained)")
    sizes = {}
    for ours, theirs in (("vocab_size", "vocab_size"), ("block_size", "n_positions"),
                         ("n_layer", "n_layer"), ("n_head", "n_head"), ("n_embd", "n_embd")):
        if type(cfg.get(theirs)) is not int:
            raise ValueError(f"{path} has no int {theirs!r}: restore the file")
        sizes[ours] = cfg[theirs]
    unsupported = [
        (cfg.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"),
         "activation_function", "llmlab's GELU is the tanh approximation, 'gelu_new'"),
        (cfg.get("n_inner") not in (None, 4 * sizes["n_embd"]), "n_inner", "the MLP is 4 * n_embd wide"),
        (cfg.get("layer_norm_epsilon", 1e-5) != 1e-5, "layer_norm_epsilon", "LayerNorm's eps is 1e-5"),
        (cfg.get("scale_attn_weights", True) is not True, "scale_attn_weights", "scores are scaled"),
        (cfg.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx",
         "no extra scaling per layer"),
        (cfg.get("add_cross_attention", False), "add_cross_attention", "GPT has no cross-attention"),
        (cfg.get("tie_word_embeddings", True) is not True, "tie_word_embeddings", "the head is tied"),
    ]
    bad = [f"{key}={cfg.get(key)!r} ({why})" for off, key, why in unsupported if off]
    if bad:
        raise ValueError(f"{path} asks for options llmlab's GPT does not have: {'; '.join(bad)}. "
                         "Use this model with transformers' GPT2LMHeadModel instead")
    # reorder_and_upcast_attn only changes the order of float32 operations: the same function.
    rates = {cfg.get(k, 0.1) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len(rates) > 1:
        warnings.warn(f"{path} has different dropout rates {sorted(rates)}; llmlab's GPT has one "
                      "and takes resid_pdrop (it matters only for training)", stacklevel=3)
    return GPTConfig(**sizes, dropout=cfg.get("resid_pdrop", 0.1))


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The state dict in model.safetensors (also sharded) or pytorch_model.bin."""
    if (folder / "model.safetensors").is_file():
        return _safetensors().load_file(folder / "model.safetensors")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index, "its shard list")["weight_map"].values()))
        return {k: v for s in shards for k, v in _safetensors().load_file(folder / s).items()}
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} has no weights: load_hf reads model.safetensors (or "
                            "pytorch_model.bin); download them with the config")


def load_hf(folder) -> tuple[GPT, Tokenizer]:
    """Read a GPT-2 folder (a save_hf export, or a GPT-2 checkpoint downloaded from the Hub) into
    an llmlab GPT (GPT-2 preset, eval mode) and a tokenizer that gives the same ids as Hugging
    Face's: a BPETokenizer, or a CharTokenizer for an export of one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds config.json "
                                "and model.safetensors (download a Hub model first, e.g. `hf "
                                "download openai-community/gpt2 --local-dir gpt2`)")
    config = _gpt_config(_read_json(folder / "config.json", "the model's config.json"),
                         folder / "config.json")
    tokenizer = _read_tokenizer(folder)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{folder}'s tokenizer has {tokenizer.vocab_size} ids but the model only "
                         f"{config.vocab_size}: the files come from different models")
    weights = _read_weights(folder)
    model = GPT(config)
    model.load_gpt2_state_dict(weights)  # checks every name and shape before copying
    return model.eval(), tokenizer
