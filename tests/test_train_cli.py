"""Tests for the command line `python -m llmlab.train`: a short run, --resume, and torchrun (DDP)."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmlab.checkpoint import load_checkpoint
from llmlab.data import load_text
from llmlab.gpt import GPT
from llmlab.tokenizers import load_tokenizer
from llmlab.train import main, tokenizer_path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16",
        "--batch-size", "4", "--eval-steps", "2", "--warmup-steps", "2", "--device", "cpu",
        "--no-progress"]


def run_command(args, timeout=240):
    """Run a command with one thread per process; kill its whole process group on timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun's workers too
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(map(str, args))} ran past {timeout} s; output:\n{out}")
    return proc.returncode, out


def test_cli_trains_a_tiny_model_and_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "runs" / "shakespeare.pt"
    code, log = run_command([sys.executable, "-m", "llmlab.train", "--corpus", "tinyshakespeare",
                             "--tokenizer", "char", *TINY, "--max-steps", "6",
                             "--eval-interval", "3", "--out", str(out), "--seed", "1337",
                             "--sample", "20"])
    assert code == 0, log
    assert "step      6: train" in log and "--- sample ---" in log and f"saved {out}" in log
    ckpt = load_checkpoint(out)
    assert isinstance(ckpt.model, GPT) and ckpt.step == 6
    assert [row["step"] for row in ckpt.history] == [0, 3, 6]
    assert ckpt.model_config["n_embd"] == 16 and ckpt.train_config["max_steps"] == 6
    tokenizer = load_tokenizer(tokenizer_path(out))
    assert tokenizer.vocab_size == ckpt.model_config["vocab_size"] == 65
    assert sorted(p.name for p in out.parent.iterdir()) == ["shakespeare.pt",
                                                           "shakespeare.tokenizer.json"]


def test_cli_resume_continues_the_run_and_refuses_to_overwrite(tmp_path, text_file, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "run.pt"
        first = [*TINY, "--text-file", str(text_file), "--eval-interval", "2", "--out", str(out),
                 "--sample", "0"]
        assert main([*first, "--max-steps", "4"]) == 0
        before = load_checkpoint(out)
        with pytest.raises(SystemExit, match="already exists: pass --resume"):
            main([*first, "--max-steps", "4"])
        # Only what is given changes; model, data and the rest come from the checkpoint.
        assert main(["--out", str(out), "--resume", "--max-steps", "6", "--sample", "0",
                     "--no-progress"]) == 0
        after = load_checkpoint(out)
        assert after.step == 6 and [r["step"] for r in after.history] == [0, 2, 4, 6]
        assert after.step_losses[:4] == before.step_losses and len(after.step_losses) == 6
        assert after.train_config["eval_interval"] == 2 and after.extra["data"]["text_file"]
        with pytest.raises(SystemExit, match="n_embd=16"):
            main(["--out", str(out), "--resume", "--n-embd", "32"])
        with pytest.raises(SystemExit, match="no checkpoint at"):
            main(["--out", str(tmp_path / "nothing.pt"), "--resume"])
    finally:
        torch.set_num_threads(threads)
    assert "step      6: train" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="no SIGINT to a child process on Windows")
def test_cli_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path, text_file):
    out = tmp_path / "run.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmlab.train", *TINY, "--text-file",
                             str(text_file), "--max-steps", "1000000", "--eval-interval", "1000000",
                             "--sample", "0", "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        lines = []
        for line in proc.stdout:  # wait until training has begun (the step-0 evaluation)
            lines.append(line)
            if line.startswith("step      0:"):
                break
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log = "".join(lines) + rest
    assert proc.returncode == 130, log  # the usual exit status after Ctrl-C
    assert "interrupted at step" in log and "Continue with --resume" in log
    saved = load_checkpoint(out)
    assert 0 <= saved.step < 1000000 and len(saved.step_losses) == saved.step
    # + 3: the run must stay longer than its 2 warm-up steps, also when Ctrl-C came at step 0.
    assert main(["--out", str(out), "--resume", "--max-steps", str(saved.step + 3),
                 "--eval-interval", "1000000", "--sample", "0", "--no-progress"]) == 0
    after = load_checkpoint(out)
    assert after.step == saved.step + 3 and after.step_losses[:saved.step] == saved.step_losses


def test_cli_weights_only_drops_the_optimizer_and_cannot_be_resumed(tmp_path, text_file):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args = [*TINY, "--text-file", str(text_file), "--max-steps", "4", "--eval-interval", "2",
                "--sample", "0"]
        full, light = tmp_path / "full.pt", tmp_path / "light.pt"
        assert main([*args, "--out", str(full)]) == 0
        assert main([*args, "--out", str(light), "--weights-only"]) == 0
        a, b = load_checkpoint(full), load_checkpoint(light)
        assert a.optimizer_state is not None and b.optimizer_state is None
        assert b.rng_state == {} and b.step_losses == [] and b.extra["weights_only"] is True
        assert b.step == 4 and [r["val_loss"] for r in b.history] == [r["val_loss"] for r in a.history]
        assert {**b.train_config, "checkpoint_path": None} == {**a.train_config, "checkpoint_path": None}
        for name, tensor in a.model.state_dict().items():  # the same weights, bit for bit
            assert torch.equal(tensor, b.model.state_dict()[name]), name
        assert light.stat().st_size < 0.6 * full.stat().st_size
        with pytest.raises(SystemExit, match="weights only .* cannot be resumed"):
            main(["--out", str(light), "--resume", "--max-steps", "6"])
    finally:
        torch.set_num_threads(threads)


def _torchrun() -> list:
    """The torchrun command of this Python (the script, or its module if the script is missing)."""
    script = Path(sys.executable).parent / "torchrun"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_cli_under_torchrun_with_two_cpu_processes(tmp_path, text_file):
    out = tmp_path / "ddp.pt"
    code, log = run_command([*_torchrun(), "--standalone", "--nproc_per_node=2",
                             "-m", "llmlab.train", *TINY, "--text-file", str(text_file),
                             "--max-steps", "4", "--eval-interval", "2", "--out", str(out),
                             "--sample", "10"])
    assert code == 0, log
    assert log.count("2 process(es)") == 1 and log.count(f"saved {out}") == 1  # rank 0 only
    ckpt = load_checkpoint(out)
    assert ckpt.step == 4 and [r["step"] for r in ckpt.history] == [0, 2, 4]
    assert ckpt.history[-1]["tokens_seen"] == 4 * 4 * 16 * 2  # steps x batch x block x ranks
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt", "ddp.tokenizer.json", "tiny.txt"]


def test_cli_trains_on_several_corpora_joined_and_names_an_empty_one(tmp_path):
    out = tmp_path / "two.pt"
    assert main([*TINY, "--corpus", "persuasion,sense", "--max-steps", "3", "--eval-interval", "3",
                 "--sample", "0", "--out", str(out)]) == 0
    ckpt = load_checkpoint(out)
    assert ckpt.extra["data"]["corpus"] == "persuasion,sense"
    tok = load_tokenizer(tokenizer_path(out))
    both = load_text("persuasion") + load_text("sense")
    assert set(tok.vocab) == set(both)  # the vocabulary came from both texts
    with pytest.raises(SystemExit, match="has an empty name"):
        main([*TINY, "--corpus", "persuasion,", "--out", str(tmp_path / "x.pt")])


def test_cli_validates_on_a_separate_corpus_and_its_characters_are_in_the_vocabulary(tmp_path):
    # Lesson 10's recipe: train on the 7-character poems and most 5-character ones, validate on
    # the held-out 5-character poems, which must not leak into the training tokens.
    from llmlab.poems import FORM7, load_quatrains, poems_text, split_poems
    out = tmp_path / "poems.pt"
    assert main([*TINY, "--corpus", "tang5_train", "--val-corpus", "tang5_val", "--max-steps", "3",
                 "--eval-interval", "3", "--sample", "0", "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    assert saved.extra["data"]["val_corpus"] == "tang5_val"
    tok = load_tokenizer(tokenizer_path(out))
    train_poems, val_poems = split_poems(load_quatrains())
    assert set(tok.vocab) == set(poems_text(train_poems) + poems_text(val_poems))
    # The derived corpora are exactly the poems, one per line.
    from llmlab.train import _corpus_text
    assert _corpus_text("tang5_val") == poems_text(val_poems)
    assert _corpus_text("tang5_quatrains") == poems_text(train_poems + val_poems)
    assert _corpus_text("tang7_quatrains") == poems_text(load_quatrains("tang7_simplified", FORM7))
    assert not set(val_poems) & set(train_poems)
    with pytest.raises(SystemExit, match="unknown corpus 'tang6_val'"):
        main([*TINY, "--corpus", "tang5_train", "--val-corpus", "tang6_val", "--out",
              str(tmp_path / "x.pt")])
