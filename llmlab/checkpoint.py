"""Checkpoints that cannot be half-written and load without unpickling arbitrary objects.

A checkpoint is one torch.save'd dict of tensors and plain containers (str, int, float, list,
dict, None): the model's weights and config, the optimizer state, the step, the training config,
the loss history and the random-number states, so a run can continue exactly where it stopped.
It is read back with torch.load(weights_only=True), which refuses anything else.
"""
from __future__ import annotations

import importlib
import os
import re
import secrets
import warnings
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

import llmlab
from llmlab._checkpoint_files import plain_data, remove_stale_temporaries
from llmlab._pickle_globals import foreign_globals

__all__ = ["CHECKPOINT_VERSION", "CheckpointError", "Checkpoint", "TrainState", "save_checkpoint",
           "load_checkpoint", "unwrap_model", "rng_state", "restore_rng_state"]

CHECKPOINT_VERSION = 1  # bump when the saved layout changes; load_checkpoint refuses newer ones
_FORMAT = "llmlab-checkpoint"
_KEYS = ("model_class", "model_config", "model_state", "optimizer_state", "step", "train_config",
         "history", "step_losses", "rng_state", "extra")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, not an llmlab checkpoint, or does not fit the given model."""


@dataclass
class TrainState:
    """Where a run stands, beyond the model's weights: pass it to train(state=...) to go on."""

    step: int
    optimizer_state: dict
    rng_state: dict               # {"batch": batch generator, "torch": global CPU, "cuda": GPU}
    history: list
    step_losses: list
    elapsed_s: float = 0.0


def rng_state(batch_generator: torch.Generator, device: torch.device) -> dict:
    """The random states a resumed run needs: its batches, dropout on CPU and, on CUDA, the GPU's."""
    state = {"batch": batch_generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict, batch_generator: torch.Generator, device: torch.device) -> None:
    """Put back the random states saved by rng_state, so the run draws what it would have drawn."""
    batch_generator.set_state(state["batch"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


@dataclass
class Checkpoint:
    """What load_checkpoint read: the model (weights loaded) and everything needed to resume."""

    path: Path
    model: nn.Module | None
    model_config: dict
    step: int
    train_config: dict
    history: list = field(default_factory=list)
    step_losses: list = field(default_factory=list)
    optimizer_state: dict | None = None
    rng_state: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def state(self) -> TrainState:
        """The saved run as a TrainState, for train(model, ..., state=checkpoint.state)."""
        return TrainState(self.step, self.optimizer_state, self.rng_state, self.history,
                          self.step_losses, self.elapsed_s)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain model inside a DistributedDataParallel or torch.compile wrapper."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile's wrapper
            model = model._orig_mod
        else:
            return model


def _model_config(model: nn.Module) -> dict:
    """The model's config as a plain dict ({} for a model without config_dict(), e.g. NeuralBigram)."""
    return dict(model.config_dict()) if hasattr(model, "config_dict") else {}


def save_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    step: int = 0, train_config: dict | None = None, history=(), step_losses=(),
                    rng_state: dict | None = None, extra: dict | None = None,
                    elapsed_s: float = 0.0) -> Path:
    """Write a checkpoint atomically: a temporary file in the same folder, fsync, then os.replace."""
    path = Path(path)
    if not isinstance(model, nn.Module):
        raise TypeError(f"save_checkpoint needs the model itself (an nn.Module), got "
                        f"{type(model).__name__}" + (" (a state_dict?)" if isinstance(model, dict)
                                                     else "") + ": pass the model, not its weights")
    model = unwrap_model(model)
    data = {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "llmlab_version": llmlab.__version__,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model_config": _model_config(model),
        "model_state": model.state_dict(),
        "optimizer_state": None if optimizer is None else optimizer.state_dict(),
        "step": int(step),
        "train_config": asdict(train_config) if is_dataclass(train_config) else dict(train_config or {}),
        "history": [dict(row) for row in history],
        "step_losses": [float(x) for x in step_losses],
        "rng_state": dict(rng_state or {}),
        "extra": dict(extra or {}),
        "elapsed_s": float(elapsed_s),
    }
    # Never write a file the loader rejects: weights-only loading reads tensors and plain values.
    data = {k: plain_data(v, k) for k, v in data.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # The temporary file lives in the same folder so os.replace is a rename on one file system:
    # readers see the old checkpoint or the new one, never half of one (even after a crash).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    # os.open with mode 0o666 honours the umask, so the checkpoint gets the usual permissions.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave a stray temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry of a rename to disk (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(error: Exception) -> str:
    """torch's reason for a failed load, without its paragraph about weights_only (never the fix)."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:\n\n|$)", text, re.S)
    lines = [found.group(1)] if found else text.strip().splitlines()
    lines = [ln for ln in lines if ln.strip() and "weights_only" not in ln]
    return f"{type(error).__name__}: {lines[0].strip()}" if lines else type(error).__name__


def _read(path: Path, map_location) -> dict:
    """torch.load with weights_only=True, turning every failure into a CheckpointError naming the file."""
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train with "
                                "TrainConfig(checkpoint_path=...) to write one")
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols: our message says more
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, pickled objects: all one clear message
        foreign = foreign_globals(path)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise CheckpointError(
                f"{path} holds Python objects that are not tensors ({shown}), so it was refused "
                "for safety: loading such a file can run any code, and nothing in it was run. "
                "Load only checkpoints written by llmlab (train or save_checkpoint), and do not "
                "trust this file") from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint: it is truncated or corrupted ({_reason(e)}). "
            "Use an earlier checkpoint, or train again to write a new one") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise CheckpointError(f"{path} is not an llmlab checkpoint (no format marker; a bare "
                              "state_dict?): load it with torch.load and model.load_state_dict")
    if not isinstance(data.get("version"), int) or data["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {data.get('version')!r}, but "
                              f"this llmlab ({llmlab.__version__}) reads up to version "
                              f"{CHECKPOINT_VERSION}: update llmlab")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise CheckpointError(f"{path} is incomplete (missing {', '.join(missing)}): it was not "
                              "written by save_checkpoint; use another checkpoint")
    return data


def _config_defaults(model: nn.Module) -> dict:
    """The defaults of the model's config dataclass ({} without one)."""
    config = getattr(model, "config", None)
    if not is_dataclass(config):
        return {}
    return {f.name: f.default for f in fields(config) if f.default is not MISSING}


def _config_mismatch(saved: dict, current: dict, defaults: dict | None = None) -> list[str]:
    """The fields where two model configs differ, as 'name: checkpoint X, model Y' lines.

    A field the checkpoint lacks counts as its default: the file was written before it existed.
    """
    saved = {**{k: v for k, v in (defaults or {}).items() if k in current}, **saved}
    names = sorted(set(saved) | set(current))
    return [f"{k}: checkpoint {saved.get(k, '(missing)')!r}, model {current.get(k, '(missing)')!r}"
            for k in names if saved.get(k, "(missing)") != current.get(k, "(missing)")]


def _shape_mismatch(saved: dict, current: dict) -> list[str]:
    """The parameters whose names or shapes differ between two state_dicts."""
    out = [f"{k}: only in the checkpoint" for k in sorted(set(saved) - set(current))]
    out += [f"{k}: only in the model" for k in sorted(set(current) - set(saved))]
    out += [f"{k}: checkpoint shape {tuple(saved[k].shape)}, model shape {tuple(current[k].shape)}"
            for k in sorted(set(saved) & set(current)) if saved[k].shape != current[k].shape]
    return out


def _build_model(path: Path, data: dict) -> nn.Module:
    """Rebuild the saved model from its class name and config (llmlab classes only)."""
    module_name, _, class_name = data.get("model_class", "").rpartition(".")
    # Only llmlab's own classes are imported by name: a file must never choose what code runs.
    if module_name.split(".")[0] != "llmlab":
        raise CheckpointError(f"{path} holds a {data.get('model_class')!r}, which llmlab cannot "
                              "rebuild by itself: build that model, then pass it as model=...")
    try:
        cls = getattr(importlib.import_module(module_name), class_name, None)
    except ImportError:
        cls = None
    if cls is None or not hasattr(cls, "from_config_dict"):
        raise CheckpointError(f"{path} holds a {data['model_class']!r}, which this llmlab "
                              f"({llmlab.__version__}) does not have or cannot rebuild from its "
                              "config: build the model yourself and pass it as model=...")
    return cls.from_config_dict(data["model_config"])


def _check_optimizer(path: Path, optimizer, model: nn.Module) -> None:
    """Raise unless optimizer updates exactly this model's parameters (not another model's)."""
    mine = {id(p) for p in model.parameters()}
    theirs = [p for g in optimizer.param_groups for p in g["params"]]
    if any(id(p) not in mine for p in theirs):
        raise CheckpointError(f"the optimizer passed to load_checkpoint({str(path)!r}) updates the "
                              "parameters of another model: create it from this model, e.g. "
                              "make_optimizer(model, config), then load")


def load_checkpoint(path, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None,
                    map_location="cpu") -> Checkpoint:
    """Read a checkpoint; load its weights into model (built from the saved config if None)."""
    path = Path(path)
    data = _read(path, map_location)
    if model is None:
        model = _build_model(path, data)
    target = unwrap_model(model)
    problems = _config_mismatch(data["model_config"], _model_config(target), _config_defaults(target))
    if not problems:
        problems = _shape_mismatch(data["model_state"], target.state_dict())
    if problems:
        raise CheckpointError(
            f"{path} does not fit this model; differences:\n  " + "\n  ".join(problems) +
            "\nBuild the model with the checkpoint's config (GPT.from_config_dict("
            "load_checkpoint(path).model_config)), or call load_checkpoint(path) without a model")
    target.load_state_dict(data["model_state"])
    if optimizer is not None:
        if data["optimizer_state"] is None:
            raise CheckpointError(f"{path} has no optimizer state (it was saved without one): "
                                  "create a fresh optimizer instead of loading one")
        _check_optimizer(path, optimizer, target)
        try:
            optimizer.load_state_dict(data["optimizer_state"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"{path}'s optimizer state does not fit this optimizer ({e}): "
                                  "build it with llmlab.training.make_optimizer(model, config)") from None
    return Checkpoint(path=path, model=model, model_config=data["model_config"], step=data["step"],
                      train_config=data["train_config"], history=data["history"],
                      step_losses=data["step_losses"], optimizer_state=data["optimizer_state"],
                      rng_state=data["rng_state"], extra=data["extra"],
                      elapsed_s=data.get("elapsed_s", 0.0))
