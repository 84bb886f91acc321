"""Train a GPT from the command line, with the same settings as the notebooks.

    python -m llmlab.train --corpus tinyshakespeare --tokenizer char --n-layer 4 --n-head 4 \\
        --n-embd 128 --block-size 64 --batch-size 12 --max-steps 2000 --lr 1e-3 \\
        --out runs/shakespeare.pt --seed 1337
    python -m llmlab.train --out runs/shakespeare.pt --resume --max-steps 4000   # go on

Every field of TrainConfig and GPTConfig has a flag (--max-steps, --n-embd, ...). The checkpoint
is written to --out (atomically, also on Ctrl-C) and the tokenizer next to it as
OUT.tokenizer.json. With --resume every setting not given on the command line comes from the
checkpoint. It also runs on several processes with DistributedDataParallel:

    torchrun --standalone --nproc_per_node=2 -m llmlab.train --out runs/ddp.pt ...
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from llmlab import get_device, set_seed
from llmlab._validate_training import check_writable, resolve_device
from llmlab.checkpoint import load_checkpoint, save_checkpoint
from llmlab.data import load_text, read_text_file, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.poems import FORM7, load_quatrains, poems_text, split_poems
from llmlab.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, load_tokenizer
from llmlab.training import TrainConfig, train

__all__ = ["main", "build_parser", "tokenizer_path"]

_TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}
_DATA_DEFAULTS = {"corpus": "tinyshakespeare", "text_file": None, "val_corpus": None,
                  "val_fraction": 0.1,
                  "tokenizer": "char", "bpe_vocab_size": 512}
_TRAIN_FIELDS = [f for f in dataclasses.fields(TrainConfig) if f.name != "checkpoint_path"]
# vocab_size comes from the tokenizer; block_size is one flag shared with TrainConfig.
_MODEL_FIELDS = [f for f in dataclasses.fields(GPTConfig) if f.name not in ("vocab_size", "block_size")]


def tokenizer_path(out) -> Path:
    """Where the tokenizer of checkpoint OUT is saved: OUT with the suffix .tokenizer.json."""
    return Path(out).with_suffix(".tokenizer.json")


def _add_fields(group, config_cls, field_list) -> None:
    """One --flag per dataclass field; default None so that --resume can tell what was given."""
    defaults = config_cls()
    for f in field_list:
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        text = f"{config_cls.__name__}.{f.name} (default {default})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, type=type(default), default=None, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The command line: data, model and training flags, --out and --resume."""
    p = argparse.ArgumentParser(prog="python -m llmlab.train", description=__doc__.split("\n")[0])
    data = p.add_argument_group("data")
    data.add_argument("--corpus", help="a shipped corpus (llmlab.data.CORPORA; default tinyshakespeare), "
                      "or several joined by commas: emma,sense,wikitext2_test; also lesson 10's "
                      "poems, one per line: tang5_quatrains (= tang5_train + tang5_val), "
                      "tang7_quatrains")
    data.add_argument("--val-corpus", help="validate on this corpus (same names as --corpus) "
                      "instead of the last --val-fraction of the training text")
    data.add_argument("--text-file", help="train on this UTF-8 text file instead of --corpus")
    data.add_argument("--val-fraction", type=float, help="last fraction of the text kept for validation (0.1)")
    data.add_argument("--tokenizer", choices=sorted(_TOKENIZERS), help="char (default), word or bpe")
    data.add_argument("--bpe-vocab-size", type=int, help="vocabulary size for --tokenizer bpe (512)")
    _add_fields(p.add_argument_group("model (GPTConfig)"), GPTConfig, _MODEL_FIELDS)
    _add_fields(p.add_argument_group("training (TrainConfig)"), TrainConfig, _TRAIN_FIELDS)
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, help="checkpoint path, e.g. runs/shakespeare.pt")
    run.add_argument("--resume", action="store_true", help="continue the run saved at --out")
    run.add_argument("--force", action="store_true", help="start a new run even if --out exists")
    run.add_argument("--sample", type=int, default=200, help="tokens of text to generate at the end (0: none)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (evaluations still print)")
    run.add_argument("--weights-only", action="store_true",
                     help="at the end, rewrite --out without the optimizer state (a smaller file to "
                          "share; it cannot be resumed)")
    return p


def _given(args, names) -> dict:
    """The settings among names that were given on the command line."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def _make_tokenizer(data: dict, text: str):
    """Train the tokenizer chosen by the data settings on text."""
    if data["tokenizer"] == "bpe":
        return BPETokenizer.train(text, data["bpe_vocab_size"])
    return _TOKENIZERS[data["tokenizer"]].train(text)


# Training texts made from shipped corpora (lesson 10): quatrains without titles and authors, one
# poem per line (llmlab.poems.poems_text); tang5_train and tang5_val are split_poems' two parts.
_DERIVED = {
    "tang5_quatrains": lambda: poems_text(load_quatrains("tang5_simplified")),
    "tang5_train": lambda: poems_text(split_poems(load_quatrains("tang5_simplified"))[0]),
    "tang5_val": lambda: poems_text(split_poems(load_quatrains("tang5_simplified"))[1]),
    "tang7_quatrains": lambda: poems_text(load_quatrains("tang7_simplified", FORM7)),
}


def _corpus_text(names: str) -> str:
    """The text of one shipped corpus, or of several ("emma,sense") joined by blank lines."""
    parts = [n.strip() for n in names.split(",")]
    if not all(parts):
        sys.exit(f"error: --corpus {names!r} has an empty name: separate corpora with commas only, "
                 "e.g. --corpus emma,sense")
    texts = []
    for n in parts:
        try:
            texts.append(_DERIVED[n]() if n in _DERIVED else load_text(n))
        except KeyError as e:  # name the poem corpora made here too
            raise KeyError(f"{e.args[0]}; or one made from them: {', '.join(_DERIVED)}") from None
    return "\n\n".join(texts)


def _read_text_file(path: Path, block_size: int) -> str:
    """The text of --text-file, or exit naming the file if it is missing, empty, not UTF-8 or
    shorter than one window: checked here, before a tokenizer file is written next to --out."""
    try:
        return read_text_file(path, block_size)
    except (OSError, ValueError) as e:
        sys.exit(f"error: --text-file: {e}")


def _run(args, rank: int, world: int, local_rank: int) -> int:
    """Build (or reload) tokenizer, model and config, train, save; return the exit status."""
    main = rank == 0

    def say(message: str) -> None:
        """Print on rank 0 only, without breaking the progress bar."""
        if main:
            tqdm.write(message)

    out, tok_file = Path(args.out), tokenizer_path(args.out)
    if out.is_dir():
        sys.exit(f"error: --out {out} is a folder: give a file name inside it, e.g. {out / 'run.pt'}")
    model_given = _given(args, [f.name for f in _MODEL_FIELDS])
    train_given = _given(args, [f.name for f in _TRAIN_FIELDS])
    state, saved_data = None, {}
    if args.resume:
        if not out.is_file():
            sys.exit(f"error: --resume but there is no checkpoint at {out}: drop --resume to start a new run")
        ckpt = load_checkpoint(out)
        if ckpt.optimizer_state is None:
            sys.exit(f"error: {out} holds weights only (saved with --weights-only), so the run cannot "
                     "be resumed: start a new run with another --out")
        clash = {k: v for k, v in model_given.items() if ckpt.model_config.get(k) != v}
        if clash:
            sys.exit(f"error: the model in {out} has " + ", ".join(
                f"{k}={ckpt.model_config[k]!r}" for k in clash) + f", not {clash}: drop those flags "
                "to resume, or start a new run with another --out")
        model, state, saved_data = ckpt.model, ckpt.state, ckpt.extra.get("data", {})
        train_settings = {**ckpt.train_config, **train_given}
    elif out.exists() and not args.force:
        sys.exit(f"error: {out} already exists: pass --resume to continue that run, --force to "
                 "overwrite it, or choose another --out")
    else:
        train_settings = train_given
    data = {**_DATA_DEFAULTS, **saved_data, **_given(args, list(_DATA_DEFAULTS))}
    # Settings, device and --out are checked before the (possibly slow) tokenizer training.
    config = TrainConfig.from_dict({**train_settings, "checkpoint_path": str(out)})
    if world > 1 and torch.cuda.is_available() and config.device in ("auto", "cuda"):
        config.device = f"cuda:{local_rank}"  # one GPU per process
    device = resolve_device(config.device, get_device)
    if main:
        check_writable(out)

    text = (_read_text_file(Path(data["text_file"]), config.block_size) if data["text_file"]
            else _corpus_text(data["corpus"]))
    val_text = _corpus_text(data["val_corpus"]) if data["val_corpus"] else None
    if args.resume:
        if not tok_file.is_file():
            sys.exit(f"error: the tokenizer of {out} is missing (expected {tok_file}): restore it")
        tokenizer = load_tokenizer(tok_file)
    elif val_text is not None and data["tokenizer"] != "bpe":
        # Characters and words: the vocabulary must hold every symbol of both texts (BPE has no
        # unknown symbols, so it learns from the training text alone).
        tokenizer = _make_tokenizer(data, text + "\n" + val_text)
    else:
        tokenizer = _make_tokenizer(data, text)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if val_text is None:
        train_ids, val_ids = train_val_split(ids, data["val_fraction"])
    else:
        train_ids, val_ids = ids, torch.tensor(tokenizer.encode(val_text), dtype=torch.long)

    if state is None:
        set_seed(config.seed)  # every rank builds the same initial weights
        model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=config.block_size,
                              **model_given))
        if main:
            out.parent.mkdir(parents=True, exist_ok=True)
            tokenizer.save(tok_file)
    say(f"llmlab.train: {model.num_parameters(non_embedding=False):,} parameters, "
        f"{len(train_ids):,} training tokens, vocab {tokenizer.vocab_size}, "
        f"{world} process(es), device {device}")

    def report(history):
        """Print the latest evaluation (train() calls this after each one)."""
        row = history[-1]
        val = "" if row["val_loss"] is None else f", val {row['val_loss']:.4f}"
        say(f"step {row['step']:>6}: train {row['train_loss']:.4f}{val}, lr {row['lr']:.2e}")

    result = train(model, train_ids, val_ids, config, callback=report,
                   progress=not args.no_progress, state=state,
                   checkpoint_extra={"data": data, "tokenizer_file": tok_file.name})
    args.trained = True  # from here on the checkpoint at --out holds the run
    if result.interrupted:
        say(f"interrupted at step {result.step}; saved {out}. Continue with --resume")
        return 130  # the usual exit status after Ctrl-C
    if main and args.weights_only:
        # The same checkpoint minus what only resuming needs: optimizer moments (2x the weights),
        # random states and per-step losses. The evaluations stay, as the model's record.
        save_checkpoint(out, model, None, result.step, config, result.history,
                        extra={"data": data, "tokenizer_file": tok_file.name, "weights_only": True},
                        elapsed_s=result.state.elapsed_s)
    say(f"saved {out} (step {result.step}, best val loss {result.best_val_loss}"
        f"{', weights only' if args.weights_only else ''})")
    if main and args.sample > 0:
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(config.seed)
        prompt = val_ids[:1].view(1, 1).to(device)  # (1, 1): the first validation token
        idx = model.generate(prompt, args.sample, generator=gen)  # (1, 1 + sample)
        say("--- sample ---\n" + tokenizer.decode(idx[0].tolist()))
    if world > 1:
        dist.barrier()  # the other ranks wait until rank 0 has saved and sampled
    return 0


def main(argv=None) -> int:
    """Parse the command line, set up torch.distributed under torchrun, train; return the exit status."""
    args = build_parser().parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1:
        # nccl talks between GPUs; gloo is the CPU backend.
        use_cuda = torch.cuda.is_available() and args.device in (None, "auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    args.trained = False
    try:
        return _run(args, rank, world, local_rank)
    except KeyboardInterrupt:  # train() itself turns Ctrl-C into a clean stop; this is before/after
        if args.trained:
            print(f"interrupted after training: {args.out} holds the run", file=sys.stderr)
        else:
            print(f"interrupted before training started: nothing was trained and {args.out} "
                  "was not written. Run the command again to start", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError) as e:  # bad settings or files: the message says the fix
        sys.exit(f"error: {e.args[0] if isinstance(e, KeyError) else e}")
    finally:
        if world > 1:
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
