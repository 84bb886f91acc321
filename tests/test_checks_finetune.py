"""Tests for llmlab.checks.finetune: each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.classifier import set_trainable

solution = load_solutions("07_finetuning_for_sentiment")


# --- last_real_state ------------------------------------------------------------------------------

def test_last_real_state_accepts_the_solution_and_a_loop():
    assert checks.check_last_real_state(solution.last_real_state).passed
    loop = lambda h, n: torch.stack([h[b, int(n[b]) - 1] for b in range(len(n))])  # noqa: E731
    assert checks.check_last_real_state(loop).passed


@pytest.mark.parametrize("answer, words", [
    (lambda h, n: h[:, -1], ["position T - 1", "pad"]),
    (lambda h, n: h[torch.arange(len(n)), n], ["off by one", "lengths - 1"]),
    (lambda h, n: h[:, n - 1], ["shape", "h[torch.arange(B), lengths - 1]"]),
    (lambda h, n: h[:, 0], ["wrong values"]),
    (lambda h, n: (h * (torch.arange(h.shape[1])[None, :] < n[:, None])[..., None]).sum(1)
     / n[:, None], ["mean pooling"]),
    (lambda h, n: h[torch.arange(len(n)), n - 1].mean(0), ["(one state per sentence)"]),
])
def test_last_real_state_mistakes_get_specific_hints(answer, words):
    verdict = checks.check_last_real_state(answer)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_last_real_state_wants_one_tensor_not_a_list_or_an_array():
    as_list = lambda h, n: [h[b, int(n[b]) - 1] for b in range(len(n))]  # noqa: E731
    verdict = checks.check_last_real_state(as_list)
    assert not verdict.passed and "list of" in verdict.message and "torch.stack" in verdict.message
    as_numpy = lambda h, n: h[torch.arange(len(n)), n - 1].numpy()  # noqa: E731
    verdict = checks.check_last_real_state(as_numpy)
    assert not verdict.passed and "ndarray" in verdict.message


def test_last_real_state_off_by_one_is_named_even_when_it_crashes():
    # Indexing position lengths raises for a sentence that fills the batch: the hint says why.
    def off_by_one(h, n):
        if int(n.max()) < h.shape[1]:
            return solution.last_real_state(h, n)  # right on the short cases, crashes on the full
        return h[torch.arange(len(n)), n]
    verdict = checks.check_last_real_state(off_by_one)
    assert not verdict.passed and "lengths - 1" in verdict.message, verdict.message


def test_last_real_state_catches_an_answer_that_changes_its_input():
    def pads_zeroed(h, n):
        h[torch.arange(h.shape[1])[None, :] >= n[:, None]] = 0.0  # spoils the caller's tensor
        return solution.last_real_state(h, n)
    verdict = checks.check_last_real_state(pads_zeroed)
    assert not verdict.passed and "in place" in verdict.message


# --- freeze_all_but_head --------------------------------------------------------------------------

def test_freeze_accepts_the_solution_and_the_library():
    assert checks.check_freeze_all_but_head(solution.freeze_all_but_head).passed

    def with_llmlab(model):
        set_trainable(model, "head")
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert checks.check_freeze_all_but_head(with_llmlab).passed


def _freeze_body(model):
    for p in model.gpt.parameters():
        p.requires_grad = False


def _trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _blocks_only(model):
    for p in model.gpt.transformer.h.parameters():
        p.requires_grad = False
    return _trainable(model)


def _everything_frozen(model):
    for p in model.parameters():
        p.requires_grad = False
    return 0


def _body_only_frozen(model):  # forgets to switch the head back on
    _freeze_body(model)
    return _trainable(model)


def _count_all(model):
    _freeze_body(model)
    return sum(p.numel() for p in model.parameters())


def _weight_only(model):
    _freeze_body(model)
    return model.head.weight.numel()


def _tensors(model):
    _freeze_body(model)
    return len([p for p in model.parameters() if p.requires_grad])


def _no_return(model):
    _freeze_body(model)


def _zeroes_the_body(model):
    with torch.no_grad():
        model.gpt.transformer.wte.weight.zero_()
    _freeze_body(model)
    return _trainable(model)


@pytest.mark.parametrize("answer, words", [
    (lambda m: _trainable(m), ["still train", "model.gpt.parameters()"]),
    (_blocks_only, ["still train", "wte"]),
    (_everything_frozen, ["head is frozen too"]),
    (_body_only_frozen, ["head is frozen too", "arrived with every parameter frozen"]),
    (_count_all, ["every parameter", "requires_grad"]),
    (_weight_only, ["weight only", "bias"]),
    (_tensors, ["tensors", "numel"]),
    (_no_return, ["returned None"]),
    (_zeroes_the_body, ["changed", "must not touch the numbers"]),
])
def test_freeze_mistakes_get_specific_hints(answer, words):
    verdict = checks.check_freeze_all_but_head(answer)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def test_freeze_checker_uses_new_sizes_each_time():
    # A memorised count cannot pass: the head size differs between calls, so a constant fails.
    seen = set()

    def remember(model):
        seen.add(sum(p.numel() for p in model.head.parameters()))
        return solution.freeze_all_but_head(model)
    for _ in range(4):
        checks.check_freeze_all_but_head(remember)
    assert len(seen) > 2
    assert not checks.check_freeze_all_but_head(lambda m: (_freeze_body(m), 386)[1]).passed


def test_freeze_a_count_written_for_two_classes_never_passes():
    # n_embd * 2 + 2 is right for the lesson's head only; the checker never uses two classes.
    def two_classes(model):
        _freeze_body(model)
        return model.gpt.config.n_embd * 2 + 2
    assert not any(checks.check_freeze_all_but_head(two_classes).passed for _ in range(20))


# --- confusion_matrix ---------------------------------------------------------------------------

def test_confusion_accepts_the_solution_and_a_loop():
    assert checks.check_confusion_matrix(solution.confusion_matrix_by_hand).passed

    def loop(pred, true, k):
        m = [[0] * k for _ in range(k)]
        for t, p in zip(true.tolist(), pred.tolist()):
            m[t][p] += 1
        return m  # a list of lists is fine
    assert checks.check_confusion_matrix(loop).passed


@pytest.mark.parametrize("answer, words", [
    (lambda p, t, k: solution.confusion_matrix_by_hand(t, p, k), ["swapped", "m[true, pred]"]),
    (lambda p, t, k: solution.confusion_matrix_by_hand(p, t, int(max(p.max(), t.max())) + 1),
     ["should be", "never occur"]),
    (lambda p, t, k: solution.confusion_matrix_by_hand(p, t, k) * 2, ["add up to"]),
    (lambda p, t, k: torch.eye(k) * len(p) / k, ["wrong counts"]),
])
def test_confusion_mistakes_get_specific_hints(answer, words):
    verdict = checks.check_confusion_matrix(answer)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message


def _index_add(pred, true, k):
    m = torch.zeros(k, k)
    m[true, pred] += 1  # repeated (true, pred) pairs are written once, not added up
    return m


def test_confusion_index_plus_equals_is_explained():
    verdict = checks.check_confusion_matrix(_index_add)
    assert not verdict.passed and "0 or 1" in verdict.message and "accumulate=True" in verdict.message


def test_confusion_bincount_without_minlength_is_explained():
    no_minlength = lambda p, t, k: torch.bincount(t * k + p).view(k, k)  # noqa: E731
    verdict = checks.check_confusion_matrix(no_minlength)
    assert not verdict.passed and "minlength=n_classes * n_classes" in verdict.message


def test_confusion_catches_an_answer_that_sorts_its_input_in_place():
    def sorts(pred, true, k):
        out = solution.confusion_matrix_by_hand(pred, true, k)
        true.copy_(true.sort().values)  # spoils the caller's labels
        return out
    verdict = checks.check_confusion_matrix(sorts)
    assert not verdict.passed and "in place" in verdict.message
