"""The encoder–decoder: who attends to what, padding, teacher forcing vs decoding, beam search."""
import itertools

import pytest
import torch

from llmlab.beam_search import beam_search, greedy_decode, sequence_log_prob
from llmlab.seq2seq import PairBatches, Seq2Seq, Seq2SeqConfig, seq2seq_loss, shift_right
from llmlab.training import TrainConfig, train

PAD, BOS, EOS = 0, 1, 2


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(src_vocab_size=12, tgt_vocab_size=7, src_block_size=10, tgt_block_size=6, n_embd=16,
               n_head=2, n_layer_enc=2, n_layer_dec=2)
    cfg.update(kw)
    model = Seq2Seq(Seq2SeqConfig(**cfg)).eval()
    # Untrained weights at std 0.02 give near-uniform attention, where a perturbation test is weak:
    # larger weights make every dependency visible.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20.0)
    return model


def sources():
    return torch.tensor([[3, 4, 5, 6, EOS, PAD, PAD], [7, 8, 9, 10, 11, 3, EOS]])


def test_encoder_is_not_causal_and_every_real_token_is_read():
    model = tiny()
    src = sources()
    base = model.encode(src).memory
    changed = src.clone()
    changed[0, 3] = 11  # the last real token before EOS of row 0
    memory = model.encode(changed).memory
    # Position 0 comes before position 3: in a causal encoder it could not see the change.
    assert not torch.allclose(memory[0, 0], base[0, 0], atol=1e-4)
    assert torch.allclose(memory[1], base[1])  # rows are independent


def test_decoder_is_causal():
    model = tiny()
    src, tgt_in = sources(), torch.tensor([[BOS, 3, 4, 5, 6], [BOS, 6, 5, 4, 3]])
    base = model(src, tgt_in).logits
    for t in range(1, 5):
        changed = tgt_in.clone()
        changed[:, t] = 2 if tgt_in[0, t] != 2 else 3
        logits = model(src, changed).logits
        torch.testing.assert_close(logits[:, :t], base[:, :t])  # the past cannot see the future
        assert not torch.allclose(logits[:, t], base[:, t], atol=1e-4)  # but position t reads it


def test_source_padding_changes_nothing():
    model = tiny()
    src, tgt_in = sources(), torch.tensor([[BOS, 3, 4], [BOS, 5, 6]])
    padded = torch.cat([src, torch.full((2, 3), PAD)], dim=1)  # (2, 10): more padding on the right
    out, out_padded = model(src, tgt_in), model(padded, tgt_in)
    torch.testing.assert_close(out_padded.logits, out.logits, atol=1e-5, rtol=1e-5)
    assert [h.tokens for h in greedy_decode(model, padded)] == [h.tokens for h in greedy_decode(model, src)]


def test_cross_attention_rows_sum_to_one_over_real_source_tokens_and_zero_on_padding():
    model = tiny()
    src, tgt_in = sources(), torch.tensor([[BOS, 3, 4, 5], [BOS, 5, 6, 3]])
    out = model(src, tgt_in, return_attention=True)
    L_dec, L_enc, H = model.config.n_layer_dec, model.config.n_layer_enc, model.config.n_head
    assert out.cross_attention.shape == (L_dec, 2, H, 4, 7)  # (L, B, H, T_tgt, T_src)
    assert out.decoder_attention.shape == (L_dec, 2, H, 4, 4)
    assert out.encoder_attention.shape == (L_enc, 2, H, 7, 7)
    real = (src != PAD)  # (B, S)
    for weights in (out.cross_attention, out.encoder_attention):
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))
        assert (weights[:, 0, :, :, 5:] == 0).all()  # row 0's two padding positions get nothing
        torch.testing.assert_close((weights * real[None, :, None, None, :]).sum(-1),
                                   torch.ones(weights.shape[:-1]))  # all of it on real tokens
    # Decoder self-attention is causal: nothing above the diagonal.
    assert (out.decoder_attention.triu(diagonal=1) == 0).all()
    # The explicit path (with weights) computes what the fused path computes.
    torch.testing.assert_close(out.logits, model(src, tgt_in).logits, atol=1e-5, rtol=1e-5)


def test_teacher_forced_logits_equal_step_by_step_decoding():
    model = tiny()
    src, tgt_in = sources(), torch.tensor([[BOS, 3, 4, 5, 6], [BOS, 6, 5, 4, 3]])
    full = model(src, tgt_in).logits  # (B, T, V), one pass
    encoded = model.encode(src)
    for t in range(tgt_in.shape[1]):
        step, _, _ = model.decode(tgt_in[:, :t + 1], encoded)  # the prefix only, as decoding sees it
        torch.testing.assert_close(step[:, -1], full[:, t], atol=1e-5, rtol=1e-5)


def test_shift_right_and_pair_batches():
    tgt = torch.tensor([[5, 6, EOS], [4, EOS, -100]])
    assert shift_right(tgt, BOS).tolist() == [[BOS, 5, 6], [BOS, 4, EOS]]
    data = PairBatches([([3, 4, EOS], [5, 6, EOS]), ([3, EOS], [4, EOS])])
    (src, tgt_in), targets = next(data.batches())
    assert src.tolist() == [[3, 4, EOS], [3, EOS, PAD]]
    assert targets.tolist() == [[5, 6, EOS], [4, EOS, -100]]  # the loss ignores padding
    assert tgt_in.tolist() == [[BOS, 5, 6], [BOS, 4, EOS]]
    with pytest.raises(ValueError, match="ending with EOS"):
        PairBatches([([3, 4], [5, 6])])
    with pytest.raises(ValueError, match="at least one"):
        PairBatches([])


def test_beam_size_one_is_greedy():
    model = tiny(seed=3)
    src = torch.randint(3, 12, (8, 6))
    src[:, -1] = EOS
    greedy, beam = greedy_decode(model, src), beam_search(model, src, beam_size=1, length_penalty=0)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert [h.log_prob for h in beam] == pytest.approx([h.log_prob for h in greedy], abs=1e-5)


def test_hypothesis_log_prob_is_the_models_probability_of_its_tokens():
    model = tiny(seed=4)
    src = sources()
    for hyps in (greedy_decode(model, src), beam_search(model, src, beam_size=3)):
        outputs = [h.tokens + ([EOS] if h.finished else []) for h in hyps]
        assert [h.log_prob for h in hyps] == pytest.approx(sequence_log_prob(model, src, outputs).tolist(),
                                                           abs=1e-4)


def test_a_beam_as_wide_as_every_sequence_finds_the_most_probable_one():
    model = tiny(seed=5, tgt_block_size=3)
    src = sources()
    found = beam_search(model, src, beam_size=5 ** 3, max_len=3, length_penalty=0)
    real = [3, 4, 5, 6, EOS]  # the tokens an output may hold (PAD and BOS never)
    for b in range(2):
        best = max(sequence_log_prob(model, src[b:b + 1], [list(seq)]).item()
                   for n in (1, 2, 3) for seq in itertools.product(real, repeat=n)
                   if EOS not in seq[:-1] and seq[-1] == EOS)
        assert found[b].finished and found[b].log_prob == pytest.approx(best, abs=1e-4)
        greedy = greedy_decode(model, src[b:b + 1], max_len=3)[0]
        assert found[b].log_prob >= greedy.log_prob - 1e-5 or not greedy.finished


def test_length_penalty_changes_the_ranking_towards_longer_outputs():
    model = tiny(seed=6)
    src = torch.randint(3, 12, (16, 5))
    src[:, -1] = EOS
    raw = beam_search(model, src, beam_size=6, length_penalty=0.0)
    norm = beam_search(model, src, beam_size=6, length_penalty=1.0)
    # Raw sums of negative log-probabilities favour the short outputs; dividing by length does not.
    assert sum(len(h.tokens) for h in norm) >= sum(len(h.tokens) for h in raw)
    assert all(r.log_prob >= n.log_prob - 1e-5 for r, n in zip(raw, norm) if r.finished and n.finished)


def test_bad_input_gets_a_clear_error():
    model = tiny()
    with pytest.raises(ValueError, match="all padding"):
        model.encode(torch.tensor([[3, 4, EOS], [PAD, PAD, PAD]]))
    with pytest.raises(ValueError, match="at most 10"):
        model.encode(torch.full((1, 11), 3))
    with pytest.raises(ValueError, match="beam_size must be an int >= 1"):
        beam_search(model, sources(), beam_size=0)
    with pytest.raises(ValueError, match="max_len=9 exceeds"):
        greedy_decode(model, sources(), max_len=9)
    with pytest.raises(ValueError, match="not a token id"):
        model.encode(torch.tensor([[3, 40, EOS]]))
    with pytest.raises(ValueError, match="shapes must match"):
        model(sources(), torch.tensor([[BOS, 3], [BOS, 4]]), torch.tensor([[3, 4, EOS], [3, 4, EOS]]))
    with pytest.raises(ValueError, match="three different ids"):
        Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=10, pad_id=0, bos_id=0)
    with pytest.raises(TypeError, match="Seq2SeqConfig"):
        Seq2Seq({"src_vocab_size": 10})


def test_the_course_training_loop_teaches_it_to_reverse_digits():
    """A task only cross-attention can solve: write the source backwards."""
    gen = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(400):
        digits = torch.randint(3, 9, (4,), generator=gen).tolist()
        pairs.append((digits + [EOS], digits[::-1] + [EOS]))
    data = PairBatches(pairs[:350])
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, src_block_size=6,
                                  tgt_block_size=5, n_embd=32, n_head=2, n_layer_enc=1, n_layer_dec=1))
    config = TrainConfig(max_steps=300, batch_size=32, lr=3e-3, warmup_steps=20, eval_interval=150,
                         eval_steps=2, device="cpu")
    result = train(model, data, PairBatches(pairs[350:]), config, loss_fn=seq2seq_loss)
    assert result.history[-1]["val_loss"] < 0.5 * result.history[0]["val_loss"]
    src = torch.tensor([s for s, _ in pairs[350:]])
    hyps = greedy_decode(model, src)
    right = sum(h.tokens == t[:-1] for h, (_, t) in zip(hyps, pairs[350:]))
    assert right / 50 > 0.5  # chance is 6 ** -4
