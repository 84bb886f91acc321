"""The contract every exercise checker keeps, tested for all of them at once.

Each checker exported by llmlab.checks must: accept the reference solution in solutions/, turn a
crash or an unfinished stub into a failing verdict (never an exception), and say so when it is
handed something that is not a function. Lesson-specific tests check the hints for typical mistakes.
"""
import pytest
import torch

from _solutions import load_solutions  # tests/_solutions.py
from llmlab import checks


# checker name -> (solutions file stem, function name). Every exported checker must be listed.
SOLUTIONS = {
    "check_char_encode": ("01_tokens_and_embeddings", "char_encode"),
    "check_most_frequent_pair": ("01_tokens_and_embeddings", "most_frequent_pair"),
    "check_cosine_similarity": ("01_tokens_and_embeddings", "cosine_similarity"),
    "check_counts_to_probs": ("02_predicting_the_next_token", "counts_to_probs"),
    "check_cross_entropy_from_logits": ("02_predicting_the_next_token", "cross_entropy_from_logits"),
    "check_temperature_top_k": ("02_predicting_the_next_token", "apply_temperature_and_top_k"),
    "check_softmax": ("03_scaled_dot_product_attention", "softmax"),
    "check_attention": ("03_scaled_dot_product_attention", "attention"),
    "check_causal_mask": ("03_scaled_dot_product_attention", "causal_mask"),
    "check_masked_attention": ("03_scaled_dot_product_attention", "masked_attention"),
    "check_split_heads": ("04_multi_head_attention", "split_heads"),
    "check_merge_heads": ("04_multi_head_attention", "merge_heads"),
    "check_multi_head_attention": ("04_multi_head_attention", "multi_head_attention"),
    "check_sinusoidal_encoding": ("04_multi_head_attention", "sinusoidal_encoding"),
    "check_layer_norm": ("05_the_transformer_block", "layer_norm"),
    "check_block_forward": ("05_the_transformer_block", "block_forward"),
    "check_count_block_parameters": ("05_the_transformer_block", "count_block_parameters"),
    "check_gpt_param_count": ("06_mini_gpt", "gpt_param_count"),
    "check_crop_context": ("06_mini_gpt", "crop_context"),
    "check_previous_token_score": ("06_mini_gpt", "previous_token_score"),
    "check_last_real_state": ("07_finetuning_for_sentiment", "last_real_state"),
    "check_freeze_all_but_head": ("07_finetuning_for_sentiment", "freeze_all_but_head"),
    "check_confusion_matrix": ("07_finetuning_for_sentiment", "confusion_matrix_by_hand"),
    "check_source_padding_mask": ("08_encoder_decoder_and_cross_attention", "source_padding_mask"),
    "check_shift_right": ("08_encoder_decoder_and_cross_attention", "shift_right"),
    "check_beam_step": ("08_encoder_decoder_and_cross_attention", "beam_step"),
    "check_kv_cache_bytes": ("09_inside_and_beyond", "kv_cache_bytes"),
    "check_induction_pattern": ("09_inside_and_beyond", "induction_pattern"),
    "check_ablate_head": ("09_inside_and_beyond", "ablate_head"),
    "check_utf8_bytes": ("10_your_own_gpt", "utf8_bytes"),
    "check_form_mask": ("10_your_own_gpt", "form_mask"),
    "check_memorised_share": ("10_your_own_gpt", "memorised_share"),
}
EXPORTED = sorted(name for name in checks.__all__ if name.startswith("check_"))


def _solution(name):
    stem, fn = SOLUTIONS[name]
    return getattr(load_solutions(stem), fn)


def _raises(*args, **kwargs):
    raise RuntimeError("boom")


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_every_exported_checker_has_a_solution():
    assert EXPORTED, "llmlab.checks exports no checkers"
    missing = [name for name in EXPORTED if name not in SOLUTIONS]
    assert not missing, f"add these checkers and their solutions to SOLUTIONS: {missing}"
    stale = [name for name in SOLUTIONS if name not in EXPORTED]
    assert not stale, f"these checkers are listed but not exported by llmlab.checks: {stale}"


@pytest.mark.parametrize("name", EXPORTED)
def test_the_solution_passes(name):
    verdict = getattr(checks, name)(_solution(name))
    assert verdict.passed, verdict.message
    assert "Correct" in verdict._repr_html_() and "Correct" in str(verdict)


@pytest.mark.parametrize("name", EXPORTED)
def test_a_crash_is_a_failing_verdict_not_an_exception(name):
    verdict = getattr(checks, name)(_raises)
    assert not verdict.passed
    assert "RuntimeError" in verdict.message and "boom" in verdict.message


@pytest.mark.parametrize("name", EXPORTED)
def test_an_unfinished_stub_is_a_failing_verdict(name):
    verdict = getattr(checks, name)(_stub)
    assert not verdict.passed
    assert "NotImplementedError" in verdict.message
    assert "Not yet" in str(verdict)


@pytest.mark.parametrize("name", EXPORTED)
def test_something_that_is_not_a_function_is_explained(name):
    verdict = getattr(checks, name)(42)
    assert not verdict.passed
    assert "expected a function" in verdict.message


@pytest.mark.parametrize("name", EXPORTED)
def test_returning_nothing_fails(name):
    verdict = getattr(checks, name)(lambda *args, **kwargs: None)
    assert not verdict.passed


@pytest.mark.parametrize("name", EXPORTED)
def test_checking_leaves_the_learners_random_state_alone(name):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    getattr(checks, name)(_solution(name))
    torch.testing.assert_close(torch.rand(3), expected)


def test_two_checks_in_one_notebook_cell_both_show_their_verdict_once():
    import nbclient
    import nbformat
    cell = ("from llmlab import checks\n"
            "v1 = checks.check_causal_mask(lambda T: __import__('torch').ones(T, T).bool())\n"
            "checks.check_softmax(lambda x: x.softmax(-1))\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell),
                                         nbformat.v4.new_code_cell("v1")])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    first = [o for o in nb.cells[0].outputs if "text/html" in o.get("data", {})]
    texts = [o["data"]["text/plain"] for o in first]
    assert len(first) == 2, nb.cells[0].outputs  # both verdicts, and neither twice
    assert "causal_mask(T)" in texts[0] and "Not yet" in texts[0]
    assert "softmax" in texts[1]
    # A verdict shown again in a later cell (its variable) does display there.
    assert any("causal_mask(T)" in o.get("data", {}).get("text/plain", "")
               for o in nb.cells[1].outputs)


def test_an_input_changed_in_place_is_named_by_the_learners_own_parameter_name():
    def split_heads(tokens, heads):  # the learner's names, not the checker's
        tokens += 1.0
        B, T, C = tokens.shape
        return tokens.view(B, T, heads, C // heads).transpose(1, 2)
    verdict = checks.check_split_heads(split_heads)
    assert not verdict.passed and "`tokens`" in verdict.message and "in place" in verdict.message


def _signature_of(args):
    """What a memorising answer could key on: tensor shapes and values, other arguments' repr."""
    return tuple((tuple(a.shape), a.double().sum().item()) if isinstance(a, torch.Tensor)
                 else repr(a) for a in args)


@pytest.mark.parametrize("name", EXPORTED)
def test_every_checker_tries_a_case_drawn_afresh_each_time(name):
    # An answer that memorises the checker's cases must not pass: two checks must not try
    # exactly the same inputs.
    solution_fn = _solution(name)
    tried = []
    for _ in range(2):
        seen = []

        def recording(*args, **kwargs):
            seen.append(_signature_of(args))
            return solution_fn(*args, **kwargs)
        assert getattr(checks, name)(recording).passed
        tried.append(seen)
    assert tried[0] != tried[1], f"{name} tried the same cases twice: add a randomly drawn one"
