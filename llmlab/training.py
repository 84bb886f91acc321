"""The one training loop of the course: AdamW (or Muon), warm-up + cosine schedule, clipping, eval.

train() draws random batches from a batch source (random windows of a token stream by default,
labelled sentences for fine-tuning: llmlab.batches), shows a progress bar, evaluates train and validation loss every eval_interval steps, calls an optional callback
(e.g. a LivePlot) with the history so far, and writes checkpoints. Interrupting it (Ctrl-C or the
notebook's stop button) ends training cleanly after the current step (press twice to stop at
once): the model and its history are returned with interrupted=True, and a final checkpoint is
written if checkpoints are on. No Ctrl-C can cut a checkpoint being written: nothing is lost, and
the run resumes exactly.

With the default loss, any model fits whose forward(x, targets) returns the loss as `.loss`
(GPT's GPTOutput) or as the second item of a tuple (NeuralBigram's (logits, loss)); any other
task passes its own loss_fn(model, inputs, targets) (e.g. llmlab.classifier.classification_loss).
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from llmlab import get_device
from llmlab.checkpoint import (TrainState, load_checkpoint, restore_rng_state, rng_state,
                               save_checkpoint, unwrap_model)
from llmlab._validate_input import as_int
from llmlab._interrupt import StopRequest
from llmlab._validate_training import (as_source, check_state_fits, check_train_config,
                                      check_writable, resolve_device)
from llmlab.batches import BatchSource, TokenStream
from llmlab.muon import MuonAdamW, hidden_matrices

__all__ = ["TrainConfig", "TrainState", "TrainResult", "lr_at", "make_optimizer",
           "estimate_loss", "lm_loss", "train"]

_DTYPES = ("float32", "bfloat16")
_OPTIMIZERS = ("adamw", "muon")


@dataclass
class TrainConfig:
    """Settings of one training run (the CLI `python -m llmlab.train` has one flag per field)."""

    max_steps: int = 2000
    batch_size: int = 12
    block_size: int = 64
    lr: float = 1e-3              # peak learning rate, reached at the end of warm-up
    min_lr: float = 1e-4          # where the cosine decay ends, at max_steps
    warmup_steps: int = 100
    weight_decay: float = 0.1     # applied to matrices only (see make_optimizer)
    optimizer: str = "adamw"      # or "muon": Muon for the hidden matrices, AdamW for the rest
    muon_lr: float = 0.02         # Muon's peak rate (its steps have a fixed size, unlike Adam's)
    muon_momentum: float = 0.95
    beta1: float = 0.9
    beta2: float = 0.99           # a little above the usual 0.95: few tokens per step, noisy grads
    grad_clip: float = 1.0        # max global gradient norm; 0 turns clipping off
    eval_interval: int = 200      # evaluate every this many steps (and at the first and last)
    eval_steps: int = 20          # batches averaged per loss estimate
    log_interval: int = 10        # refresh the progress bar's loss every this many steps
    seed: int = 1337
    device: str = "auto"          # "auto" = llmlab.get_device(): CUDA, then MPS, then CPU
    dtype: str = "float32"        # or "bfloat16": mixed precision (autocast) on CPU or CUDA
    checkpoint_path: str | None = None  # None = no checkpoints
    checkpoint_interval: int = 0  # also save every this many steps; 0 = only at the end / on stop

    def __post_init__(self):
        check_train_config(self, _DTYPES, _OPTIMIZERS)  # plain values, in range; warm-up within the run

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Rebuild a config saved with asdict (keys this version does not know are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainResult:
    """What train() returns: the trained model, its loss history and how the run ended."""

    model: nn.Module
    history: list                 # one dict per evaluation: step, train_loss, val_loss, lr, ...
    step_losses: list             # the training loss of every step (one batch each: noisy)
    step: int                     # optimizer steps done
    interrupted: bool             # True when stopped with Ctrl-C / the stop button
    state: TrainState = field(repr=False)

    @property
    def last_val_loss(self) -> float | None:
        """The validation loss of the latest evaluation (None if there was none)."""
        vals = [row["val_loss"] for row in self.history if row["val_loss"] is not None]
        return vals[-1] if vals else None

    @property
    def best_val_loss(self) -> float | None:
        """The lowest validation loss seen (None if there was none)."""
        vals = [row["val_loss"] for row in self.history if row["val_loss"] is not None]
        return min(vals) if vals else None


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate at a step: linear warm-up to config.lr, then cosine decay to min_lr at max_steps."""
    if step < config.warmup_steps:
        # (step + 1) so that step 0 already learns a little instead of wasting a batch at lr = 0.
        return config.lr * (step + 1) / (config.warmup_steps + 1)
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    progress = min(progress, 1.0)  # past max_steps the rate stays at min_lr
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0 along half a cosine
    return config.min_lr + coeff * (config.lr - config.min_lr)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices (dim >= 2) only; biases and LayerNorm gains are not decayed.

    One simple rule: a parameter with two or more dimensions is a weight matrix that multiplies
    inputs, and shrinking it regularises. Embedding tables are matrices too, so they are decayed,
    as in GPT-2 and nanoGPT. Biases and LayerNorm gains are vectors that shift or scale; pulling
    them towards 0 only hurts. Tied weights (GPT's lm_head = token embedding) appear once.

    With config.optimizer="muon" the hidden matrices (llmlab.muon.hidden_matrices) form a Muon group
    (llmlab.muon.MuonAdamW) at muon_lr, and everything else keeps exactly the AdamW rule above.
    """
    params = [p for p in unwrap_model(model).parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad is False everywhere)")
    muon = {id(p) for p in hidden_matrices(unwrap_model(model))} if config.optimizer == "muon" else set()
    split = {"muon": [p for p in params if id(p) in muon],
             "decay": [p for p in params if p.dim() >= 2 and id(p) not in muon],
             "no_decay": [p for p in params if p.dim() < 2]}
    groups = [{"params": ps, "group": name, **_group_settings(name, config)}
              for name, ps in split.items() if ps]
    if config.optimizer == "muon":
        if not split["muon"]:
            raise ValueError("optimizer='muon' but the model has no hidden weight matrices (nn.Linear "
                             "layers other than the head): use optimizer='adamw'")
        return MuonAdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))
    return torch.optim.AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))


def _group_settings(name: str, config: TrainConfig) -> dict:
    """A parameter group's settings under config (also re-applied when a run resumes)."""
    if name == "muon":
        return {"use_muon": True, "weight_decay": config.weight_decay, "momentum": config.muon_momentum,
                "lr_scale": config.muon_lr / config.lr}
    settings = {"weight_decay": config.weight_decay if name == "decay" else 0.0,
                "betas": (config.beta1, config.beta2)}
    return {**settings, "use_muon": False} if config.optimizer == "muon" else settings


def _autocast(device: torch.device, dtype: str):
    """A fresh autocast context for dtype ("float32" = none), or raise where it is unsupported."""
    if dtype == "float32":
        return contextlib.nullcontext()
    if device.type not in ("cpu", "cuda") or (device.type == "cuda"
                                              and not torch.cuda.is_bf16_supported()):
        raise ValueError(f"dtype='bfloat16' is not supported on {device}: use dtype='float32' "
                         "(or device='cpu')")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _loss_of(output) -> torch.Tensor:
    """The loss from a model's output: output.loss (GPTOutput) or output[1] ((logits, loss))."""
    loss = getattr(output, "loss", None)
    if loss is None and isinstance(output, tuple) and len(output) >= 2:
        loss = output[1]
    if not isinstance(loss, torch.Tensor):
        raise TypeError("model(x, targets) must return the loss as .loss or as the second item of "
                        f"a tuple, got {type(output).__name__}")
    return loss


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default loss: the model's own, from model(x, y) (next-token cross-entropy for a GPT)."""
    return _loss_of(model(x, y))


@torch.no_grad()
def estimate_loss(model: nn.Module, ids, batch_size: int, block_size: int | None = None,
                  eval_steps: int = 20, seed: int = 0, device=None, dtype: str = "float32",
                  loss_fn=None) -> float:
    """Mean loss over eval_steps random batches, in eval mode without gradients (the mode is restored).

    ids is a token sequence (windows of block_size are drawn) or any batch source.
    """
    eval_steps = as_int(eval_steps, "eval_steps", 1)  # 0 batches would be a division by zero
    device = torch.device(device) if device is not None else next(model.parameters()).device
    source = ids if isinstance(ids, BatchSource) else TokenStream(ids, block_size)
    loss_fn = lm_loss if loss_fn is None else loss_fn
    # A fresh generator with a fixed seed: every evaluation sees the same batches, so two points
    # on the curve differ because the model changed, not because the batches did.
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()  # no dropout while measuring
    try:
        total = 0.0
        for _ in range(eval_steps):
            x, y = source.sample(batch_size, gen, device)
            with _autocast(device, dtype):
                total += loss_fn(model, x, y).item()
        return total / eval_steps
    finally:
        model.train(was_training)


@torch.no_grad()
def _measure(model: nn.Module, metrics: dict) -> dict:
    """Each metric's value for the model, in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return {name: float(fn(model)) for name, fn in metrics.items()}
    finally:
        model.train(was_training)


def _distributed() -> tuple[int, int]:
    """(rank, world size) when torch.distributed is running (e.g. under torchrun), else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _postfix(history: list, recent: list) -> str:
    """The progress bar's note: the mean of recent step losses and the latest evaluation."""
    parts = [f"loss {sum(recent) / len(recent):.4f}"] if recent else []
    if history:
        row = history[-1]
        kind = "val" if row["val_loss"] is not None else "train"
        parts.append(f"{kind} {row[kind + '_loss']:.4f} @ step {row['step']}")
    return ", ".join(parts)


def _show_stopped(bar, step: int) -> None:
    """Mark a notebook progress bar as stopped on request (amber), not failed (tqdm's red)."""
    bar.set_description(f"stopped at step {step}", refresh=False)
    bar.disp(bar_style="warning", check_delay=False)


def train(model: nn.Module, train_ids, val_ids=None, config: TrainConfig | None = None,
          callback=None, progress: bool = True, state: TrainState | None = None,
          resume_from=None, step_callback=None, checkpoint_extra: dict | None = None,
          loss_fn=None, metrics: dict | None = None) -> TrainResult:
    """Train model on random batches of train_ids; stop cleanly on Ctrl-C; return a TrainResult.

    train_ids / val_ids are token ids (random windows of config.block_size with next-token
    targets) or any batch source (llmlab.batches.BatchSource). loss_fn(model, inputs, targets)
    gives the loss to minimise (default lm_loss: the model's own). metrics maps a name to
    fn(model) -> float, measured at every evaluation (eval mode, no gradients) into the history.

    callback(history) runs after every evaluation; step_callback(step, loss) after every step.
    To continue a run pass state=result.state (same model object), or resume_from=a checkpoint
    path (its weights are loaded into model; config defaults to the saved one). Under torchrun
    the model is wrapped in DistributedDataParallel, each rank draws its own batches, and only
    rank 0 evaluates, shows progress, calls the callbacks and writes checkpoints.
    checkpoint_extra is plain data (str, numbers, lists, dicts) stored in every checkpoint.
    A new run seeds torch's global generator with config.seed, so dropout repeats too.
    """
    if state is not None and resume_from is not None:
        raise ValueError("pass either state= or resume_from=, not both")
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from, model)
        config, state = config or TrainConfig.from_dict(ckpt.train_config), ckpt.state
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}: for a dict d, "
                        "pass TrainConfig(**d)")
    if state is not None and state.step > config.max_steps:
        raise ValueError(f"the run is already at step {state.step}, past max_steps="
                         f"{config.max_steps}: raise max_steps to train further")
    raw = unwrap_model(model)
    model_config = getattr(raw, "config", None)
    model_block = getattr(model_config, "block_size", getattr(raw, "block_size", None))
    for src in (train_ids, val_ids):  # a sentence source's own block_size, else the config's
        block = getattr(src, "block_size", None) if isinstance(src, BatchSource) else None
        if model_block is not None and block is not None and block > model_block:
            raise ValueError(f"the batches hold up to {block} tokens per example but the model "
                             f"reads at most {model_block}: build them with block_size <= {model_block}")
    if model_block is not None and not isinstance(train_ids, BatchSource) \
            and config.block_size > model_block:
        raise ValueError(f"TrainConfig.block_size={config.block_size} is longer than the model's "
                         f"block_size={model_block}: use block_size <= {model_block}")
    vocab_size = getattr(model_config, "vocab_size", getattr(raw, "vocab_size", None))
    train_src = as_source(train_ids, "train_ids", config, vocab_size)
    val_src = None if val_ids is None else as_source(val_ids, "val_ids", config, vocab_size)
    loss_fn = lm_loss if loss_fn is None else loss_fn
    metrics = dict(metrics or {})
    if not callable(loss_fn) or not all(callable(f) for f in metrics.values()):
        raise TypeError("loss_fn must be a function (model, inputs, targets) -> loss, and metrics "
                        "a dict of name -> function(model) -> float")
    device = resolve_device(config.device, get_device)
    _autocast(device, config.dtype)  # fail now, not after the first batch
    if config.checkpoint_path is not None and _distributed()[0] == 0:
        check_writable(config.checkpoint_path)  # now, not after the last step

    rank, world = _distributed()
    main = rank == 0  # only one process talks, evaluates and saves
    raw.to(device)
    raw.train()
    if world > 1:  # gradients are averaged across ranks during backward()
        net = DistributedDataParallel(raw, device_ids=[device.index] if device.type == "cuda" else None)
    else:
        net = raw
    optimizer = make_optimizer(raw, config)
    gen = torch.Generator()
    if state is None:
        step, history, step_losses, elapsed0 = 0, [], [], 0.0
        torch.manual_seed(config.seed + rank)  # dropout masks repeat too
        gen.manual_seed(config.seed + rank)    # each rank draws different batches
    else:
        step, elapsed0 = state.step, state.elapsed_s
        history, step_losses = list(state.history), list(state.step_losses)
        check_state_fits(state, optimizer.param_groups, config.optimizer)
        # A copy: AdamW updates its moments in place, and state must stay a snapshot.
        optimizer.load_state_dict(copy.deepcopy(state.optimizer_state))
        for group in optimizer.param_groups:  # this config's settings win over the saved ones
            group.update(_group_settings(group["group"], config))
        restore_rng_state(state.rng_state, gen, device)
        if not main:  # only rank 0's batch stream was saved; the others start a fresh one here
            gen.manual_seed(config.seed + rank + 1_000_003 * step)

    # Tokens read per step: windows for a token stream; a sentence source says what it means.
    tokens_per_step = config.batch_size * config.block_size * world \
        if isinstance(train_src, TokenStream) else None
    eval_args = dict(batch_size=config.batch_size, eval_steps=config.eval_steps, seed=config.seed,
                     device=device, dtype=config.dtype, loss_fn=loss_fn)
    start = time.perf_counter() - elapsed0

    def save(at_step: int) -> None:
        """Write a checkpoint of the run as it is now (rank 0 only), deaf to a second Ctrl-C."""
        if main and config.checkpoint_path is not None:
            saving, stop.saving = stop.saving, True
            try:
                save_checkpoint(config.checkpoint_path, raw, optimizer, at_step, asdict(config),
                                history, step_losses, rng_state(gen, device), checkpoint_extra,
                                time.perf_counter() - start)
            finally:
                stop.saving = saving

    bar = tqdm(total=config.max_steps, initial=step, desc="training", unit="step",
               disable=not (progress and main), dynamic_ncols=True)
    interrupted = False
    stop = StopRequest(enabled=world == 1)
    stop.install()
    try:
        while True:
            due = step % config.eval_interval == 0 or step == config.max_steps
            # A resumed run may stop right after an evaluation it already recorded.
            if main and due and not (history and history[-1]["step"] == step):
                row = {
                    "step": step,
                    "train_loss": estimate_loss(raw, train_src, **eval_args),
                    "val_loss": None if val_src is None else estimate_loss(raw, val_src, **eval_args),
                    "lr": lr_at(step, config),
                    "tokens_seen": None if tokens_per_step is None else step * tokens_per_step,
                    "examples_seen": step * config.batch_size * world,
                    "elapsed_s": time.perf_counter() - start,
                }
                row.update(_measure(raw, metrics))
                history.append(row)
                bar.set_postfix_str(_postfix(history, step_losses[-config.log_interval:]))
                if callback is not None:
                    callback(history)
            if step >= config.max_steps:
                break
            if stop.requested:  # Ctrl-C during the evaluation
                raise KeyboardInterrupt

            lr = lr_at(step, config)
            for group in optimizer.param_groups:  # Muon's group runs at lr x muon_lr / lr
                group["lr"] = lr * group.get("lr_scale", 1.0)
            x, y = train_src.sample(config.batch_size, gen, device)  # e.g. (B, T), (B, T)
            with _autocast(device, config.dtype):
                loss = loss_fn(net, x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:  # one rare huge gradient must not undo the training so far
                torch.nn.utils.clip_grad_norm_(raw.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            step_losses.append(loss.item())
            if not math.isfinite(step_losses[-1]):
                raise FloatingPointError(f"the loss became {step_losses[-1]} at step {step}: "
                                         "lower lr (or set grad_clip=1.0) and train again")
            bar.update(1)
            if main and step_callback is not None:
                step_callback(step, step_losses[-1])
            if step % config.log_interval == 0:
                bar.set_postfix_str(_postfix(history, step_losses[-config.log_interval:]))
            if config.checkpoint_interval and step % config.checkpoint_interval == 0 \
                    and step < config.max_steps:
                save(step)
            if stop.requested:  # Ctrl-C during this step: it is complete, stop here
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        # The stop button: keep everything learned so far. Only a second Ctrl-C (or one under
        # torchrun) lands inside a step, which may then be partly applied: still a usable model.
        interrupted = True
    finally:
        stop.saving = True  # from here on Ctrl-C only waits: the final save must complete
        bar.close()
        if interrupted and hasattr(bar, "container"):  # a notebook bar: tqdm paints a stop red
            _show_stopped(bar, step)
    try:
        while True:
            try:
                stop.saving = True
                save(step)
                break
            except KeyboardInterrupt:  # landed before `saving` was set; the save never started
                interrupted = True
    finally:
        stop.restore()
    new_state = TrainState(step, optimizer.state_dict(), rng_state(gen, device), history,
                           step_losses, time.perf_counter() - start)
    return TrainResult(model, history, step_losses, step, interrupted, new_state)
