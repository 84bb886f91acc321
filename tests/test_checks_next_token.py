"""Tests for llmlab.checks.next_token: the solutions pass, typical mistakes get their own hint."""
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.lm import CountBigram, cross_entropy, next_token_probs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_SOURCE = ROOT / "notebooks" / "src" / "02_predicting_the_next_token.py"


SOL = load_solutions("02_predicting_the_next_token")


def _notebook_stub(name):
    """Execute the notebook's own stub cell for function `name` and return the function."""
    cells = re.split(r"^# %%.*$", NOTEBOOK_SOURCE.read_text(encoding="utf-8"), flags=re.M)
    [cell] = [c for c in cells if re.search(rf"^def {name}\(", c, flags=re.M)]
    namespace = {}
    exec(compile(cell, str(NOTEBOOK_SOURCE), "exec"), namespace)  # noqa: S102 - our own source
    return namespace[name]


def _fails_with(verdict, *words):
    """The verdict failed, and its message contains every word (case-insensitive)."""
    assert not verdict.passed, verdict
    for word in words:
        assert word.lower() in verdict.message.lower(), (word, verdict.message)


def _raises(*args, **kwargs):
    raise ZeroDivisionError("oops")


# ---------------------------------------------------------------------------------------------
# Exercise 1: counts_to_probs


def test_counts_solution_passes_and_matches_the_library():
    verdict = checks.check_counts_to_probs(SOL.counts_to_probs)
    assert verdict.passed, verdict
    counts = torch.tensor([[3, 0, 1], [0, 0, 0], [2, 2, 5]])
    torch.testing.assert_close(SOL.counts_to_probs(counts, 0.5), CountBigram(counts, 0.5).probs)


@pytest.mark.parametrize("mistake, words", [
    (lambda c, k: (c + k) / (c + k).sum(dim=0, keepdim=True), ["columns", "dim=1"]),
    (lambda c, k: c / c.sum(dim=1, keepdim=True), ["ignores k"]),
    (lambda c, k: c / c.sum(dim=1, keepdim=True) + k, ["after normalising"]),
    (lambda c, k: (c + k) // (c + k).sum(dim=1, keepdim=True), ["integer division"]),
    (lambda c, k: (c + k) / c.sum(dim=1, keepdim=True), ["row totals of the raw counts", "V * k"]),
    (lambda c, k: (c + k) / (c + k).sum(), ["whole table"]),
    (lambda c, k: (c + 1) / (c + 1).sum(dim=1, keepdim=True), ["k = 1", "k argument"]),
    (lambda c, k: (c + k)[:, :-1] / (c + k).sum(dim=1, keepdim=True), ["shape"]),
])
def test_counts_typical_mistakes_get_specific_hints(mistake, words):
    _fails_with(checks.check_counts_to_probs(mistake), *words)


def test_counts_modifying_the_input_is_caught():
    def in_place(counts, k):
        counts = counts.double() if not counts.is_floating_point() else counts
        counts += k                     # for float counts this edits the caller's tensor
        return counts / counts.sum(dim=1, keepdim=True)

    _fails_with(checks.check_counts_to_probs(in_place), "changed the counts")


def test_counts_raising_or_stub_is_a_verdict_not_an_exception():
    _fails_with(checks.check_counts_to_probs(_raises), "ZeroDivisionError")
    _fails_with(checks.check_counts_to_probs(_notebook_stub("counts_to_probs")), "NotImplementedError")
    _fails_with(checks.check_counts_to_probs(lambda c, k: "probabilities"), "tensor")
    _fails_with(checks.check_counts_to_probs(42), "function")


# ---------------------------------------------------------------------------------------------
# Exercise 2: cross_entropy_from_logits


def test_cross_entropy_solution_passes_and_matches_the_library():
    verdict = checks.check_cross_entropy_from_logits(SOL.cross_entropy_from_logits)
    assert verdict.passed, verdict
    logits, targets = torch.randn(7, 11), torch.randint(0, 11, (7,))
    torch.testing.assert_close(SOL.cross_entropy_from_logits(logits, targets), cross_entropy(logits, targets))


def test_cross_entropy_library_versions_pass():
    assert checks.check_cross_entropy_from_logits(F.cross_entropy).passed
    assert checks.check_cross_entropy_from_logits(cross_entropy).passed


def _rows(t):
    return torch.arange(len(t))


@pytest.mark.parametrize("mistake, words", [
    (lambda z, t: torch.log_softmax(z, -1)[_rows(t), t].mean(), ["sign"]),
    (lambda z, t: -torch.log_softmax(z, -1)[_rows(t), t].sum(), ["summed", "mean"]),
    (lambda z, t: -torch.softmax(z, -1)[_rows(t), t].mean(), ["take the log"]),
    (lambda z, t: torch.softmax(z, -1)[_rows(t), t].mean(), ["take the log"]),
    (lambda z, t: -torch.log(z[_rows(t), t]).mean(), ["log(logits)", "softmax first"]),
    (lambda z, t: -z[_rows(t), t].mean(), ["log-probabilities", "log_softmax"]),
    (lambda z, t: -torch.log_softmax(z, 0)[_rows(t), t].mean(), ["wrong dimension"]),
    (lambda z, t: -torch.log_softmax(z, -1)[:, t].mean(), ["(N, N)", "torch.arange"]),
    (lambda z, t: -torch.log_softmax(z, -1)[_rows(t), t], ["one per example", "mean"]),
])
def test_cross_entropy_typical_mistakes_get_specific_hints(mistake, words):
    _fails_with(checks.check_cross_entropy_from_logits(mistake), *words)


def test_cross_entropy_overflow_gets_the_stability_hint():
    def naive(z, t):
        probs = torch.exp(z) / torch.exp(z).sum(dim=-1, keepdim=True)   # exp(1000) = inf
        return -torch.log(probs[_rows(t), t]).mean()

    _fails_with(checks.check_cross_entropy_from_logits(naive), "overflow", "maximum")


def test_cross_entropy_raising_or_stub_is_a_verdict_not_an_exception():
    _fails_with(checks.check_cross_entropy_from_logits(_raises), "ZeroDivisionError")
    stub = _notebook_stub("cross_entropy_from_logits")
    _fails_with(checks.check_cross_entropy_from_logits(stub), "NotImplementedError")


# ---------------------------------------------------------------------------------------------
# Exercise 3: apply_temperature_and_top_k


def _masked(z, k, fill=float("-inf"), smallest=False):
    if k is None or k >= len(z):
        return z
    if smallest:
        return z.masked_fill(z > torch.topk(z, k, largest=False).values[-1], fill)
    return z.masked_fill(z < torch.topk(z, k).values[-1], fill)


def test_temperature_top_k_solution_passes_and_matches_the_library():
    verdict = checks.check_temperature_top_k(SOL.apply_temperature_and_top_k)
    assert verdict.passed, verdict
    logits = torch.tensor([0.1, 2.0, -1.0, 1.5, 0.7])
    torch.testing.assert_close(SOL.apply_temperature_and_top_k(logits, 0.7, 3),
                               next_token_probs(logits, temperature=0.7, top_k=3))


@pytest.mark.parametrize("mistake, words", [
    (lambda z, T, k: torch.softmax(_masked(z * T, k), -1), ["multiplied", "divide"]),
    (lambda z, T, k: torch.softmax(z / T, -1) * (_masked(z, k) > float("-inf")), ["renormalise"]),
    (lambda z, T, k: torch.softmax(_masked(z / T, k, smallest=True), -1), ["smallest"]),
    (lambda z, T, k: torch.softmax(_masked(z, k), -1) / T, ["after softmax"]),
    (lambda z, T, k: torch.softmax(_masked(z, k), -1), ["no effect"]),
    (lambda z, T, k: torch.softmax(_masked(z / T, k, fill=0.0), -1), ["-inf"]),
    (lambda z, T, k: _masked(z / T, k), ["not probabilities"]),
])
def test_temperature_top_k_typical_mistakes_get_specific_hints(mistake, words):
    _fails_with(checks.check_temperature_top_k(mistake), *words)


def test_temperature_top_k_edge_cases_get_specific_hints():
    def no_none(z, T, k):
        kth = torch.topk(z, min(k, len(z))).values[-1]     # TypeError when k is None
        return torch.softmax((z / T).masked_fill(z < kth, float("-inf")), -1)

    _fails_with(checks.check_temperature_top_k(no_none), "k=None")

    def big_k(z, T, k):
        if k is None:
            return torch.softmax(z / T, -1)
        return torch.softmax((z / T).masked_fill(z < torch.topk(z, k).values[-1], float("-inf")), -1)

    _fails_with(checks.check_temperature_top_k(big_k), "k=10", "min(k")


def test_temperature_top_k_raising_or_stub_is_a_verdict_not_an_exception():
    _fails_with(checks.check_temperature_top_k(_raises), "ZeroDivisionError")
    stub = _notebook_stub("apply_temperature_and_top_k")
    _fails_with(checks.check_temperature_top_k(stub), "NotImplementedError")


def test_verdicts_render_in_jupyter():
    html = checks.check_temperature_top_k(SOL.apply_temperature_and_top_k)._repr_html_()
    assert "Correct" in html and "apply_temperature_and_top_k" in html


def _ce_shifting_in_place(logits, targets):
    """Right value, but subtracts the row maxima from the caller's logits in place."""
    logits -= logits.max(dim=-1, keepdim=True).values
    return -(logits.log_softmax(-1)[torch.arange(len(targets)), targets]).mean()


def _tk_dividing_in_place(logits, temperature, k):
    """Right value, but divides the caller's logits in place."""
    logits /= temperature
    if k is not None and k < len(logits):
        logits[logits < logits.topk(k).values[-1]] = float("-inf")
    return torch.softmax(logits, -1)


def test_answers_that_change_the_callers_logits_in_place_fail():
    ce = checks.check_cross_entropy_from_logits(_ce_shifting_in_place)
    tk = checks.check_temperature_top_k(_tk_dividing_in_place)
    for verdict in (ce, tk):
        assert not verdict.passed and "changed its input `logits` in place" in verdict.message
