"""Tests for llmlab.viz.generation: the generation widget and its static twin."""
import pytest
import torch

from llmlab.gpt import GPT, GPTConfig
from llmlab.tokenizers import BPETokenizer, CharTokenizer
from llmlab.viz import Generation, GenerationExplorer, render_generation

TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\n"


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.train(TEXT)


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2,
                         n_embd=16))


def test_explorer_shows_a_first_sample_at_once(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="ROMEO:", max_new_tokens=20, seed=3)
    assert ex.current_text.startswith("ROMEO:")
    assert len(ex.current_generation.pieces) == 20
    assert len(ex.current_text) == len("ROMEO:") + 20  # one character per token here
    assert "<b>ROMEO:</b>" in ex.output.value
    assert ex.message == ""


def test_generate_button_updates_the_text(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="But", max_new_tokens=15, seed=0)
    first = ex.current_text
    ex.seed.value = 1
    assert ex.current_text == first  # changing a control alone does not resample
    ex.button.click()
    assert ex.current_text != first
    assert ex.current_text.startswith("But")
    ex.prompt.value = "what"
    ex.length.value = 7
    ex.button.click()
    assert ex.current_text.startswith("what") and len(ex.current_text) == 4 + 7
    assert html_text(ex.output.value).startswith("what")


def test_new_sample_moves_to_the_next_seed_and_is_reproducible(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="But", max_new_tokens=15, seed=4)
    first = ex.current_text
    ex.resample.click()
    assert ex.seed.value == 5 and ex.current_text != first
    again = render_generation(model, tokenizer, "But", 15, temperature=ex.temperature.value, seed=5)
    assert ex.current_text == again.text  # the seed shown reproduces the sample
    assert "seed 5" in ex.output.value
    ex.seed.value = ex.seed.max
    ex.resample.click()
    assert ex.seed.value == 0 and not ex.button.disabled and not ex.resample.disabled
    ex.greedy.value = True  # greedy ignores the seed: nothing to resample
    assert ex.resample.disabled and ex.seed.disabled
    ex.greedy.value = False
    assert not ex.resample.disabled


def html_text(value):
    """The text of the HTML widget's first box, without tags and entities."""
    import html
    import re
    box = value.split("</div>")[0]
    return html.unescape(re.sub(r"<[^>]+>", "", box))


def test_same_seed_same_text_and_static_twin_agrees(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="ROMEO:", max_new_tokens=30,
                            temperature=0.9, top_k=5, top_p=0.9, seed=7)
    text = ex.current_text
    ex.button.click()
    assert ex.current_text == text
    static = render_generation(model, tokenizer, prompt="ROMEO:", max_new_tokens=30,
                               temperature=0.9, top_k=5, top_p=0.9, seed=7)
    assert static.text == text
    assert static.to_html() == ex.output.value
    assert str(static) == text


def test_settings_reach_model_generate(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="R", max_new_tokens=25, seed=0)
    ex.top_k.value = 1  # top-k 1 is greedy, whatever the seed and temperature
    ex.button.click()
    greedy = render_generation(model, tokenizer, prompt="R", max_new_tokens=25, greedy=True)
    assert ex.current_text == greedy.text
    ex.top_k.value, ex.greedy.value = 0, True
    assert ex.temperature.disabled and ex.seed.disabled
    ex.button.click()
    assert ex.current_text == greedy.text
    idx = torch.tensor([tokenizer.encode("R")])
    want = model.generate(idx, 25, greedy=True)[0].tolist()
    assert ex.current_text == tokenizer.decode(want)


def test_unknown_character_gives_a_message_not_an_exception(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="Zürich", max_new_tokens=5)
    assert ex.current_text == "" and ex.current_generation is None
    assert "'Z'" in ex.message and "'ü'" in ex.message and "never saw" in ex.message
    assert "Cannot generate" in ex.output.value
    ex.prompt.value = ""
    ex.button.click()
    assert "empty" in ex.message
    ex.prompt.value = "ROMEO:"
    ex.button.click()
    assert ex.message == "" and ex.current_text.startswith("ROMEO:")
    with pytest.raises(ValueError, match="never saw"):
        render_generation(model, tokenizer, prompt="é")


def test_other_failures_are_reported_in_the_widget(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, max_new_tokens=3)

    class Broken:
        def encode(self, text):
            raise RuntimeError("boom")

    ex.tokenizer = Broken()
    ex.button.click()
    assert "RuntimeError: boom" in ex.message and not ex.button.disabled


def test_shading_toggle_and_probabilities(model, tokenizer):
    ex = GenerationExplorer(model, tokenizer, prompt="ROMEO:", max_new_tokens=40, seed=2)
    shaded = ex.output.value
    assert "rgba(" in shaded and "title=\"p = " in shaded
    text = ex.current_text
    ex.shade.value = False
    assert "rgba(" not in ex.output.value and ex.current_text == text
    probs = ex.current_generation.probs
    assert len(probs) == 40 and all(0.0 < p <= 1.0 for p in probs)


def test_probabilities_match_the_model_beyond_the_context(model, tokenizer):
    # block_size is 16, so a 6-character prompt plus 30 tokens slides the window.
    gen = render_generation(model, tokenizer, prompt="ROMEO:", max_new_tokens=30, seed=5)
    ids = torch.tensor(tokenizer.encode(gen.text))
    block = model.config.block_size
    with torch.no_grad():
        for t in (6, 15, 16, 17, 35):
            context = ids[max(0, t - block):t][None]                         # (1, <= block)
            p = torch.softmax(model(context).logits[0, -1], -1)[ids[t]].item()
            assert gen.probs[t - 6] == pytest.approx(p, rel=1e-4, abs=1e-6)


def test_prompt_longer_than_the_context_and_the_model_mode(model, tokenizer):
    model.train()
    gen = render_generation(model, tokenizer, prompt=TEXT[:40], max_new_tokens=5, seed=0)
    assert model.training  # put back as it was
    model.eval()
    assert gen.text.startswith(TEXT[:40]) and len(gen.pieces) == 5


def test_html_escapes_and_shows_prompt_in_bold(tokenizer):
    gen = Generation("<b>&", ("<", "\n", "x"), (0.5, 0.01, 1.0), {"seed": 0, "temperature": 0.8})
    out = gen.to_html()
    assert "<b>&lt;b&gt;&amp;</b>" in out and "&lt;" in out
    assert "temperature 0.8" in out and "3 new tokens" in out
    assert gen.text == "<b>&<\nx" and gen.continuation == "<\nx"
    assert "greedy" in Generation("a", (), (), {"greedy": True}).summary()


def test_works_with_a_bpe_tokenizer():
    bpe = BPETokenizer.train(TEXT * 3, vocab_size=270)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=bpe.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    ex = GenerationExplorer(gpt, bpe, prompt="ROMEO: Zürich", max_new_tokens=12)
    assert ex.current_text.startswith("ROMEO: Zürich")  # bytes: any character is fine


def test_bad_arguments_raise_at_construction(model, tokenizer):
    with pytest.raises(TypeError, match="llmlab GPT"):
        GenerationExplorer(object(), tokenizer)
    with pytest.raises(ValueError, match="max_length"):
        GenerationExplorer(model, tokenizer, max_new_tokens=5000)
