"""Tests for llmlab.scale: counts from a config against built models and GPT-2's published sizes."""
import pytest
import torch

from llmlab.gpt import GPT, GPTConfig
from llmlab.scale import (GPT2_SIZES, gpt2_config, inference_flops_per_token, kv_cache_bytes,
                          parameter_count, training_flops_per_token)
from llmlab.attention import KVCache

OPTIONS = [{}, {"norm": "rmsnorm"}, {"mlp": "swiglu"}, {"mlp": "relu2"}, {"mlp": "none"}, {"positions": "rope"},
           {"positions": "none"}, {"qk_norm": True}, {"tie_weights": False}, {"bias": False},
           {"norm": "rmsnorm", "mlp": "swiglu", "positions": "rope", "bias": False,
            "tie_weights": False, "qk_norm": True}]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "gpt2")
def test_parameter_count_equals_the_built_model_for_every_option(option, seed):
    gen = torch.Generator().manual_seed(seed)
    n_head = int(torch.randint(1, 4, (1,), generator=gen))
    head_dim = 2 * int(torch.randint(2, 9, (1,), generator=gen))  # even: RoPE needs it
    config = GPTConfig(vocab_size=int(torch.randint(5, 300, (1,), generator=gen)),
                       block_size=int(torch.randint(4, 70, (1,), generator=gen)),
                       n_layer=int(torch.randint(1, 4, (1,), generator=gen)), n_head=n_head,
                       n_embd=n_head * head_dim, **option)
    model = GPT(config)
    assert parameter_count(config) == model.num_parameters(non_embedding=False)
    assert parameter_count(config, non_embedding=True) == model.num_parameters(non_embedding=True)


def test_gpt2_sizes_match_the_released_weights_and_the_papers_table():
    released = {"small": 124_439_808, "medium": 354_823_168, "large": 774_030_080,
                "xl": 1_557_611_200}
    paper = {"small": 117, "medium": 345, "large": 762, "xl": 1542}  # millions, Radford et al.
    for size, n in released.items():
        config = gpt2_config(size)
        assert parameter_count(config) == n
        with torch.device("meta"):  # builds the shapes without allocating 6 GB for XL
            assert GPT(config).num_parameters(non_embedding=False) == n
        # The paper's figures are the same models with GPT-1's 40,478-token vocabulary.
        gpt1_vocab = GPTConfig(**{**config.__dict__, "vocab_size": 40478})
        assert round(parameter_count(gpt1_vocab) / 1e6) == paper[size]
    with pytest.raises(ValueError, match="sizes"):
        gpt2_config("huge")
    assert set(GPT2_SIZES) == set(released)


def test_flops_follow_6n_and_2n_plus_attention():
    config = gpt2_config("small")
    matmul = 12 * 12 * 768 ** 2 + 50257 * 768  # the blocks' matrices and the head
    assert inference_flops_per_token(config, 1024) == 2 * matmul + 4 * 12 * 768 * 1024
    assert training_flops_per_token(config, 1024) == 3 * inference_flops_per_token(config, 1024)
    assert training_flops_per_token(config) == training_flops_per_token(config, 1024)
    # For a large model and a short context, training is close to 6 N per token.
    ratio = training_flops_per_token(config, 1) / (6 * parameter_count(config, non_embedding=True))
    assert 1.0 < ratio < 1.5  # the head counts as a matmul but not as a non-embedding weight
    swiglu = GPTConfig(vocab_size=100, block_size=8, n_layer=2, n_head=2, n_embd=48, mlp="swiglu")
    model = GPT(swiglu)
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert inference_flops_per_token(swiglu, 8) == 2 * weights + 4 * 2 * 48 * 8


def test_kv_cache_bytes_match_the_cache_the_model_fills():
    config = GPTConfig(vocab_size=20, block_size=32, n_layer=3, n_head=2, n_embd=16)
    model = GPT(config).eval()
    caches = [KVCache() for _ in model.transformer.h]
    with torch.no_grad():
        model._last_logits(torch.randint(20, (2, 10)), caches)  # fills one cache per layer
    held = sum(t.numel() * t.element_size() for c in caches for t in (c.k, c.v))
    assert kv_cache_bytes(config, tokens=10, batch=2) == held == 2 * 3 * 16 * 10 * 2 * 4
    assert kv_cache_bytes(config, 10, 2, bytes_per_number=2) * 2 == kv_cache_bytes(config, 10, 2)
    # GPT-2 XL at its full context, float16: about 0.6 MB per token, 629 MB for 1024 tokens.
    assert kv_cache_bytes(gpt2_config("xl"), 1024, bytes_per_number=2) == 2 * 48 * 1600 * 1024 * 2
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive int"):
            kv_cache_bytes(config, bad)
    with pytest.raises(TypeError, match="GPTConfig"):
        parameter_count({"n_layer": 2})
