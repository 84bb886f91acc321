"""The modern GPT's parts (RMSNorm, SwiGLU, ReLU², RoPE, no positions, QK-norm, untied head, no
biases): each option keeps the GPT causal, generation with the KV cache equal to generation
without it, checkpoints round-tripping, and training working; and each part computes its formula."""
import math

import pytest
import torch

from llmlab.attention import AttentionConfig, MultiHeadAttention
from llmlab.checkpoint import load_checkpoint, save_checkpoint
from llmlab.gpt import GPT, GPTConfig
from llmlab.transformer import FeedForward, RMSNorm, swiglu_width
from llmlab.training import TrainConfig, train

OPTIONS = {
    "gpt2": {},
    "rmsnorm": {"norm": "rmsnorm"},
    "swiglu": {"mlp": "swiglu"},
    "relu2": {"mlp": "relu2"},
    "attention-only": {"mlp": "none"},
    "rope": {"positions": "rope"},
    "no positions": {"positions": "none"},
    "qk_norm": {"qk_norm": True},
    "untied": {"tie_weights": False},
    "no biases": {"bias": False},
    "llama": "llama",
}


def build(option, seed=0, **size):
    """A tiny GPT with one option (or a preset), its weights scaled up so every path matters."""
    size = {"vocab_size": 11, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 16, **size}
    spec = OPTIONS[option]
    config = GPTConfig.preset(spec, **size) if isinstance(spec, str) else GPTConfig(**size, **spec)
    torch.manual_seed(seed)
    model = GPT(config).eval()
    with torch.no_grad():  # N(0, 0.02) weights give near-uniform attention: a weak test
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.mul_(25.0)
    return model


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_is_causal(option):
    model = build(option)
    idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(1))
    base = model(idx).logits
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    logits = model(changed).logits
    torch.testing.assert_close(logits[:, :5], base[:, :5])  # the past cannot see the future
    assert not torch.allclose(logits[:, 5:], base[:, 5:])


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_generates_the_same_with_and_without_the_cache(option):
    model = build(option)
    prompt = torch.tensor([[1, 2, 3]])
    # 12 new tokens from a 3-token prompt: past block_size = 8, where the window slides.
    greedy = [model.generate(prompt, 12, greedy=True, use_cache=c) for c in (True, False)]
    assert torch.equal(*greedy)
    sampled = [model.generate(prompt, 12, generator=torch.Generator().manual_seed(3), use_cache=c)
               for c in (True, False)]
    assert torch.equal(*sampled)


@pytest.mark.parametrize("option", OPTIONS)
def test_each_option_round_trips_through_a_checkpoint(option, tmp_path):
    model = build(option)
    save_checkpoint(tmp_path / "m.pt", model)
    loaded = load_checkpoint(tmp_path / "m.pt").model
    assert loaded.config == model.config
    idx = torch.tensor([[1, 2, 3, 4]])
    torch.testing.assert_close(loaded.eval()(idx).logits, model(idx).logits)


@pytest.mark.parametrize("option", ["rmsnorm", "swiglu", "rope", "qk_norm", "llama"])
def test_a_short_run_lowers_the_loss(option):
    torch.manual_seed(0)
    model = GPT(build(option).config)  # freshly initialised, not scaled
    ids = torch.arange(400) % 7 + 2  # a repeating pattern: easy to learn
    result = train(model, ids[:300], ids[300:], TrainConfig(max_steps=40, batch_size=8, block_size=8,
                                                            lr=1e-2, warmup_steps=5, eval_interval=20,
                                                            eval_steps=2, device="cpu"))
    assert result.history[-1]["val_loss"] < 0.5 * result.history[0]["val_loss"]


def test_options_change_what_they_should_and_return_attention():
    gpt2, llama = build("gpt2"), build("llama")
    assert "wpe" in gpt2.transformer and "wpe" not in llama.transformer
    assert gpt2.lm_head.weight is gpt2.transformer.wte.weight
    assert llama.lm_head.weight is not llama.transformer.wte.weight
    assert not any(name.endswith("bias") for name, _ in llama.named_parameters())
    assert isinstance(llama.transformer.ln_f, RMSNorm)
    out = llama(torch.tensor([[1, 2, 3]]), return_attention=True)
    assert out.attention.shape == (2, 1, 2, 3, 3)
    torch.testing.assert_close(out.logits, llama(torch.tensor([[1, 2, 3]])).logits)  # both paths agree


def test_rmsnorm_swiglu_and_relu2_compute_their_formulas():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    torch.testing.assert_close(norm(x), x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight)
    ff = FeedForward(8, kind="swiglu")
    h = swiglu_width(8)
    assert h % 8 == 0 and h >= 8 * 8 / 3 and ff.c_fc.out_features == 2 * h
    gate, up = ff.c_fc(x)[..., :h], ff.c_fc(x)[..., h:]
    torch.testing.assert_close(ff(x), ff.c_proj(gate * torch.sigmoid(gate) * up))
    ff2 = FeedForward(8, kind="relu2")
    torch.testing.assert_close(ff2(x), ff2.c_proj(torch.clamp(ff2.c_fc(x), min=0) ** 2))


def test_rope_scores_depend_only_on_relative_position():
    torch.manual_seed(0)
    attn = MultiHeadAttention(AttentionConfig(16, 2, rope=True, causal=True))
    q, k = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 5, 8)
    scores = [(lambda a, b: a @ b.transpose(-2, -1))(*attn._position(q, k, start)) for start in (0, 7)]
    torch.testing.assert_close(scores[0], scores[1], atol=1e-4, rtol=1e-4)  # all positions shifted by 7
    plain = q @ k.transpose(-2, -1)
    assert not torch.allclose(scores[0], plain, atol=1e-3)  # but the rotation did change the scores


def test_qk_norm_bounds_the_queries_and_keys():
    torch.manual_seed(0)
    attn = MultiHeadAttention(AttentionConfig(16, 2, qk_norm=True))
    q, k = 100 * torch.randn(1, 2, 5, 8), 100 * torch.randn(1, 2, 5, 8)
    qn, kn = attn._position(q, k, 0)
    torch.testing.assert_close(qn.pow(2).mean(-1), torch.ones(1, 2, 5), atol=1e-3, rtol=1e-3)
    assert math.isclose(float(kn.detach().pow(2).mean()), 1.0, rel_tol=1e-3)


def test_bad_options_get_clear_errors():
    with pytest.raises(ValueError, match="GPTConfig.norm must be one of 'layernorm', 'rmsnorm'"):
        GPTConfig(norm="batchnorm")
    with pytest.raises(ValueError, match="GPTConfig.positions must be one of"):
        GPTConfig(positions="alibi")
    with pytest.raises(ValueError, match="even head width"):
        GPTConfig(n_embd=12, n_head=4, positions="rope")  # head width 3
    with pytest.raises(ValueError, match="unknown preset 'mistral'"):
        GPTConfig.preset("mistral")
    with pytest.raises(ValueError, match="needs self-attention"):
        AttentionConfig(16, 2, rope=True, d_kv=16)
    llama = build("llama")
    with pytest.raises(ValueError, match="not a GPT-2"):
        llama.gpt2_state_dict()
    with pytest.raises(ValueError, match="not a GPT-2"):
        llama.load_gpt2_state_dict(build("gpt2").gpt2_state_dict())
    assert build("gpt2").config.is_gpt2 and not llama.config.is_gpt2


def test_swiglu_keeps_about_the_parameter_count_of_gelu():
    gelu, swiglu = build("gpt2", n_embd=48), build("swiglu", n_embd=48)
    assert abs(swiglu.num_parameters() - gelu.num_parameters()) / gelu.num_parameters() < 0.03


@pytest.mark.parametrize("option", OPTIONS)
def test_the_attention_explorer_shows_every_option(option):
    from llmlab.viz import AttentionExplorer

    model = build(option)
    idx = torch.randint(11, (1, 8), generator=torch.Generator().manual_seed(3))
    attention = model(idx, return_attention=True).attention  # (L, B, H, T, T)
    explorer = AttentionExplorer(attention, [str(t) for t in idx[0].tolist()], batch_index=0,
                                 masked="causal")
    assert bytes(explorer.image.value).startswith(b"\x89PNG")
    for w in attention:  # causal rows of probabilities, whatever the design
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
        assert (w.triu(1) == 0).all()
