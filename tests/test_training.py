"""Tests for llmlab.training and llmlab.checkpoint: schedule, optimizer groups, the loop, Ctrl-C,
checkpoints (round trip, resume, corruption, mismatch, atomic writes) and the live plot."""
import math
import os
import signal
import sys
import time

import pytest
import torch
from matplotlib.figure import Figure
from torch.optim.optimizer import register_optimizer_step_post_hook

import llmlab.checkpoint as checkpoint_module
import llmlab.training as training_module
from llmlab.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from llmlab.data import load_text, train_val_split
from llmlab.gpt import GPT, GPTConfig
from llmlab.lm import NeuralBigram
from llmlab.tokenizers import CharTokenizer
from llmlab.training import (TrainConfig, estimate_loss, lr_at, make_optimizer, train)
from llmlab.viz.training import LivePlot, plot_history

# A few lines of Shakespeare: enough text for a tiny model to learn something in tens of steps.
TEXT = load_text("tinyshakespeare")[:6000]
TOK = CharTokenizer.train(TEXT)
TRAIN_IDS, VAL_IDS = train_val_split(torch.tensor(TOK.encode(TEXT)))


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_gpt(seed=0, **overrides):
    """A GPT small enough to train for a few dozen steps in well under a second."""
    torch.manual_seed(seed)
    settings = dict(vocab_size=TOK.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**settings, **overrides}))


def quick_config(**overrides):
    """A short CPU run: 24 steps, an evaluation every 8."""
    settings = dict(max_steps=24, batch_size=8, block_size=16, lr=3e-3, min_lr=3e-4,
                    warmup_steps=4, eval_interval=8, eval_steps=2, device="cpu", seed=7)
    return TrainConfig(**{**settings, **overrides})


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule and optimizer


def test_lr_schedule_warmup_peak_and_cosine_end():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_steps=10, max_steps=110)
    assert lr_at(0, cfg) == pytest.approx(1e-3 / 11)            # warm-up starts small, not at 0
    assert lr_at(9, cfg) == pytest.approx(1e-3 * 10 / 11)
    assert lr_at(10, cfg) == pytest.approx(1e-3)                  # the peak, after warm-up
    assert lr_at(60, cfg) == pytest.approx((1e-3 + 1e-4) / 2)    # half-way down the cosine
    assert lr_at(110, cfg) == pytest.approx(1e-4)                 # ends at min_lr
    assert lr_at(10_000, cfg) == pytest.approx(1e-4)              # and stays there
    rates = [lr_at(s, cfg) for s in range(111)]
    assert all(a < b for a, b in zip(rates[:10], rates[1:11]))    # rising during warm-up
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))    # never rising after it
    no_warmup = TrainConfig(lr=2e-3, min_lr=0.0, warmup_steps=0, max_steps=100)
    assert lr_at(0, no_warmup) == pytest.approx(2e-3)
    assert lr_at(100, no_warmup) == pytest.approx(0.0)


def test_weight_decay_only_on_matrices():
    model = tiny_gpt()
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1))
    groups = {g["group"]: g for g in opt.param_groups}
    decayed = {id(p) for p in groups["decay"]["params"]}
    assert groups["decay"]["weight_decay"] == 0.1 and groups["no_decay"]["weight_decay"] == 0.0
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.dim() >= 2), name
    assert id(model.transformer.ln_f.weight) not in decayed        # LayerNorm gain
    assert id(model.transformer.h[0].attn.c_attn.bias) not in decayed
    assert id(model.transformer.wte.weight) in decayed               # embeddings are matrices
    # Every parameter once: the tied lm_head / wte table is not listed twice.
    all_params = [p for g in opt.param_groups for p in g["params"]]
    assert len(all_params) == len({id(p) for p in all_params}) == len(list(model.parameters()))


def test_config_rejects_bad_values_with_the_field_name():
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="float16")
    with pytest.raises(ValueError, match="block_size=32 is longer than the model's block_size=16"):
        train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(block_size=32), progress=False)
    with pytest.raises(ValueError, match="vocab_size"):
        train(tiny_gpt(vocab_size=10), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    with pytest.raises(ValueError, match="train_ids has 5 tokens"):
        train(tiny_gpt(), TRAIN_IDS[:5], VAL_IDS, quick_config(), progress=False)


# ---------------------------------------------------------------------------------------------
# The loop


def test_short_run_decreases_loss_and_records_history():
    config = quick_config(max_steps=60, eval_interval=20, lr=1e-2, min_lr=1e-3)
    result = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, config, progress=False)
    assert not result.interrupted and result.step == 60 and len(result.step_losses) == 60
    assert [row["step"] for row in result.history] == [0, 20, 40, 60]
    first, last = result.history[0], result.history[-1]
    assert first["val_loss"] == pytest.approx(math.log(TOK.vocab_size), abs=0.2)  # starts uniform
    assert last["train_loss"] < first["train_loss"] - 0.5
    assert last["val_loss"] < first["val_loss"] - 0.5
    assert last["tokens_seen"] == 60 * 8 * 16 and last["lr"] == pytest.approx(1e-3)
    assert result.best_val_loss == min(r["val_loss"] for r in result.history)
    assert result.last_val_loss == last["val_loss"]
    assert result.model.training  # evaluation put it back in train mode


def test_same_seed_same_losses_and_another_seed_differs():
    a = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    b = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    c = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(seed=8), progress=False)
    assert a.step_losses == b.step_losses
    assert [r["val_loss"] for r in a.history] == [r["val_loss"] for r in b.history]
    assert a.step_losses != c.step_losses  # the seed picks the batches


def test_any_model_returning_logits_and_loss_trains():
    model = NeuralBigram(TOK.vocab_size)  # forward returns a (logits, loss) tuple
    config = quick_config(lr=0.1, min_lr=0.01, max_steps=40, eval_interval=40)
    result = train(model, TRAIN_IDS, None, config, progress=False)
    assert result.history[-1]["val_loss"] is None and result.best_val_loss is None
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] - 0.3


def test_estimate_loss_restores_mode_and_builds_no_graph():
    model = tiny_gpt(dropout=0.2)
    model.eval()
    loss = estimate_loss(model, VAL_IDS, batch_size=4, block_size=16, eval_steps=3, seed=1)
    assert not model.training and isinstance(loss, float)
    model.train()
    again = estimate_loss(model, VAL_IDS, batch_size=4, block_size=16, eval_steps=3, seed=1)
    assert model.training and again == loss  # eval mode inside (no dropout), same batches
    assert all(p.grad is None for p in model.parameters())


def test_bfloat16_autocast_runs_on_cpu():
    result = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(max_steps=3, warmup_steps=1, dtype="bfloat16"),
                   progress=False)
    assert result.step == 3 and all(math.isfinite(x) for x in result.step_losses)


# ---------------------------------------------------------------------------------------------
# Ctrl-C


def train_or_fail(*args, **kwargs):
    """train(), turning an escaped KeyboardInterrupt into a test failure instead of a pytest abort."""
    try:
        return train(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("train() let KeyboardInterrupt escape: Ctrl-C must end training cleanly")


class _Stop:
    """A step_callback that presses "stop" (raises KeyboardInterrupt) after step k."""

    def __init__(self, k):
        self.k = k

    def __call__(self, step, loss):
        if step == self.k:
            raise KeyboardInterrupt


def test_keyboard_interrupt_keeps_model_history_and_closes_the_bar(monkeypatch, tmp_path):
    bars = []

    class RecordingBar(training_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.shown = not kwargs["disable"]
            bars.append(self)

    monkeypatch.setattr(training_module, "tqdm", RecordingBar)
    path = tmp_path / "run.pt"
    config = quick_config(checkpoint_path=str(path))
    result = train_or_fail(tiny_gpt(), TRAIN_IDS, VAL_IDS, config, step_callback=_Stop(10), progress=True)
    assert result.interrupted and result.step == 10 and len(result.step_losses) == 10
    assert [row["step"] for row in result.history] == [0, 8]
    assert len(bars) == 1 and bars[0].shown and bars[0].n == 10
    # close() removes a bar from tqdm's registry of open bars and disables it.
    assert bars[0].disable and bars[0] not in RecordingBar._instances
    # The model is usable: finite weights, and it can generate.
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert result.model.generate(torch.zeros(1, 1, dtype=torch.long), 5).shape == (1, 6)
    saved = load_checkpoint(path)  # a final checkpoint was written on the way out
    assert saved.step == 10 and saved.history == result.history


def test_keyboard_interrupt_from_the_eval_callback():
    def stop_at_16(history):
        if history[-1]["step"] == 16:
            raise KeyboardInterrupt

    result = train_or_fail(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), callback=stop_at_16,
                   progress=False)
    assert result.interrupted and result.step == 16
    assert [row["step"] for row in result.history] == [0, 8, 16]


def _press_ctrl_c_after_optimizer_step(n: int, times: int = 1):
    """Send SIGINT to this process right after AdamW has updated the weights in step n.

    That is the worst moment for an interrupt: the weights are new but the step is not yet
    counted. Returns the hook's handle (remove it afterwards).
    """
    calls = []

    def hook(optimizer, args, kwargs):
        calls.append(1)
        if len(calls) == n:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return register_optimizer_step_post_hook(hook)


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) ends the process on Windows")
def test_real_ctrl_c_finishes_the_step_then_the_run_resumes_exactly(tmp_path):
    full = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    before = signal.getsignal(signal.SIGINT)
    path = tmp_path / "run.pt"
    handle = _press_ctrl_c_after_optimizer_step(6)
    try:
        first = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(checkpoint_path=str(path)),
                      progress=False)
    finally:
        handle.remove()
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C behaves as usual again
    assert first.interrupted and first.step == 6 and len(first.step_losses) == 6
    resumed = train(tiny_gpt(seed=99), TRAIN_IDS, VAL_IDS, progress=False, resume_from=path)
    assert resumed.step_losses == full.step_losses
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) ends the process on Windows")
def test_ctrl_c_twice_stops_at_once_and_keeps_a_usable_model():
    before = signal.getsignal(signal.SIGINT)
    handle = _press_ctrl_c_after_optimizer_step(6, times=2)
    try:
        result = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    finally:
        handle.remove()
    assert signal.getsignal(signal.SIGINT) is before
    # Stopped inside step 6, before it was counted: the model is still whole and usable.
    assert result.interrupted and result.step == 5
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


# ---------------------------------------------------------------------------------------------
# Checkpoints and resuming


def test_resume_from_checkpoint_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    # Dropout on: resuming must also restore the global random state that draws its masks.
    full = train(tiny_gpt(dropout=0.1), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)

    path = tmp_path / "run.pt"
    config = quick_config(checkpoint_path=str(path))
    first = train_or_fail(tiny_gpt(dropout=0.1), TRAIN_IDS, VAL_IDS, config, step_callback=_Stop(11),
                  progress=False)
    assert first.interrupted and first.step == 11
    # A fresh process would build a fresh model: give it other weights to prove they are loaded.
    resumed = train(tiny_gpt(seed=99, dropout=0.1), TRAIN_IDS, VAL_IDS, progress=False,
                    resume_from=path)
    assert not resumed.interrupted and resumed.step == 24
    assert resumed.step_losses == full.step_losses
    assert [r["val_loss"] for r in resumed.history] == [r["val_loss"] for r in full.history]
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        assert torch.equal(p, q)


def test_continue_with_state_in_memory_matches_one_long_run():
    full = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(), progress=False)
    model = tiny_gpt()
    part = train_or_fail(model, TRAIN_IDS, VAL_IDS, quick_config(max_steps=24), progress=False,
                 step_callback=_Stop(5))
    rest = train(model, TRAIN_IDS, VAL_IDS, quick_config(), progress=False, state=part.state)
    assert rest.step_losses == full.step_losses
    with pytest.raises(ValueError, match="raise max_steps"):
        train(model, TRAIN_IDS, VAL_IDS, quick_config(max_steps=10), state=rest.state)


def test_checkpoints_are_written_every_checkpoint_interval_and_at_the_end(tmp_path):
    path = tmp_path / "run.pt"
    seen = []  # (step, step of the checkpoint on disk while that step's callback runs)

    def peek(step, loss):
        seen.append((step, load_checkpoint(path).step if path.exists() else None))

    config = quick_config(max_steps=8, checkpoint_interval=3, checkpoint_path=str(path))
    train(tiny_gpt(), TRAIN_IDS, VAL_IDS, config, step_callback=peek, progress=False,
          checkpoint_extra={"tokenizer_file": "run.tokenizer.json"})
    assert seen == [(1, None), (2, None), (3, None), (4, 3), (5, 3), (6, 3), (7, 6), (8, 6)]
    final = load_checkpoint(path)
    assert final.step == 8 and final.extra == {"tokenizer_file": "run.tokenizer.json"}
    assert final.train_config["checkpoint_interval"] == 3


def test_checkpoint_round_trip(tmp_path):
    model = tiny_gpt()
    config = quick_config(max_steps=5, eval_interval=5)
    result = train(model, TRAIN_IDS, VAL_IDS, config, progress=False)
    opt = make_optimizer(model, config)
    opt.load_state_dict(result.state.optimizer_state)
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", model, opt, step=5,
                           train_config=config, history=result.history,
                           step_losses=result.step_losses, extra={"note": "hello", "n": [1, 2]})
    assert path.is_file() and os.listdir(path.parent) == ["ckpt.pt"]

    loaded = load_checkpoint(path)  # no model given: rebuilt from the saved config
    assert isinstance(loaded.model, GPT) and loaded.model_config == model.config_dict()
    for (name, p), q in zip(model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert loaded.step == 5 and loaded.history == result.history
    assert TrainConfig.from_dict(loaded.train_config) == config  # stored as a plain dict
    assert loaded.step_losses == result.step_losses and loaded.extra == {"note": "hello", "n": [1, 2]}
    # Weight tying survives the round trip: one table, not two copies.
    assert loaded.model.lm_head.weight is loaded.model.transformer.wte.weight

    into = tiny_gpt(seed=3)
    other_opt = make_optimizer(into, config)
    load_checkpoint(path, model=into, optimizer=other_opt)
    assert torch.equal(into.lm_head.weight, model.lm_head.weight)
    saved_moments = opt.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(other_opt.state_dict()["state"][0]["exp_avg"], saved_moments)


def test_mismatched_model_config_names_the_differing_fields(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", tiny_gpt(n_embd=16, n_layer=1))
    with pytest.raises(ValueError, match=r"(?s)does not fit.*n_embd: checkpoint 16, model 32") as err:
        load_checkpoint(path, tiny_gpt(n_embd=32, n_layer=1))
    assert "n_layer" not in str(err.value) and str(path) in str(err.value)
    # A model without config_dict is compared parameter by parameter.
    bigram = save_checkpoint(tmp_path / "b.pt", NeuralBigram(5))
    with pytest.raises(CheckpointError, match=r"logits_table.weight: checkpoint shape \(5, 5\)"):
        load_checkpoint(bigram, NeuralBigram(6))


def test_corrupted_checkpoints_fail_clearly_naming_the_file(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", tiny_gpt())
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(2000))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for path in (truncated, garbage, empty):
        with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
            load_checkpoint(path)
        assert str(path) in str(err.value)

    bare = tmp_path / "bare.pt"
    torch.save(tiny_gpt().state_dict(), bare)
    with pytest.raises(CheckpointError, match="not an llmlab checkpoint"):
        load_checkpoint(bare)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "llmlab-checkpoint", "config": TrainConfig()}, pickled)
    with pytest.raises(CheckpointError, match=r"TrainConfig\), so it was refused for safety"):
        load_checkpoint(pickled)
    future = tmp_path / "future.pt"
    torch.save({"format": "llmlab-checkpoint", "version": 99}, future)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(future)
    partial = tmp_path / "partial.pt"
    torch.save({"format": "llmlab-checkpoint", "version": 1, "step": 3}, partial)
    with pytest.raises(CheckpointError, match="incomplete .missing model_class"):
        load_checkpoint(partial)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch, error):
    path = save_checkpoint(tmp_path / "ckpt.pt", tiny_gpt(seed=1), step=1)
    before = path.read_bytes()

    def half_written_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise error

    monkeypatch.setattr(checkpoint_module.torch, "save", half_written_then_fail)
    with pytest.raises(type(error)):
        save_checkpoint(path, tiny_gpt(seed=2), step=2)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.pt"]
    monkeypatch.undo()
    assert load_checkpoint(path).step == 1


# ---------------------------------------------------------------------------------------------
# Live plot


def test_live_plot_redraws_with_each_history_and_has_a_static_twin():
    result = train(tiny_gpt(), TRAIN_IDS, VAL_IDS, quick_config(max_steps=8, eval_interval=4),
                   progress=False)
    live = LivePlot()  # outside a notebook, showing it prints its repr: harmless
    live(result.history[:1])
    first = live.image.value
    live(result.history)
    assert first[:4] == b"\x89PNG" and live.image.value != first
    assert [r["step"] for r in live.history] == [0, 4, 8]
    fig = plot_history(result.history, step_losses=result.step_losses)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 3  # each step, train, val
    with pytest.raises(ValueError, match="history is empty"):
        plot_history([])


@pytest.mark.skipif(sys.platform == "win32", reason="kernel interrupts are messages on Windows")
def test_the_notebook_stop_button_ends_training_after_a_whole_step():
    """Interrupt a real Jupyter kernel (what the stop button does) while train() runs in it."""
    from jupyter_client.manager import start_new_kernel

    outputs = []
    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        code = (
            "import torch\n"
            "from llmlab.gpt import GPT, GPTConfig\n"
            "from llmlab.training import TrainConfig, train\n"
            "torch.manual_seed(0)\n"
            "ids = torch.randint(0, 20, (5000,))\n"
            "model = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16))\n"
            "config = TrainConfig(max_steps=10**7, batch_size=4, block_size=16, eval_interval=10**7,\n"
            "                     eval_steps=1, device='cpu')\n"
            "def announce(step, loss):\n"
            "    if step == 20:\n"
            "        print('training', flush=True)\n"
            "result = train(model, ids, None, config, progress=False, step_callback=announce)\n"
        )
        msg_id = kc.execute(code)
        deadline = time.monotonic() + 60
        while True:  # wait until steps are being taken, then press "stop"
            msg = kc.get_iopub_msg(timeout=60)
            if msg["msg_type"] == "stream" and "training" in msg["content"]["text"]:
                break
            assert msg["msg_type"] != "error", msg["content"]
            assert time.monotonic() < deadline, "train() did not start within 60 s"
        time.sleep(0.5)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]  # no KeyboardInterrupt leaked
        check = kc.execute_interactive(
            "print(result.interrupted, result.step, len(result.step_losses), result.step > 20)",
            timeout=60, output_hook=lambda m: outputs.append(m))
        assert check["content"]["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    interrupted, step, n_losses, past_step_20 = text.split()
    assert interrupted == "True" and past_step_20 == "True"
    assert int(step) == int(n_losses) > 0  # the last step was completed and counted


def test_a_stopped_run_paints_the_notebook_progress_bar_amber_not_red(monkeypatch):
    import llmlab.training as training
    from tqdm.notebook import tqdm as notebook_tqdm

    bars = []

    class Recording(notebook_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(training, "tqdm", Recording)

    def press_stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=1, n_embd=8))
    ids = torch.arange(200) % 5
    config = TrainConfig(max_steps=10, batch_size=2, block_size=8, warmup_steps=1, eval_interval=5,
                         eval_steps=1, device="cpu")
    result = training.train(model, ids, ids, config, step_callback=press_stop)
    assert result.interrupted and result.step == 3
    bar = bars[0].container.children[1]  # (description, bar, numbers)
    assert bar.bar_style == "warning" and "stopped at step 3" in bars[0].desc
    finished = training.train(model, ids, ids, config, state=result.state)
    assert not finished.interrupted and bars[1].container.children[1].bar_style == "success"
