"""Tests for llmlab.checks.poems (lesson 10): each checker accepts the solution and names typical mistakes."""

import pytest
import torch

from _solutions import fails_with, load_solutions  # tests/_solutions.py
from llmlab import checks
from llmlab.poems import FORM, is_cjk, load_quatrains, memorised_lines, poem_lines

solution = load_solutions("10_your_own_gpt")
POEMS = load_quatrains()


def _not_attempted(*args):
    raise NotImplementedError


# --- utf8_bytes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", range(5))  # fresh random characters each time
def test_utf8_accepts_the_solution_and_encode(attempt):
    assert checks.check_utf8_bytes(solution.utf8_bytes).passed
    # Deliberately bypassing the exercise still works: bytes iterate as ints.
    assert checks.check_utf8_bytes(lambda ch: str(ch).encode("utf-8")).passed


def test_utf8_the_shortcut_the_exercise_forbids_is_named():
    fails_with(checks.check_utf8_bytes, lambda ch: list(ch.encode("utf-8")), ["from ord(ch)"])


def _three_bytes_only(ch):
    """A beginner's version: everything non-ASCII as 3 bytes."""
    cp = ord(ch)
    if cp < 0x80:
        return [cp]
    return [0xE0 | cp >> 12 & 0x0F, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F]


def _no_continuation_marker(ch):
    return [b & 0x3F if i else b for i, b in enumerate(str(ch).encode("utf-8"))]


def _off_by_one_edge(ch):
    """<= where < belongs: U+0800 still gets 2 bytes."""
    cp = ord(ch)
    if cp <= 0x800 and cp >= 0x80:
        return [0xC0 | (cp >> 6) & 0x3F, 0x80 | cp & 0x3F]
    return list(str(ch).encode("utf-8"))


def _wrong_lead(ch):
    data = list(str(ch).encode("utf-8"))
    if len(data) == 3:
        data[0] = 0xC0 | (ord(ch) >> 12)  # the 2-byte marker on a 3-byte character
    return data


@pytest.mark.parametrize("answer, words", [
    (_three_bytes_only, ["byte(s)", "limits of your if/elif"]),
    (_no_continuation_marker, ["0b10", "continuation"]),
    (_off_by_one_edge, ["needs 3 byte(s)", "< or <="]),
    (lambda ch: [(0xE0 + ord(ch)) >> 12, 0x80 | ord(ch) >> 6 & 0x3F, 0x80 | ord(ch) & 0x3F]
     if 0x800 <= ord(ch) < 0x10000 else list(str(ch).encode("utf-8")), ["binds more tightly"]),
    (_wrong_lead, ["lead byte", "0b1110xxxx"]),
    (lambda ch: [ord(ch)], ["byte"]),
    (lambda ch: str(ch).encode("utf-8").hex(), ["list of byte values"]),
    (lambda ch: len(str(ch).encode("utf-8")), ["list of byte values"]),
    (lambda ch: None, ["forget a `return`"]),
    (lambda ch: [str(b) for b in str(ch).encode("utf-8")], ["return ints"]),
    (lambda ch: list(str(ch).encode("utf-16-le")), ["UTF-8 gives"]),
    (_not_attempted, ["NotImplementedError"]),
])
def test_utf8_names_the_mistake(answer, words):
    fails_with(checks.check_utf8_bytes, answer, words)


def test_utf8_a_code_point_left_whole_in_the_lead_byte_is_caught():
    def whole_code_point(ch):
        return [ord(ch)] + [0x80] * (len(str(ch).encode("utf-8")) - 1)
    verdict = checks.check_utf8_bytes(whole_code_point)
    assert not verdict.passed
    assert "too big" in verdict.message or "lead byte" in verdict.message, verdict.message


# --- form_mask ------------------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", range(5))
def test_form_mask_accepts_the_solution(attempt):
    assert checks.check_form_mask(solution.form_mask).passed


def _shifted(vocab, position):
    return solution.form_mask(vocab, max(position - 1, 0))


def _newline_everywhere(vocab, position):
    return solution.form_mask(vocab, position) | torch.tensor([t == "\n" for t in vocab])


def _ascii_comma_too(vocab, position):
    slot = (FORM + "\n")[position]
    twins = {"，": ",", "。": "."}
    return torch.tensor([t == slot or t == twins.get(slot) if slot != "H" else is_cjk(t)
                         for t in vocab])


def _anything_but_punctuation(vocab, position):
    slot = (FORM + "\n")[position]
    if slot == "H":
        return torch.tensor([t not in "，。\n" for t in vocab])
    return torch.tensor([t == slot for t in vocab])


def _nothing_at_the_end(vocab, position):
    mask = solution.form_mask(vocab, min(position, 23))
    return mask if position < 24 else torch.zeros(len(vocab), dtype=torch.bool)


def _unicode_block_only(vocab, position):
    """A beginner's CJK test: the main block only, so Extension A and B are forbidden."""
    slot = (FORM + "\n")[position]
    if slot == "H":
        return torch.tensor(["\u4e00" <= t <= "\u9fff" for t in vocab])
    return torch.tensor([t == slot for t in vocab])


def _form_only(vocab, position):
    return torch.tensor([is_cjk(t) if FORM[position] == "H" else t == FORM[position] for t in vocab])


def _sorts_vocab(vocab, position):
    vocab.sort()
    return solution.form_mask(vocab, position)


@pytest.mark.parametrize("answer, words", [
    (_shifted, ["neighbouring position", "count from"]),
    (_newline_everywhere, ["'\\n' inside the poem"]),
    (_ascii_comma_too, ["full-width", "ASCII"]),
    (_anything_but_punctuation, ["CJK characters only", "is_cjk"]),
    (_nothing_at_the_end, ["must end there", "only '\\n'"]),
    (lambda v, p: [bool(x) for x in solution.form_mask(v, p)], ["torch tensor of bools"]),
    (lambda v, p: solution.form_mask(v, p).float(), ["dtype", "bools"]),
    (lambda v, p: solution.form_mask(v, p)[:, None], ["one entry per token"]),
    (lambda v, p: ~solution.form_mask(v, p), ["position"]),
    (_sorts_vocab, ["changed its input `vocab`", ".sort()"]),
    (_unicode_block_only, ["U+4E00-U+9FFF", "is_cjk"]),
    (_form_only, ["IndexError", "(FORM + '\\n')[position]"]),
    (lambda v, p: None, ["forget a `return`"]),
    (_not_attempted, ["NotImplementedError"]),
])
def test_form_mask_names_the_mistake(answer, words):
    fails_with(checks.check_form_mask, answer, words)


# --- memorised_share -----------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", range(5))
def test_memorised_share_accepts_the_solution_and_the_package(attempt):
    assert checks.check_memorised_share(solution.memorised_share).passed
    assert checks.check_memorised_share(memorised_lines).passed


def test_memorised_share_accepts_a_float32_tensor_answer():
    # .item() of a float32 share differs from the float64 one in the 8th digit: still right.
    assert checks.check_memorised_share(lambda p, t: torch.tensor(memorised_lines(p, t))).passed


def test_a_copied_line_scores_one_and_an_unseen_one_zero():
    poem = POEMS[0]
    assert solution.memorised_share([poem], POEMS) == 1.0
    assert memorised_lines([poem], POEMS) == 1.0
    unseen = "天地一二三，山水四五六。风云七八九，日月十百千。"
    assert memorised_lines([unseen], POEMS[:5]) == 0.0


def _as_percent(poems, training):
    return 100 * memorised_lines(poems, training)


def _whole_poems(poems, training):
    return sum(p in training for p in poems) / len(poems)


def _distinct_lines(poems, training):
    known = {line for p in training for line in poem_lines(p)}
    lines = {line for p in poems for line in poem_lines(p)}
    return len(lines & known) / len(lines)


def _substring_search(poems, training):
    text = "".join(training)
    lines = [line for p in poems for line in poem_lines(p)]
    return sum(line in text for line in lines) / len(lines)


def _per_poem(poems, training):
    known = {line for p in training for line in poem_lines(p)}
    return sum(line in known for p in poems for line in poem_lines(p)) / len(poems)


def _sorts_poems(poems, training):
    poems.sort()
    return memorised_lines(poems, training)


@pytest.mark.parametrize("answer, words", [
    (_as_percent, ["percentage"]),
    (_whole_poems, ["whole poems"]),
    (_distinct_lines, ["distinct line"]),
    (_substring_search, ["inside a longer line"]),
    (_per_poem, ["number of lines"]),
    (_sorts_poems, ["changed its input `poems`", ".sort()"]),
    (lambda p, t: round(memorised_lines(p, t), 2), ["do not round"]),
    (lambda p, t: str(memorised_lines(p, t)), ["a number from 0 to 1"]),
    (lambda p, t: 0.5, ["the share is"]),
    (lambda p, t: None, ["forget a `return`"]),
    (_not_attempted, ["NotImplementedError"]),
])
def test_memorised_share_names_the_mistake(answer, words):
    fails_with(checks.check_memorised_share, answer, words)


def test_the_cases_tell_the_mistakes_apart():
    # Each wrong answer above must differ from the right share on every case drawn, or a learner
    # with that mistake could pass by luck: check the case generator itself, many times.
    import random
    from llmlab.checks.poems import _memo_cases
    for seed in range(30):
        for poems, train in _memo_cases(random.Random(seed), POEMS):
            want = memorised_lines(poems, train)
            for wrong in (_whole_poems, _distinct_lines, _substring_search, _per_poem):
                assert abs(wrong(poems, train) - want) > 1e-9, (seed, wrong.__name__)
