"""Checkpoints never lose a run and never run a file's code: pickle payloads are refused for
safety (whichever loader meets them), orphaned temporary files are cleaned up, a second Ctrl-C
cannot cut the final save, and only loadable, writable checkpoints are ever attempted."""
import io
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import llmlab.training as training_module
from llmlab.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from llmlab.gpt import GPT, GPTConfig
from llmlab.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
ROOT = Path(__file__).resolve().parent.parent
IDS = torch.randint(0, 20, (3000,), generator=torch.Generator().manual_seed(0))


def tiny_gpt(seed=0, **overrides):
    """A GPT that trains a step in milliseconds."""
    torch.manual_seed(seed)
    settings = dict(vocab_size=20, block_size=16, n_layer=1, n_head=2, n_embd=16)
    return GPT(GPTConfig(**{**settings, **overrides}))


def quick(**overrides):
    """A short CPU run."""
    settings = dict(max_steps=6, batch_size=4, block_size=16, warmup_steps=1, eval_interval=3,
                    eval_steps=1, device="cpu")
    return TrainConfig(**{**settings, **overrides})


# ---------------------------------------------------------------- pickle payloads

class _Payload:
    """Unpickling this would run a shell command that leaves a marker file behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_payload(kind: str, path: Path, marker: Path) -> Path:
    """Write one kind of malicious or non-tensor checkpoint to path."""
    evil = {"format": "llmlab-checkpoint", "x": _Payload(marker)}
    if kind == "reduce_zip":
        torch.save(evil, path)
    elif kind == "reduce_legacy":
        torch.save(evil, path, _use_new_zipfile_serialization=False)
    elif kind in ("raw_pickle_4", "raw_pickle_0"):
        path.write_bytes(pickle.dumps(evil, protocol=4 if kind.endswith("4") else 0))
    elif kind == "swapped_data_pkl":  # a real checkpoint whose data.pkl was replaced
        buf = io.BytesIO()
        save_checkpoint(path, tiny_gpt())
        with zipfile.ZipFile(path) as zin, zipfile.ZipFile(buf, "w") as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename.endswith("data.pkl"):
                    data = pickle.dumps(evil, protocol=2)
                zout.writestr(item, data)
        path.write_bytes(buf.getvalue())
    elif kind == "builtins_eval":
        path.write_bytes(b"cbuiltins\neval\n(S'__import__(\"os\").system(\"touch " +
                         str(marker).encode() + b"\")'\ntR.")
    elif kind == "numpy_scalar":  # harmless but not a tensor: refused all the same
        torch.save({"format": "llmlab-checkpoint", "lr": np.float64(1e-3)}, path)
    return path


PAYLOADS = ["reduce_zip", "reduce_legacy", "raw_pickle_4", "raw_pickle_0", "swapped_data_pkl",
            "builtins_eval", "numpy_scalar"]


def _assert_refused_for_safety(message: str, marker: Path) -> None:
    assert "refused for safety" in message and "not tensors" in message, message
    assert "weights_only" not in message and "corrupted" not in message, message
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_pickle_payload_is_refused_for_safety_by_load_checkpoint(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = _write_payload(kind, tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    _assert_refused_for_safety(str(err.value), marker)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("kind", ["reduce_zip", "swapped_data_pkl", "raw_pickle_4"])
def test_a_pickle_payload_is_refused_when_resuming_training(tmp_path, kind):
    marker = tmp_path / "PWNED"
    path = _write_payload(kind, tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError) as err:
        train(tiny_gpt(), IDS, None, quick(), progress=False, resume_from=path)
    _assert_refused_for_safety(str(err.value), marker)


def test_a_pickle_payload_is_refused_by_the_cli_resume(tmp_path, capsys):
    from llmlab.train import main
    marker = tmp_path / "PWNED"
    path = _write_payload("reduce_legacy", tmp_path / "run.pt", marker)
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(path), "--resume", "--device", "cpu", "--no-progress"])
    _assert_refused_for_safety(str(exit_.value.code), marker)


def test_a_pickle_payload_is_refused_by_load_pretrained(tmp_path, monkeypatch):
    import hashlib
    import shutil

    from llmlab.data import data_dir
    from llmlab.pretrained import PRETRAINED, load_pretrained
    copy = tmp_path / "data"
    (copy / "pretrained").mkdir(parents=True)
    for rel in PRETRAINED["shakespeare_char"]:
        shutil.copy(data_dir() / rel, copy / rel)
    marker = tmp_path / "PWNED"
    weights = copy / PRETRAINED["shakespeare_char"][0]
    _write_payload("swapped_data_pkl", weights, marker)
    # A swapped file with a matching checksum: someone replaced both, the loader must still refuse.
    sums = (data_dir() / "SHA256SUMS").read_text().splitlines()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    rel = PRETRAINED["shakespeare_char"][0]
    (copy / "SHA256SUMS").write_text("\n".join(
        f"{digest}  {rel}" if line.endswith(rel) else line for line in sums) + "\n")
    monkeypatch.setenv("LLMLAB_DATA", str(copy))
    with pytest.raises(CheckpointError) as err:
        load_pretrained("shakespeare_char")
    _assert_refused_for_safety(str(err.value), marker)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "text"])
def test_damaged_files_are_called_corrupted_without_the_weights_only_hint(tmp_path, damage):
    path = save_checkpoint(tmp_path / "run.pt", tiny_gpt())
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 3],
                      "garbage": bytes(np.random.default_rng(0).integers(0, 256, 2000, np.uint8)),
                      "empty": b"", "text": b"step 10: loss 2.1\n"}[damage])
    with pytest.raises(CheckpointError, match="truncated or corrupted") as err:
        load_checkpoint(path)
    assert "weights_only" not in str(err.value)


# ---------------------------------------------------------------- temporary files

def test_save_removes_the_temporary_file_a_killed_save_left_behind(tmp_path):
    path = tmp_path / "ck.pt"
    # A child process that dies (kill -9) in the middle of writing: its fsync never returns.
    script = textwrap.dedent(f"""
        import os, time, torch
        import llmlab.checkpoint as c
        from llmlab.gpt import GPT, GPTConfig
        os.fsync = lambda fd: (print("writing", flush=True), time.sleep(600))
        c.save_checkpoint({str(path)!r}, GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=1,
                                                       n_head=2, n_embd=16)))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    orphans = list(tmp_path.glob(".ck.pt.*.tmp"))
    assert len(orphans) == 1 and not path.exists()
    # A live writer's file (this process's parent is alive) must be left alone.
    live = tmp_path / f".ck.pt.{os.getppid()}-0badf00d.tmp"
    live.write_bytes(b"still being written")
    save_checkpoint(path, tiny_gpt())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ck.pt", live.name])
    load_checkpoint(path)
    # ... unless it is older than any save can take: then it is an orphan too.
    old = time.time() - 2 * 3600
    os.utime(live, (old, old))
    save_checkpoint(path, tiny_gpt())
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


# ---------------------------------------------------------------- Ctrl-C

@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to oneself needs POSIX")
@pytest.mark.parametrize("when", ["final", "periodic"])
def test_a_second_ctrl_c_during_a_save_cannot_break_it(tmp_path, monkeypatch, when):
    path = tmp_path / "run.pt"
    real_save = training_module.save_checkpoint
    saves = []

    def save_while_interrupted(*args, **kwargs):
        """A save during which Ctrl-C is pressed (again): before the fix this raised mid-save."""
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)
        saves.append(args[3])
        return real_save(*args, **kwargs)

    monkeypatch.setattr(training_module, "save_checkpoint", save_while_interrupted)

    def first_ctrl_c(step, loss):
        if when == "final" and step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the stop button: stop after this step

    config = quick(max_steps=1000, checkpoint_path=str(path),
                   checkpoint_interval=2 if when == "periodic" else 0)
    before = signal.getsignal(signal.SIGINT)  # default, or SIG_IGN under nohup / some CI runners
    result = train(tiny_gpt(), IDS, None, config, progress=False, step_callback=first_ctrl_c)
    assert result.interrupted
    assert saves[-1] == result.step and load_checkpoint(path).step == result.step
    assert result.step == (3 if when == "final" else 2)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to a child process on Windows")
def test_two_ctrl_c_5_ms_apart_never_lose_the_run(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 300)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for trial, delay in enumerate((0.0, 0.05, 0.3)):
        out = tmp_path / f"run{trial}.pt"
        proc = subprocess.Popen(
            [sys.executable, "-m", "llmlab.train", "--n-layer", "2", "--n-head", "2", "--n-embd",
             "64", "--block-size", "32", "--batch-size", "4", "--eval-steps", "1", "--warmup-steps",
             "2", "--device", "cpu", "--no-progress", "--text-file", str(text), "--max-steps",
             "1000000", "--eval-interval", "1000000", "--checkpoint-interval", "3", "--sample", "0",
             "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            log = []
            for line in proc.stdout:
                log.append(line)
                if line.startswith("step      0:"):
                    break
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            time.sleep(0.005)
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        log = "".join(log) + rest
        assert proc.returncode == 130 and "Traceback" not in log, log
        saved = load_checkpoint(out)  # the old checkpoint or the new one: always a whole one
        assert len(saved.step_losses) == saved.step
        assert not list(tmp_path.glob(f".run{trial}.pt.*.tmp"))


def test_ctrl_c_before_training_starts_says_nothing_was_trained(tmp_path, monkeypatch, capsys):
    import llmlab.train as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the corpus is being read

    monkeypatch.setattr(cli, "load_text", interrupted)
    out = tmp_path / "run.pt"
    assert cli.main(["--out", str(out), "--device", "cpu", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "interrupted before training started: nothing was trained" in err
    assert not out.exists()


# ---------------------------------------------------------------- values the loader would refuse

def test_numpy_numbers_in_the_configs_become_plain_and_the_checkpoint_loads(tmp_path):
    config = quick(lr=np.float64(2e-3), min_lr=np.float32(1e-4), max_steps=np.int64(4),
                   checkpoint_path=tmp_path / "run.pt")
    assert type(config.lr) is float and type(config.max_steps) is int
    assert isinstance(config.checkpoint_path, str)
    model = tiny_gpt(dropout=np.float64(0.1))
    train(model, IDS, None, config, progress=False,
          checkpoint_extra={"lr": np.float32(0.5), "n": np.int64(3), "tags": (np.bool_(True),)})
    loaded = load_checkpoint(tmp_path / "run.pt")
    assert loaded.extra == {"lr": 0.5, "n": 3, "tags": (True,)}
    assert loaded.train_config["lr"] == 2e-3 and loaded.model_config["dropout"] == 0.1


@pytest.mark.parametrize("extra, named", [({"out": Path("runs/x.pt")}, r"extra\['out'\].*str\(path\)"),
                                          ({"a": np.zeros(3)}, r"extra\['a'\].*tolist"),
                                          ({"f": {1, 2}}, r"extra\['f'\].*set")])
def test_a_value_the_loader_refuses_is_refused_at_save_time(tmp_path, extra, named):
    path = tmp_path / "run.pt"
    with pytest.raises(TypeError, match=named):
        save_checkpoint(path, tiny_gpt(), extra=extra)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file


def test_save_checkpoint_given_a_state_dict_says_pass_the_model(tmp_path):
    with pytest.raises(TypeError, match=r"a state_dict\?\): pass the model"):
        save_checkpoint(tmp_path / "run.pt", tiny_gpt().state_dict())


# ---------------------------------------------------------------- paths checked before step 1

@pytest.mark.parametrize("where", ["folder", "file_as_folder", "unwritable"])
def test_an_unwritable_checkpoint_path_fails_before_step_1(tmp_path, where):
    if where == "folder":
        path, named = tmp_path, "is a folder"
    elif where == "file_as_folder":
        (tmp_path / "runs").write_text("not a folder")
        path, named = tmp_path / "runs" / "run.pt", "is a file, not a folder"
    else:  # /proc refuses new files even to root, unlike a chmod-ed folder
        path, named = Path("/proc/llmlab-run.pt"), "cannot write the checkpoint"
    steps = []
    with pytest.raises(ValueError, match=named):
        train(tiny_gpt(), IDS, None, quick(checkpoint_path=str(path)), progress=False,
              step_callback=lambda step, loss: steps.append(step))
    assert steps == []


def test_cli_out_that_is_a_folder_or_unwritable_fails_before_training(tmp_path):
    from llmlab.train import main
    with pytest.raises(SystemExit, match="is a folder"):
        main(["--out", str(tmp_path), "--device", "cpu"])
    with pytest.raises(SystemExit, match="cannot write the checkpoint"):
        main(["--out", "/proc/llmlab-run.pt", "--device", "cpu"])


def test_cli_non_utf8_text_file_is_named(tmp_path):
    from llmlab.train import main
    text = tmp_path / "latin1.txt"
    text.write_bytes("café au lait\n".encode("latin-1") * 100)
    with pytest.raises(SystemExit, match=r"latin1\.txt is not UTF-8 text \(byte 0xe9"):
        main(["--out", str(tmp_path / "run.pt"), "--text-file", str(text), "--device", "cpu"])
    assert not (tmp_path / "run.pt").exists()


# ---------------------------------------------------------------- settings and states

def test_warm_up_longer_than_the_run_and_zero_eval_steps_are_refused():
    with pytest.raises(ValueError, match=r"warmup_steps=100 is not shorter than the run \(max_steps=50\)"):
        TrainConfig(max_steps=50)
    with pytest.raises(ValueError, match="eval_steps must be an int >= 1"):
        TrainConfig(eval_steps=0)
    from llmlab.training import estimate_loss
    with pytest.raises(ValueError, match="eval_steps must be an int >= 1"):
        estimate_loss(tiny_gpt(), IDS, 2, 8, eval_steps=0)


@pytest.mark.parametrize("device, named", [("gpu", "unknown device 'gpu'"), ("tpu", "unknown device"),
                                           ("cuda:99", "cuda:99"), ("meta", "not supported")])
def test_a_device_that_is_not_here_is_named_before_training(device, named):
    from llmlab.pretrained import load_pretrained
    with pytest.raises(ValueError, match=named):
        train(tiny_gpt(), IDS, None, quick(device=device), progress=False)
    with pytest.raises(ValueError, match=named):
        load_pretrained(device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_a_gpu_says_use_cpu(tmp_path):
    from llmlab.train import main
    with pytest.raises(ValueError, match="no CUDA GPU.*device='cpu'"):
        train(tiny_gpt(), IDS, None, quick(device="cuda"), progress=False)
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        main(["--out", str(tmp_path / "run.pt"), "--device", "cuda"])


def test_a_dict_as_config_and_a_state_of_another_model_are_named():
    with pytest.raises(TypeError, match=r"TrainConfig\(\*\*d\)"):
        train(tiny_gpt(), IDS, None, {"max_steps": 5}, progress=False)
    done = train(tiny_gpt(), IDS, None, quick(max_steps=3), progress=False)
    with pytest.raises(ValueError, match="state= comes from a model of another size"):
        train(tiny_gpt(n_embd=32), IDS, None, quick(), progress=False, state=done.state)
    with pytest.raises(ValueError, match="another model"):
        train(tiny_gpt(n_layer=2), IDS, None, quick(), progress=False, state=done.state)


def test_an_unknown_model_class_and_an_optimizer_of_another_model_are_named(tmp_path):
    from llmlab.training import make_optimizer
    path = save_checkpoint(tmp_path / "run.pt", tiny_gpt(), make_optimizer(tiny_gpt(), quick()))
    data = torch.load(path, weights_only=True)
    data["model_class"] = "llmlab.no_such_module.GPT"
    torch.save(data, tmp_path / "renamed.pt")
    with pytest.raises(CheckpointError, match="no_such_module.GPT.*does not have"):
        load_checkpoint(tmp_path / "renamed.pt")
    model, other = tiny_gpt(), tiny_gpt()
    with pytest.raises(CheckpointError, match="parameters of another model"):
        load_checkpoint(path, model, make_optimizer(other, quick()))
