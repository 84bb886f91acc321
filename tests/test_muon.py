"""Tests for Muon (llmlab.muon) and its place in the one training loop (TrainConfig.optimizer)."""
import pytest
import torch
import torch.nn as nn

from llmlab.checkpoint import load_checkpoint
from llmlab.classifier import ClassifierConfig, GPTClassifier
from llmlab.gpt import GPT, GPTConfig
from llmlab.muon import MuonAdamW, newton_schulz
from llmlab.train import main
from llmlab.training import TrainConfig, make_optimizer, train

from test_train_cli import TINY, run_command, _torchrun


def _polar(g: torch.Tensor) -> torch.Tensor:
    """The exact U V^T of g by SVD: what Newton-Schulz approximates."""
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    return u @ vh


@pytest.mark.parametrize("seed", range(6))
def test_newton_schulz_gives_a_nearly_orthogonal_matrix_close_to_the_polar_factor(seed):
    gen = torch.Generator().manual_seed(seed)
    rows, cols = torch.randint(2, 90, (2,), generator=gen).tolist()  # tall, wide or square
    # Uneven singular values, as gradients have: a few large directions, many small ones.
    r = min(rows, cols)
    u = torch.linalg.qr(torch.randn(rows, r, generator=gen))[0]  # (rows, r), orthonormal columns
    v = torch.linalg.qr(torch.randn(cols, r, generator=gen))[0]  # (cols, r)
    g = u @ torch.diag(torch.logspace(0, -1.5, r)) @ v.T  # singular values from 1 down to 0.03
    o = newton_schulz(g)
    assert o.shape == g.shape and o.dtype == g.dtype
    sv = torch.linalg.svdvals(o)
    assert sv.min() > 0.5 and sv.max() < 1.3, sv  # every direction gets a step of about 1
    sv_g = torch.linalg.svdvals(g)
    assert r == 2 or sv_g.max() / sv_g.min() > 20  # ... though g's differ 30-fold
    # Same singular vectors as the exact polar factor: o's rows lie along U V^T's.
    cosine = (o * _polar(g)).sum() / (o.norm() * _polar(g).norm())
    assert cosine > 0.97


def test_newton_schulz_refuses_a_vector_and_treats_a_stack_matrix_by_matrix():
    with pytest.raises(ValueError, match="2-D"):
        newton_schulz(torch.randn(5))
    stack = torch.randn(3, 6, 9)
    one_by_one = torch.stack([newton_schulz(m) for m in stack])
    torch.testing.assert_close(newton_schulz(stack), one_by_one, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(newton_schulz(stack.mT), one_by_one.mT, rtol=1e-4, atol=1e-5)


def test_one_muon_step_moves_a_matrix_by_an_orthogonal_update_of_size_lr():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(24, 40))
    w.grad = torch.randn(24, 40) * torch.logspace(0, -3, 40)  # very uneven directions
    before = w.detach().clone()
    opt = MuonAdamW([{"params": [w], "use_muon": True}], lr=0.05, momentum=0.9)
    opt.step()
    step = (w.detach() - before) / -0.05  # wide matrix: the aspect factor is 1
    sv = torch.linalg.svdvals(step)
    assert sv.min() > 0.5 and sv.max() < 1.3
    # A tall matrix's step is scaled by sqrt(rows / cols).
    t = nn.Parameter(torch.zeros(64, 16))
    t.grad = torch.randn(64, 16)
    MuonAdamW([{"params": [t], "use_muon": True}], lr=0.1).step()
    sv_t = torch.linalg.svdvals(t.detach() / -0.1)
    assert 0.5 * 2 < sv_t.min() and sv_t.max() < 1.3 * 2  # sqrt(64 / 16) = 2


def test_the_adamw_groups_of_muonadamw_match_torch_adamw():
    torch.manual_seed(0)
    a = [nn.Parameter(torch.randn(5, 3)), nn.Parameter(torch.randn(7))]
    b = [nn.Parameter(p.detach().clone()) for p in a]
    ours = MuonAdamW([{"params": [a[0]], "weight_decay": 0.1}, {"params": [a[1]]}], lr=3e-3,
                     betas=(0.9, 0.99))
    ref = torch.optim.AdamW([{"params": [b[0]], "weight_decay": 0.1},
                             {"params": [b[1]], "weight_decay": 0.0}], lr=3e-3, betas=(0.9, 0.99))
    for _ in range(20):
        grads = [torch.randn_like(p) for p in a]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_a_muon_group_refuses_vectors_and_embeddings_stay_with_adamw():
    with pytest.raises(ValueError, match="2-D weight matrices only"):
        MuonAdamW([{"params": [nn.Parameter(torch.zeros(4))], "use_muon": True}])
    for tie in (True, False):
        model = GPT(GPTConfig(30, block_size=8, n_layer=2, n_head=2, n_embd=16, tie_weights=tie))
        opt = make_optimizer(model, TrainConfig(optimizer="muon"))
        assert isinstance(opt, MuonAdamW)
        groups = {g["group"]: {id(p) for p in g["params"]} for g in opt.param_groups}
        names = {id(p): n for n, p in model.named_parameters()}
        muon = sorted(names[i] for i in groups["muon"])
        # Attention (qkv, output) and MLP (in, out) matrices of each layer: 4 per layer.
        assert len(muon) == 4 * 2 and all(".h." in n and n.endswith("weight") for n in muon)
        for name in ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight"):
            p = dict(model.named_parameters()).get(name)
            if p is not None:
                assert id(p) not in groups["muon"] and id(p) in groups["decay"], name
        assert all(model.get_parameter(n).dim() == 1 for n in (names[i] for i in groups["no_decay"]))
    # A classifier's head maps to class scores: AdamW, not Muon.
    clf = GPTClassifier(GPT(GPTConfig(30, block_size=8, n_layer=1, n_head=2, n_embd=16)),
                        ClassifierConfig(n_classes=3))
    muon_params = next(g for g in make_optimizer(clf, TrainConfig(optimizer="muon")).param_groups
                       if g["group"] == "muon")["params"]
    assert all(p is not clf.head.weight for p in muon_params) and len(muon_params) == 4
    # The default stays plain AdamW.
    assert type(make_optimizer(clf, TrainConfig())) is torch.optim.AdamW


def test_bad_optimizer_settings_and_a_model_without_hidden_matrices_are_refused():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="muon_lr > 0"):
        TrainConfig(optimizer="muon", muon_lr=0.0)
    with pytest.raises(ValueError, match="muon_momentum < 1"):
        TrainConfig(optimizer="muon", muon_momentum=1.0)
    with pytest.raises(ValueError, match="no hidden weight matrices"):
        make_optimizer(nn.Sequential(nn.Embedding(5, 4)), TrainConfig(optimizer="muon"))


def _pattern_ids(n: int = 6000, period: int = 7) -> torch.Tensor:
    """A learnable stream: a fixed random cycle of 7 tokens out of 20, repeated."""
    cycle = torch.randperm(20, generator=torch.Generator().manual_seed(0))[:period]
    return cycle.repeat(n // period + 1)[:n]


def _tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(20, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0, **kw))


def _config(**kw) -> TrainConfig:
    args = dict(max_steps=60, batch_size=8, block_size=16, warmup_steps=5, eval_interval=30,
                eval_steps=4, optimizer="muon", device="cpu")
    return TrainConfig(**{**args, **kw})


@pytest.mark.parametrize("preset", ["gpt2", "llama"])
def test_a_short_muon_run_lowers_the_loss(preset):
    ids = _pattern_ids()
    model = _tiny() if preset == "gpt2" else _tiny(norm="rmsnorm", mlp="swiglu", positions="rope",
                                                   bias=False, tie_weights=False)
    result = train(model, ids, ids, _config(), progress=False)
    first, last = result.history[0]["val_loss"], result.history[-1]["val_loss"]
    assert first > 2.5 and last < 0.5 * first, result.history  # the cycle is learnt


def test_a_muon_run_resumes_from_its_checkpoint_exactly_and_refuses_another_optimizer(tmp_path):
    ids = _pattern_ids()
    straight = train(_tiny(), ids, ids, _config(max_steps=20, eval_interval=10), progress=False)
    path = tmp_path / "muon.pt"

    def stop_at_10(step, loss):
        if step == 10:
            raise KeyboardInterrupt  # the stop button, half-way through the same run

    first = train(_tiny(), ids, ids, _config(max_steps=20, eval_interval=10, checkpoint_path=path),
                  progress=False, step_callback=stop_at_10)
    assert first.step == 10 and first.interrupted
    ckpt = load_checkpoint(path)
    assert any(g.get("use_muon") for g in ckpt.optimizer_state["param_groups"])
    resumed = train(_tiny(), ids, ids, _config(max_steps=20, eval_interval=10), resume_from=path,
                    progress=False)
    assert resumed.step_losses == straight.step_losses  # bit for bit: momentum was saved
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="trained with optimizer='muon'.*resume with optimizer='muon'"):
        train(_tiny(), ids, ids, _config(max_steps=20, optimizer="adamw"), resume_from=path,
              progress=False)


def test_cli_trains_a_modern_gpt_with_muon_and_resumes_it(tmp_path, text_file):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "modern.pt"
        assert main([*TINY, "--text-file", str(text_file), "--max-steps", "4", "--eval-interval", "2",
                     "--sample", "5", "--norm", "rmsnorm", "--mlp", "swiglu", "--positions", "rope",
                     "--qk-norm", "--no-tie-weights", "--no-bias", "--optimizer", "muon",
                     "--muon-lr", "0.03", "--out", str(out)]) == 0
        ckpt = load_checkpoint(out)
        cfg = ckpt.model_config
        assert (cfg["norm"], cfg["mlp"], cfg["positions"], cfg["qk_norm"], cfg["tie_weights"],
                cfg["bias"]) == ("rmsnorm", "swiglu", "rope", True, False, False)
        assert ckpt.train_config["optimizer"] == "muon" and ckpt.train_config["muon_lr"] == 0.03
        assert main(["--out", str(out), "--resume", "--max-steps", "6", "--sample", "0",
                     "--no-progress"]) == 0
        assert load_checkpoint(out).step == 6
        with pytest.raises(SystemExit, match="mlp='swiglu'"):
            main(["--out", str(out), "--resume", "--mlp", "gelu"])
        with pytest.raises(SystemExit, match="optimizer must be one of"):
            main([*TINY, "--text-file", str(text_file), "--optimizer", "adam",
                  "--out", str(tmp_path / "bad.pt")])
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_cli_under_torchrun_trains_the_llama_preset_with_muon(tmp_path, text_file):
    out = tmp_path / "ddp_modern.pt"
    code, log = run_command([*_torchrun(), "--standalone", "--nproc_per_node=2",
                             "-m", "llmlab.train", *TINY, "--text-file", str(text_file),
                             "--max-steps", "4", "--eval-interval", "2", "--out", str(out),
                             "--sample", "10", "--norm", "rmsnorm", "--mlp", "swiglu",
                             "--positions", "rope", "--no-bias", "--no-tie-weights",
                             "--optimizer", "muon"])
    assert code == 0, log
    ckpt = load_checkpoint(out)
    assert ckpt.step == 4 and ckpt.model_config["positions"] == "rope"
    assert ckpt.train_config["optimizer"] == "muon"
    assert ckpt.history[-1]["tokens_seen"] == 4 * 4 * 16 * 2
