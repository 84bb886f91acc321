"""Pretrained models shipped with the course in data/pretrained/, checksum-verified before loading.

    model, tokenizer = load_pretrained("shakespeare_char")   # lesson 06's GPT, trained
    ids = torch.tensor([tokenizer.encode("ROMEO:")])          # (1, T)
    print(tokenizer.decode(model.generate(ids, 200)[0].tolist()))

Each model is a weights-only llmlab checkpoint (no optimizer state) plus its tokenizer's JSON,
written by `python -m llmlab.train`; data/pretrained/README.md gives the command, the seed and
the validation loss of each. Both files are listed in data/SHA256SUMS and verified here, and the
checkpoint is read with torch.load(weights_only=True), which cannot run code from the file.
"""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import torch

from llmlab import get_device
from llmlab._validate_training import resolve_device
from llmlab.checkpoint import load_checkpoint
from llmlab.data import _restore_hint, data_dir, verify
from llmlab.gpt import GPT
from llmlab.tokenizers import Tokenizer, load_tokenizer

__all__ = ["PRETRAINED", "pretrained_files", "load_pretrained"]

# name -> (checkpoint, tokenizer), paths relative to data/. Read-only on purpose.
PRETRAINED = MappingProxyType({
    "shakespeare_char": ("pretrained/shakespeare_char.pt",
                         "pretrained/shakespeare_char.tokenizer.json"),
    "english_bpe": ("pretrained/english_bpe.pt", "pretrained/english_bpe.tokenizer.json"),
    "tang5_char": ("pretrained/tang5_char.pt", "pretrained/tang5_char.tokenizer.json"),
})


def pretrained_files(name: str = "shakespeare_char") -> tuple[Path, Path]:
    """The paths of a pretrained model's checkpoint and tokenizer, after verifying their checksums."""
    if name not in PRETRAINED:
        raise KeyError(f"unknown pretrained model {name!r}; choose one of: {', '.join(PRETRAINED)}")
    root = data_dir()
    paths = tuple(root / rel for rel in PRETRAINED[name])
    for rel, path in zip(PRETRAINED[name], paths):
        if not path.is_file():
            raise FileNotFoundError(f"the pretrained model {name!r} is missing data/{rel}. "
                                    f"{_restore_hint(root, rel)}")
        verify(path)  # ChecksumError naming the file and how to restore it
    return paths


def load_pretrained(name: str = "shakespeare_char", device="cpu") -> tuple[GPT, Tokenizer]:
    """Load a shipped pretrained GPT (in eval mode, on device) and its tokenizer; see PRETRAINED."""
    device = resolve_device(device, get_device)  # a missing GPU fails before anything is read
    weights, tokenizer_file = pretrained_files(name)
    model = load_checkpoint(weights, map_location="cpu").model  # rebuilt from the saved GPTConfig
    tokenizer = load_tokenizer(tokenizer_file)
    if tokenizer.vocab_size != model.config.vocab_size:  # only if the two files were mixed up
        raise ValueError(f"{tokenizer_file.name} has {tokenizer.vocab_size} tokens but the model in "
                         f"{weights.name} expects {model.config.vocab_size}: the two files were "
                         f"mixed up. {_restore_hint(weights.parent.parent, 'pretrained/')}")
    return model.to(device).eval(), tokenizer
