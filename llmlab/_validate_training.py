"""Input checks for llmlab.training and the CLI, kept apart so the training loop reads as the loop.

Everything here runs before step 1: a bad setting, a device that is not there, a state from
another model or a checkpoint path that cannot be written must fail in the first second, not
after an hour of training.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import torch

from llmlab._validate_input import as_int, is_number
from llmlab.batches import BatchSource, TokenStream

__all__: list[str] = []  # private: llmlab.training is the public face

_INTS = {"max_steps": 1, "batch_size": 1, "block_size": 1, "eval_interval": 1, "eval_steps": 1,
         "log_interval": 1, "warmup_steps": 0, "checkpoint_interval": 0, "seed": 0}
_FLOATS = ("lr", "min_lr", "weight_decay", "grad_clip", "beta1", "beta2", "muon_lr", "muon_momentum")


def check_train_config(config, dtypes: tuple[str, ...], optimizers: tuple[str, ...]) -> None:
    """Make a TrainConfig's fields plain Python values in place, or raise naming the fix.

    Plain values matter: the config is stored in every checkpoint, and weights-only loading
    refuses a NumPy float (the file would be written but could never be read back).
    """
    for name, least in _INTS.items():
        setattr(config, name, as_int(getattr(config, name), f"TrainConfig.{name}", least))
    for name in _FLOATS:
        value = getattr(config, name)
        if not is_number(value) or value < 0:
            raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")
        setattr(config, name, float(value))
    if config.lr <= 0 or config.min_lr > config.lr:
        raise ValueError(f"need 0 < min_lr <= lr, got lr={config.lr} and min_lr={config.min_lr}: "
                         "the schedule decays from lr down to min_lr")
    if not (config.beta1 < 1 and config.beta2 < 1):
        raise ValueError(f"beta1 and beta2 must be below 1, got {config.beta1} and {config.beta2}")
    if config.warmup_steps >= config.max_steps and config.warmup_steps > 0:
        raise ValueError(f"TrainConfig.warmup_steps={config.warmup_steps} is not shorter than the run "
                         f"(max_steps={config.max_steps}): the learning rate would never reach lr. "
                         f"Use warmup_steps < max_steps (about 5% of it is usual, e.g. "
                         f"{max(1, config.max_steps // 20)})")
    if config.optimizer not in optimizers:
        raise ValueError(f"TrainConfig.optimizer must be one of {optimizers}, got {config.optimizer!r}")
    if config.muon_lr <= 0 or config.muon_momentum >= 1:
        raise ValueError(f"need muon_lr > 0 and 0 <= muon_momentum < 1, got muon_lr={config.muon_lr} "
                         f"and muon_momentum={config.muon_momentum}")
    if config.dtype not in dtypes:
        raise ValueError(f"TrainConfig.dtype must be one of {dtypes}, got {config.dtype!r}")
    if isinstance(config.device, torch.device):
        config.device = str(config.device)  # a str: checkpoints store it
    if not isinstance(config.device, str):
        raise ValueError(f"TrainConfig.device must be a str such as 'auto', 'cpu' or 'cuda', "
                         f"got {config.device!r}")
    if config.checkpoint_path is not None:
        if not isinstance(config.checkpoint_path, (str, os.PathLike)):
            raise ValueError(f"TrainConfig.checkpoint_path must be a path (str) or None, got "
                             f"{config.checkpoint_path!r}")
        config.checkpoint_path = os.fspath(config.checkpoint_path)  # a str: checkpoints store it


def resolve_device(name, auto) -> torch.device:
    """The torch.device for a setting ('auto' = auto()), or raise if it is unknown or not here."""
    if isinstance(name, str) and name == "auto":
        return auto()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {name!r}: use 'auto', 'cpu', 'cuda', 'cuda:0' or 'mps'") \
            from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but this machine has no CUDA GPU that "
                         "PyTorch can use: use device='cpu' (or 'auto', which picks what is there)")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} does not exist: this machine has "
                         f"{torch.cuda.device_count()} GPU(s), numbered from cuda:0")
    mps = getattr(torch.backends, "mps", None)
    if device.type == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(f"device {name!r} was asked for, but Apple's MPS is not available here: "
                         "use device='cpu' (or 'auto')")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} is not supported by llmlab: use 'auto', 'cpu', 'cuda' or 'mps'")
    return device


def check_state_fits(state, param_groups: list[dict], optimizer: str = "adamw") -> None:
    """Raise unless a TrainState's optimizer state fits these parameter groups (same model, same optimizer)."""
    saved = state.optimizer_state or {}
    groups = saved.get("param_groups", [])
    params = [p for g in param_groups for p in g["params"]]
    n_saved = sum(len(g.get("params", [])) for g in groups)
    if n_saved != len(params):
        raise ValueError(f"state= holds optimizer moments for {n_saved} parameters, but this model "
                         f"has {len(params)}: it comes from another model. Pass the model that "
                         "produced it (or resume_from= its checkpoint, which rebuilds the weights)")
    was_muon = any(g.get("use_muon") for g in groups)
    if was_muon != (optimizer == "muon"):
        saved_name = "muon" if was_muon else "adamw"
        raise ValueError(f"the run was trained with optimizer={saved_name!r}, but this config says "
                         f"optimizer={optimizer!r}: resume with optimizer={saved_name!r} (an optimizer's "
                         "state means nothing to another optimizer), or start a new run")
    if [len(g.get("params", [])) for g in groups] != [len(g["params"]) for g in param_groups]:
        raise ValueError("state= splits the parameters into optimizer groups differently from this "
                         "model: it comes from another model. Pass the model that produced it")
    ids = [i for g in groups for i in g["params"]]
    for i, p in zip(ids, params):
        entry = saved.get("state", {}).get(i, {})
        moment = entry.get("exp_avg", entry.get("momentum_buffer"))
        if moment is not None and tuple(moment.shape) != tuple(p.shape):
            raise ValueError(f"state= comes from a model of another size: parameter {i} has shape "
                             f"{tuple(moment.shape)} in the state but {tuple(p.shape)} in this model."
                             " Pass the model that produced it")


def check_writable(path) -> Path:
    """Make sure a checkpoint can be written at path (its folder is created), or raise naming why."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint_path {path} is a folder: give a file name inside it, e.g. "
                         f"{path / 'run.pt'}")
    for parent in [path.parent, *path.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write the checkpoint {path}: {parent} is a file, not a "
                                 "folder. Choose another checkpoint_path")
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.probe")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"cannot write the checkpoint {path} ({e.strerror or e}): choose a folder "
                         "you can write to as checkpoint_path") from None
    return path


def as_source(data, name: str, config, vocab_size: int | None):
    """A batch source as given, or token ids checked and wrapped in a TokenStream of block_size."""
    if isinstance(data, BatchSource):
        theirs = getattr(data, "vocab_size", None)
        if None not in (theirs, vocab_size) and theirs != vocab_size:
            raise ValueError(f"{name} was encoded with a tokenizer of {theirs} tokens but the model "
                             f"reads {vocab_size}: encode with the model's own tokenizer (e.g. the "
                             "one load_pretrained returns with it)")
        return data
    return TokenStream(_as_ids(data, name, config, vocab_size), config.block_size)


def _as_ids(ids, name: str, config, vocab_size: int | None) -> torch.Tensor:
    """Return token ids as a 1-D LongTensor long enough for one batch, or raise naming the fix."""
    ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(f"{name} must be a 1-D sequence of integer token ids, got shape "
                         f"{tuple(ids.shape)} and dtype {ids.dtype}: encode the text first")
    if len(ids) < config.block_size + 1:
        raise ValueError(f"{name} has {len(ids)} tokens but one window needs block_size + 1 = "
                         f"{config.block_size + 1}: use more text or a smaller block_size")
    if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{name} holds ids from {int(ids.min())} to {int(ids.max())} but the model's "
                         f"vocab_size is {vocab_size}: build the model with "
                         "vocab_size=tokenizer.vocab_size")
    return ids.long()
