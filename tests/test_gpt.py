"""Tests for llmlab.gpt: shapes, loss at init, causality, attention, KV cache, GPT-2 weights, errors."""
import json
import math

import pytest
import torch
from torch.testing import assert_close

from llmlab.attention import causal_mask
from llmlab.gpt import GPT, GPTConfig, GPTOutput
from llmlab.transformer import block_parameter_count

TOL = dict(atol=1e-5, rtol=1e-5)
SMALL = dict(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**SMALL, **kw})).eval()


def _ids(B, T, V=11, seed=1):
    return torch.randint(0, V, (B, T), generator=_gen(seed))


# --- forward ----------------------------------------------------------------------------------

def test_output_shapes_and_named_fields():
    model = _model()
    idx = _ids(3, 10)
    out = model(idx)
    assert isinstance(out, GPTOutput) and len(out) == 3
    assert out.logits.shape == (3, 10, 11)
    assert out.loss is None and out.attention is None
    logits, loss, attention = model(idx, targets=_ids(3, 10, seed=2), return_attention=True)
    assert logits.shape == (3, 10, 11) and loss.dim() == 0
    assert attention.shape == (2, 3, 2, 10, 10)  # (L, B, H, T, T)


def test_loss_at_init_is_about_ln_vocab_size():
    torch.manual_seed(0)
    model = GPT(GPTConfig()).eval()  # lesson 06 size: vocab 65
    idx, targets = _ids(8, 64, V=65, seed=3), _ids(8, 64, V=65, seed=4)
    loss = model(idx, targets).loss.item()
    assert abs(loss - math.log(65)) < 0.15, loss
    logits = model(idx).logits
    assert_close(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, 65), targets.reshape(-1)).item())


def test_targets_of_minus_100_are_ignored():
    model = _model()
    idx, targets = _ids(2, 6), _ids(2, 6, seed=2)
    masked = targets.clone()
    masked[:, 3:] = -100
    want = model(idx[:, :3], targets[:, :3]).loss  # causal: positions 0..2 see the same tokens
    assert_close(model(idx, masked).loss, want, **TOL)


@pytest.mark.parametrize("return_attention", [False, True])
def test_the_whole_model_is_causal(return_attention):
    model = _model()
    T, t = 12, 5
    idx = _ids(2, T)
    idx2 = idx.clone()
    idx2[:, t + 1] = (idx[:, t + 1] + 1) % 11  # change token t+1 only
    a = model(idx, return_attention=return_attention).logits
    b = model(idx2, return_attention=return_attention).logits
    assert_close(a[:, : t + 1], b[:, : t + 1], atol=1e-6, rtol=0)
    assert (a[:, t + 1:] - b[:, t + 1:]).abs().amax(-1).min() > 1e-5  # every later position changes


def test_attention_rows_sum_to_one_and_are_zero_above_the_diagonal():
    model = _model()
    attention = model(_ids(2, 9), return_attention=True).attention  # (L, B, H, T, T)
    assert attention.shape == (2, 2, 2, 9, 9)
    assert_close(attention.sum(-1), torch.ones(2, 2, 2, 9), **TOL)
    assert (attention.masked_select(~causal_mask(9)) == 0).all()
    assert (attention >= 0).all()
    assert not torch.allclose(attention[0], attention[1])  # each layer its own weights


def test_fused_and_explicit_paths_give_the_same_logits_and_gradients():
    model = _model()
    idx, targets = _ids(2, 16), _ids(2, 16, seed=2)
    fused = model(idx, targets)
    explicit = model(idx, targets, return_attention=True)
    assert_close(fused.logits, explicit.logits, **TOL)
    grads = []
    for out in (fused, explicit):
        model.zero_grad()
        out.loss.backward()
        grads.append(model.transformer.h[0].attn.c_attn.weight.grad.clone())
    assert_close(grads[0], grads[1], **TOL)


def test_weights_are_tied_and_named_like_gpt2():
    model = _model()
    assert model.lm_head.weight is model.transformer.wte.weight
    names = set(model.state_dict())
    for name in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.1.ln_1.weight",
                 "transformer.h.1.attn.c_attn.bias", "transformer.h.1.mlp.c_fc.weight",
                 "transformer.ln_f.bias", "lm_head.weight"):
        assert name in names


def test_gpt2_initialisation():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=8, n_embd=128, vocab_size=300))
    std = lambda name: dict(model.named_parameters())[name].std().item()  # noqa: E731
    assert abs(std("transformer.h.0.attn.c_attn.weight") - 0.02) < 0.002
    assert abs(std("transformer.h.0.mlp.c_fc.weight") - 0.02) < 0.002
    assert abs(std("transformer.wte.weight") - 0.02) < 0.002
    for name in ("transformer.h.3.attn.c_proj.weight", "transformer.h.3.mlp.c_proj.weight"):
        assert abs(std(name) - 0.02 / math.sqrt(16)) < 0.001  # residual projections: 1/sqrt(2 n_layer)
    assert torch.equal(model.transformer.h[0].attn.c_attn.bias, torch.zeros(384))
    assert torch.equal(model.transformer.ln_f.weight, torch.ones(128))


def test_num_parameters_matches_the_block_formula():
    model = GPT(GPTConfig())
    C, V, L, bs = 128, 65, 4, 64
    assert model.num_parameters() == L * block_parameter_count(C) + 2 * C  # blocks + ln_f
    assert model.num_parameters(non_embedding=False) == model.num_parameters() + V * C + bs * C
    nobias = GPT(GPTConfig(bias=False))
    assert nobias.num_parameters() == L * block_parameter_count(C, bias=False) + C


def test_seeded_construction_and_forward_are_deterministic():
    a, b = _model(seed=5), _model(seed=5)
    idx = _ids(2, 8)
    assert torch.equal(a(idx).logits, b(idx).logits)
    assert not torch.equal(a(idx).logits, _model(seed=6)(idx).logits)


# --- generation -------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt_len, new", [(3, 8), (5, 30), (16, 5), (20, 10)])
@pytest.mark.parametrize("mode", ["greedy", "sample", "top_k_top_p"])
def test_kv_cache_generation_equals_generation_without_it(prompt_len, new, mode):
    # block_size 16: (5, 30) and (16, 5) run past it, (20, 10) starts with a prompt cropped to it.
    model = _model()
    prompt = _ids(2, prompt_len)
    kw = {"greedy": dict(greedy=True), "sample": dict(temperature=1.5),
          "top_k_top_p": dict(temperature=0.8, top_k=5, top_p=0.9)}[mode]
    with_cache = model.generate(prompt, new, generator=_gen(7), use_cache=True, **kw)
    without = model.generate(prompt, new, generator=_gen(7), use_cache=False, **kw)
    assert with_cache.shape == (2, prompt_len + new)
    assert torch.equal(with_cache, without)
    assert torch.equal(with_cache[:, :prompt_len], prompt)


def test_generation_matches_a_loop_over_forward():
    model = _model()
    idx = _ids(1, 4)
    want = idx
    for _ in range(20):  # past block_size 16: always the last 16 tokens
        logits = model(want[:, -16:]).logits[:, -1]  # (B, V)
        want = torch.cat([want, logits.argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(model.generate(idx, 20, greedy=True), want)


def test_seeded_sampling_repeats_and_different_seeds_differ():
    model = _model()
    prompt = _ids(2, 3)
    a = model.generate(prompt, 40, generator=_gen(1))
    b = model.generate(prompt, 40, generator=_gen(1))
    c = model.generate(prompt, 40, generator=_gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() < 11


def test_generate_turns_dropout_off_and_restores_training_mode():
    model = _model(dropout=0.5).train()
    prompt = _ids(1, 3)
    a = model.generate(prompt, 20, greedy=True)
    b = model.generate(prompt, 20, greedy=True)
    assert torch.equal(a, b) and model.training
    assert torch.equal(model.generate(prompt, 0), prompt)


# --- GPT-2 weights and configs ----------------------------------------------------------------

def test_gpt2_state_dict_round_trip_and_layout():
    model = _model()
    sd = model.gpt2_state_dict()
    C = 16
    assert sd["transformer.h.0.attn.c_attn.weight"].shape == (C, 3 * C)  # Conv1D: (in, out)
    assert sd["transformer.h.0.attn.c_proj.weight"].shape == (C, C)
    assert sd["transformer.h.1.mlp.c_fc.weight"].shape == (C, 4 * C)
    assert sd["transformer.h.1.mlp.c_proj.weight"].shape == (4 * C, C)
    assert sd["transformer.h.0.attn.c_attn.bias"].shape == (3 * C,)
    assert sd["transformer.wte.weight"].shape == (11, C) and sd["transformer.wpe.weight"].shape == (16, C)
    assert sd["lm_head.weight"].shape == (11, C)
    assert torch.equal(sd["transformer.h.0.attn.c_attn.weight"], model.transformer.h[0].attn.c_attn.weight.t())
    fresh = _model(seed=9)
    idx = _ids(2, 10)
    assert not torch.equal(fresh(idx).logits, model(idx).logits)
    fresh.load_gpt2_state_dict(sd)
    assert torch.equal(fresh(idx).logits, model(idx).logits)
    assert fresh.lm_head.weight is fresh.transformer.wte.weight  # still tied


def test_load_accepts_hugging_face_names_without_prefix_and_mask_buffers():
    model = _model()
    hf = {k.removeprefix("transformer."): v for k, v in model.gpt2_state_dict().items() if k != "lm_head.weight"}
    hf["h.0.attn.bias"] = torch.ones(1, 1, 16, 16)  # causal-mask buffers in old checkpoints
    hf["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    fresh = _model(seed=9)
    fresh.load_gpt2_state_dict(hf)
    idx = _ids(1, 7)
    assert torch.equal(fresh(idx).logits, model(idx).logits)


def test_mismatched_state_dicts_raise_clear_errors_and_change_nothing():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sd = model.gpt2_state_dict()
    bigger = GPT(GPTConfig(**{**SMALL, "n_layer": 3, "n_embd": 32})).gpt2_state_dict()
    with pytest.raises(ValueError, match=r"unexpected keys.*transformer\.h\.2\..*shape mismatches.*"
                                         r"transformer\.wte\.weight: \(11, 32\) in the dict, \(11, 16\) in the model"
                                         r".*n_layer=3, n_embd=32"):
        model.load_gpt2_state_dict(bigger)
    missing = {k: v for k, v in sd.items() if "h.1.ln_2" not in k}
    with pytest.raises(ValueError, match=r"missing keys \(2\): transformer\.h\.1\.ln_2\.bias, transformer\.h\.1\.ln_2\.weight"):
        model.load_gpt2_state_dict(missing)
    transposed = dict(sd)
    transposed["transformer.h.0.attn.c_attn.weight"] = sd["transformer.h.0.attn.c_attn.weight"].t()
    with pytest.raises(ValueError, match=r"transformer\.h\.0\.attn\.c_attn\.weight: \(48, 16\) in the dict, \(16, 48\)"):
        model.load_gpt2_state_dict(transposed)
    untied = dict(sd, **{"lm_head.weight": torch.zeros(11, 16)})
    with pytest.raises(ValueError, match="ties them"):
        model.load_gpt2_state_dict(untied)
    with pytest.raises(TypeError, match="dict of tensors"):
        model.load_gpt2_state_dict([1, 2])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_config_dict_round_trips_through_json():
    model = _model(dropout=0.1, bias=False)
    d = json.loads(json.dumps(model.config_dict()))
    assert d == dict(SMALL, dropout=0.1, bias=False, norm="layernorm", mlp="gelu", positions="learned",
                     qk_norm=False, tie_weights=True)
    clone = GPT.from_config_dict(d)
    assert clone.config == model.config
    with pytest.raises(ValueError, match=r"unknown GPTConfig fields \['n_heads'\]"):
        GPT.from_config_dict(dict(SMALL, n_heads=2))


# --- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size=0), "GPTConfig.vocab_size must be a positive int"),
    (dict(block_size=2.5), "GPTConfig.block_size must be a positive int"),
    (dict(n_layer=-1), "GPTConfig.n_layer must be a positive int"),
    (dict(n_embd=30, n_head=4), r"n_embd=30 is not divisible by n_head=4: .* pick n_head from \[1, 2, 3, 5, 6"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(bias="yes"), "bias must be True or False"),
])
def test_config_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_forward_rejects_bad_input_with_clear_messages():
    model = _model()
    with pytest.raises(ValueError, match=r"idx\[1, 2\] = 11 is not a token id in \[0, vocab_size=11\) \(1 such ids\)"):
        model(torch.tensor([[0, 1, 2], [3, 4, 11]]))
    with pytest.raises(ValueError, match=r"idx\[0, 0\] = -1"):
        model(torch.tensor([[-1, 1]]))
    with pytest.raises(ValueError, match=r"idx has shape \(2, 0\).*at least one token"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"dtype torch.float32 .* idx\.long\(\)"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"idx has shape \(5,\) but GPT expects \(B, T\).*unsqueeze\(0\)"):
        model(torch.zeros(5, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.tensor"):
        model([[1, 2]])
    with pytest.raises(ValueError, match=r"idx has T=17 tokens but the model's block_size is 16: crop the input "
                                         r"\(e\.g\. idx\[:, -16:\]\) or build the model with a larger block_size"):
        model(_ids(1, 17))
    with pytest.raises(ValueError, match=r"targets has shape \(2, 4\) but idx has shape \(2, 5\)"):
        model(_ids(2, 5), targets=_ids(2, 4))
    with pytest.raises(ValueError, match=r"targets\[0, 1\] = 11 .*-100 to ignore"):
        model(_ids(1, 3), targets=torch.tensor([[0, 11, 2]]))
    with pytest.raises(ValueError, match=r"targets has dtype torch.float32"):
        model(_ids(1, 3), targets=torch.zeros(1, 3))
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT(dict(SMALL))


def test_generate_rejects_bad_input_with_clear_messages():
    model = _model()
    prompt = _ids(1, 3)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0, got -1"):
        model.generate(prompt, -1)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0, got 2.5"):
        model.generate(prompt, 2.5)
    with pytest.raises(ValueError, match=r"idx has shape \(1, 0\)"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match=r"idx\[0, 1\] = 99"):
        model.generate(torch.tensor([[1, 99]]), 5)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        model.generate(prompt, 5, temperature=0)
    with pytest.raises(ValueError, match="top_k must be an int >= 1"):
        model.generate(prompt, 5, top_k=0)
    with pytest.raises(ValueError, match=r"top_p must be a probability in \(0, 1\]"):
        model.generate(prompt, 5, top_p=1.5)
    with pytest.raises(TypeError, match="torch.Generator"):
        model.generate(prompt, 5, generator=0)
    assert model.generate(_ids(1, 40), 2).shape == (1, 42)  # a long prompt is cropped, not rejected


# --- bad input: dtypes, ignored targets, NaN weights, plain config values (issue 10) -------------

def _tiny():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_any_integer_dtype_of_ids_and_targets_gives_the_int64_result(dtype):
    model, idx = _tiny(), torch.randint(0, 10, (2, 5))
    want = model(idx, idx)
    got = model(idx.to(dtype), idx.to(dtype))
    assert torch.equal(got.logits, want.logits) and torch.equal(got.loss, want.loss)
    out = model.generate(idx.to(dtype), 3, greedy=True)
    assert out.dtype == torch.long and torch.equal(out, model.generate(idx, 3, greedy=True))


def test_all_ignored_targets_are_refused_instead_of_nan():
    model, idx = _tiny(), torch.randint(0, 10, (2, 5))
    with pytest.raises(ValueError, match=r"every target is -100.*NaN.*at least one real target"):
        model(idx, torch.full((2, 5), -100))


def test_nan_weights_are_named_in_forward_and_generate():
    model, idx = _tiny(), torch.randint(0, 10, (2, 5))
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[0, 0] = float("nan")
    for call in (lambda: model(idx, idx), lambda: model(idx), lambda: model.generate(idx, 2)):
        with pytest.raises(FloatingPointError, match=r"weights do.*h\.0\.mlp\.c_fc\.weight.*lower lr"):
            call()


def test_a_dict_as_config_names_gptconfig_of_the_dict():
    with pytest.raises(TypeError, match=r"GPT\(GPTConfig\(\*\*d\)\)"):
        GPT(dict(vocab_size=10))


@pytest.mark.parametrize("kwargs, match", [
    (dict(vocab_size="65"), "vocab_size must be a positive int, got '65'"),
    (dict(vocab_size=None), "vocab_size must be a positive int, got None"),
    (dict(n_embd=128.0), r"n_embd must be a positive int.*use // instead of /"),
    (dict(dropout="0.1"), r"dropout must be in \[0, 1\), got '0.1'"),
    (dict(dropout=None), r"dropout must be in \[0, 1\), got None"),
    (dict(bias="no"), "bias must be True or False"),
])
def test_config_refuses_non_numeric_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_numpy_config_values_become_plain_python_and_load_weights_only(tmp_path):
    import dataclasses
    import numpy as np
    config = GPTConfig(vocab_size=np.int64(10), n_layer=np.int32(1), n_embd=np.int64(8),
                       n_head=np.int16(2), dropout=np.float64(0.1), bias=np.bool_(True))
    d = dataclasses.asdict(config)
    assert [type(v) for v in d.values()] == [int, int, int, int, int, float, bool, str, str, str, bool, bool]
    torch.save(d, tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True) == d


def test_flags_must_be_bools():
    model, idx = _tiny(), torch.randint(0, 10, (1, 3))
    with pytest.raises(ValueError, match="return_attention must be True or False"):
        model(idx, return_attention="no")
    with pytest.raises(ValueError, match="use_cache must be True or False"):
        model.generate(idx, 1, use_cache="no")
