"""The training loop's batch-source contract: token streams train exactly as the loop always did,
and any other source with its own loss (e.g. classification) goes through the same loop."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.batches import BatchSource, TokenStream
from llmlab.data import random_batch
from llmlab.gpt import GPT, GPTConfig
from llmlab.training import TrainConfig, lr_at, make_optimizer, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
IDS = torch.randint(0, 30, (4000,), generator=torch.Generator().manual_seed(1))


def tiny_gpt():
    """A GPT that trains a step in milliseconds, the same weights every call."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))


def reference_losses(config: TrainConfig) -> list[float]:
    """The language-model recipe written out by hand: AdamW, warm-up + cosine, clipping."""
    model = tiny_gpt()
    optimizer = make_optimizer(model, config)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    losses = []
    for step in range(config.max_steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        x, y = random_batch(IDS, config.batch_size, config.block_size, generator=gen)
        loss = model(x, y).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_token_ids_and_a_token_stream_train_exactly_as_the_recipe_by_hand():
    config = TrainConfig(max_steps=12, batch_size=4, block_size=16, lr=3e-3, min_lr=3e-4,
                         warmup_steps=3, eval_interval=5, eval_steps=2, device="cpu", seed=5)
    expected = reference_losses(config)
    from_ids = train(tiny_gpt(), IDS, IDS, config, progress=False).step_losses
    from_stream = train(tiny_gpt(), TokenStream(IDS, 16), TokenStream(IDS, 16), config,
                        progress=False).step_losses
    assert from_ids == expected and from_stream == expected  # bit for bit


class ParityBatches:
    """A toy labelled task: is the sum of a row of bits odd? Inputs (B, 8) float, targets (B,)."""

    def sample(self, batch_size, generator, device=None):
        x = torch.randint(0, 2, (batch_size, 8), generator=generator).float()
        return x.to(device), (x[:, 0] > 0).long().to(device)  # learnable: the first bit decides


def cross_entropy_loss(model, x, y):
    """A classification loss: the loop never looks inside it."""
    return F.cross_entropy(model(x), y)


def test_a_batch_source_with_its_own_loss_and_metrics_goes_through_the_same_loop(tmp_path):
    assert isinstance(ParityBatches(), BatchSource) and isinstance(TokenStream(IDS, 4), BatchSource)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def accuracy(m):
        x, y = ParityBatches().sample(256, torch.Generator().manual_seed(9), "cpu")
        return (m(x).argmax(-1) == y).float().mean().item()

    config = TrainConfig(max_steps=60, batch_size=32, lr=1e-2, min_lr=1e-3, warmup_steps=5,
                         eval_interval=30, eval_steps=2, device="cpu",
                         checkpoint_path=str(tmp_path / "clf.pt"))
    result = train(model, ParityBatches(), ParityBatches(), config, progress=False,
                   loss_fn=cross_entropy_loss, metrics={"val_accuracy": accuracy})
    first, last = result.history[0], result.history[-1]
    assert [r["step"] for r in result.history] == [0, 30, 60]
    assert last["val_loss"] < first["val_loss"] and last["val_accuracy"] > 0.95
    assert first["tokens_seen"] is None and last["examples_seen"] == 60 * 32
    assert model.training  # metrics ran in eval mode and the mode came back
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        train(model, ParityBatches(), None, config, progress=False, loss_fn="cross_entropy")


def test_a_token_stream_shorter_than_one_window_is_named():
    with pytest.raises(ValueError, match="at least block_size \\+ 1 = 17 ids"):
        TokenStream(IDS[:10], 16)
