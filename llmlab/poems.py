"""Poems with a fixed form: five-character quatrains (五言绝句), generating them, measuring them.

A quatrain here is one 24-character string, "AAAAA，BBBBB。CCCCC，DDDDD。": four lines of five
CJK characters, "，" after lines 1 and 3, "。" after lines 2 and 4. A character-level model trained
on poems_text(poems) sees one poem per line; generate_poems can force the form by masking every
token the form does not allow at each position (constrained decoding).
"""
from __future__ import annotations

import re
from typing import NamedTuple

import torch
import torch.nn as nn

from llmlab._validate_input import as_int, check_text
from llmlab.data import load_text
from llmlab.gpt import GPT
from llmlab.sampling import sample_next
from llmlab.tokenizers import CharTokenizer

__all__ = [
    "FORM",
    "FORM7",
    "POEM_LEN",
    "Skipped",
    "is_cjk",
    "is_well_formed",
    "parse_quatrains",
    "load_quatrains",
    "poems_text",
    "split_poems",
    "FormMask",
    "form_table",
    "generate_poems",
    "generate_poem",
    "form_rate",
    "poem_lines",
    "show_poem",
    "memorised_lines",
    "copied_poems",
    "bytes_per_char",
    "bytes_per_token",
]

# The form, one slot per position: "H" is any CJK character, anything else must appear as is.
FORM = "HHHHH，HHHHH。HHHHH，HHHHH。"
POEM_LEN = len(FORM)  # 24; in poems_text each poem is followed by "\n" (position 24)
FORM7 = "HHHHHHH，HHHHHHH。HHHHHHH，HHHHHHH。"  # the seven-character quatrain (七言绝句)
# CJK ideographs: Extension A, the Unified block, and Extensions B-F (planes 2). The same ranges
# the corpus was selected with (data/SOURCES.md); punctuation, digits, Latin, kana are not in them.
_CJK_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ffff]")
_LINE_BREAKS_RE = re.compile("[，。？！\n]")


def is_cjk(ch: str) -> bool:
    """True if ch is one CJK ideograph (汉字), the only kind of character a poem line may hold."""
    return isinstance(ch, str) and len(ch) == 1 and _CJK_RE.fullmatch(ch) is not None


def _slot_name(slot: str) -> str:
    """What a slot of FORM asks for, in words."""
    return "a CJK character" if slot == "H" else repr(slot)


def _form_problem(text: str, prefix: bool = False, form: str = FORM) -> str | None:
    """Why text is not a quatrain of form (prefix=True: not the start of one), or None if it is."""
    if len(text) > len(form):
        return f"it has {len(text)} characters, more than a quatrain's {len(form)}"
    for pos, (ch, slot) in enumerate(zip(text, form)):
        if not (is_cjk(ch) if slot == "H" else ch == slot):
            return f"character {pos} is {ch!r}, but the form needs {_slot_name(slot)} there"
    if not prefix and len(text) < len(form):
        return (f"it has {len(text)} characters, not {len(form)}: the form needs 4 lines of "
                f"{form.index('，')} characters")
    return None


def is_well_formed(text) -> bool:
    """True if text is exactly one quatrain "AAAAA，BBBBB。CCCCC，DDDDD。" (nothing before or after)."""
    return isinstance(text, str) and _form_problem(text) is None


# ---------------------------------------------------------------------------------------------
# The corpus


class Skipped(NamedTuple):
    """A block of the corpus file that is not used, and why."""

    block: int  # 1-based position of the block in the file
    title: str
    reason: str  # one of "no poem", "not a quatrain", "duplicate"
    detail: str


def parse_quatrains(text: str, form: str = FORM) -> tuple[list[str], list[Skipped]]:
    """Split corpus text (blocks: title, author, poem lines) into quatrains and the skipped blocks.

    A block's poem lines are joined, so "AAAAA，BBBBB。" + "CCCCC，DDDDD。" becomes one 24-character
    poem. A block that is not a quatrain of form (FORM, or FORM7 for seven characters a line), or
    repeats an earlier poem, is skipped and listed.
    """
    check_text(text)
    blocks = re.split(r"\n[ \t]*\n+", text.replace("\r\n", "\n").strip("\n"))
    poems, skipped, seen = [], [], set()
    for number, block in enumerate(blocks, start=1):
        title, *rest = block.split("\n")
        body = "".join(line.strip() for line in rest[1:])  # rest[0] is the author
        if not body:
            skipped.append(Skipped(number, title, "no poem", "a block is title, author, poem lines"))
        elif (problem := _form_problem(body, form=form)) is not None:
            skipped.append(Skipped(number, title, "not a quatrain", problem))
        elif body in seen:
            skipped.append(Skipped(number, title, "duplicate", "the same poem as an earlier block"))
        else:
            seen.add(body)
            poems.append(body)
    return poems, skipped


def load_quatrains(name: str = "tang5_simplified", form: str = FORM) -> list[str]:
    """The quatrains of a shipped corpus (checksum-verified); parse_quatrains also lists the skipped."""
    return parse_quatrains(load_text(name), form)[0]


def split_poems(poems, val_fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """(training poems, validation poems): the last val_fraction of the poems, whole, held out.

    For the 3,710 shipped quatrains this is the same cut as train_val_split(ids, 0.1) on the
    characters of poems_text(poems): every poem and its "\n" take 25 characters.
    """
    poems = list(poems)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    cut = int(len(poems) * (1 - val_fraction))
    if cut == 0 or cut == len(poems):
        raise ValueError(f"{len(poems)} poems are too few to hold out {val_fraction:.0%} and keep "
                         "the rest: give more poems")
    return poems[:cut], poems[cut:]


def poems_text(poems) -> str:
    """Training text: each poem followed by "\\n", so the model also learns where a poem ends."""
    poems = list(poems)
    for i, poem in enumerate(poems):
        check_text(poem, f"poems[{i}]")
        if "\n" in poem:
            raise ValueError(f"poems[{i}] contains a line break: write each poem as one line, "
                             "e.g. 'AAAAA，BBBBB。CCCCC，DDDDD。'")
    return "".join(poem + "\n" for poem in poems)


# ---------------------------------------------------------------------------------------------
# Constrained decoding


def _check_tokenizer(tokenizer) -> CharTokenizer:
    """A CharTokenizer that knows "\\n" (the poem separator), or raise naming the fix."""
    if not isinstance(tokenizer, CharTokenizer):
        raise TypeError(f"poem generation needs a CharTokenizer (one token per character), got "
                        f"{type(tokenizer).__name__}: use CharTokenizer.train(poems_text(poems))")
    if "\n" not in tokenizer.vocab:
        raise ValueError("the tokenizer has no '\\n', which ends every poem: train it on "
                         "poems_text(poems), e.g. CharTokenizer.train(poems_text(poems))")
    return tokenizer


def form_table(vocab) -> torch.Tensor:
    """(POEM_LEN + 1, V) bools: row p marks the tokens of vocab the form allows at position p."""
    vocab = list(vocab)
    cjk = torch.tensor([is_cjk(c) for c in vocab])  # (V,)
    rows = [cjk if slot == "H" else torch.tensor([c == slot for c in vocab])
            for slot in FORM + "\n"]
    return torch.stack(rows)  # row POEM_LEN (after the last "。") allows only "\n"


class FormMask:
    """Which tokens the form allows at each position of a poem: mask(position) -> (V,) bools."""

    def __init__(self, tokenizer: CharTokenizer):
        vocab = _check_tokenizer(tokenizer).vocab
        missing = [c for c in "，。" if c not in vocab]
        if missing or not any(is_cjk(c) for c in vocab):
            lack = "CJK characters" if not missing else " and ".join(map(repr, missing))
            raise ValueError(f"the tokenizer's vocabulary has no {lack}, so it cannot write a "
                             "quatrain: train it on poems, CharTokenizer.train(poems_text(poems))")
        self.table = form_table(vocab)  # (POEM_LEN + 1, V): row 24 allows only "\n"

    def __call__(self, position: int) -> torch.Tensor:
        """Boolean mask (V,) of the tokens allowed at position (0 to POEM_LEN; POEM_LEN is "\\n")."""
        return self.table[as_int(position, "position", 0, POEM_LEN)]


def _check_prompt(prompt, tokenizer: CharTokenizer) -> str:
    """Return prompt if it is how a quatrain could start and every character is in the vocabulary."""
    check_text(prompt, "prompt")
    problem = _form_problem(prompt, prefix=True)
    if problem is not None:
        raise ValueError(f"prompt {prompt!r} is not the start of a quatrain: {problem}. Give up to "
                         f"{POEM_LEN} characters in the form {FORM!r} (H: a CJK character), "
                         "e.g. prompt='白日依山尽，'")
    unknown = [c for c in prompt if c not in tokenizer.vocab]
    if unknown:
        raise ValueError(f"prompt character {unknown[0]!r} is not in the tokenizer's vocabulary, "
                         "so the model has never seen it: choose characters from the training poems")
    return prompt


def _last_logits(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
    """The model's scores (B, V) for the token after idx (B, T)."""
    block_size = getattr(getattr(model, "config", None), "block_size", None)
    idx = idx if block_size is None else idx[:, -block_size:]  # (B, <= block_size)
    if isinstance(model, GPT):  # only the last position is needed: skip the other T - 1 rows of logits
        return model.lm_head(model.features(idx)[0][:, -1])  # (B, C) -> (B, V)
    out = model(idx)
    logits = out[0] if isinstance(out, tuple) else out  # (logits, loss) or logits alone
    return logits[:, -1]  # (B, V)


@torch.no_grad()
def _sample_rows(model, tokenizer, n, prompt, mask, temperature, top_k, generator) -> list[str]:
    """n poems sampled side by side, one character per step."""
    device = next(model.parameters()).device
    newline = tokenizer.encode("\n")[0]
    # "\n" ends the previous poem in the training text, so it is the context that starts one.
    idx = torch.tensor([tokenizer.encode("\n" + prompt)] * n, device=device)  # (n, 1 + len(prompt))
    # Free sampling may run one character past the form: a model that has learned it writes "\n".
    end = POEM_LEN if mask is not None else POEM_LEN + 1
    for pos in range(len(prompt), end):
        logits = _last_logits(model, idx)  # (n, V)
        if logits.shape[-1] != tokenizer.vocab_size:
            raise ValueError(f"the model scores {logits.shape[-1]} tokens but the tokenizer has "
                             f"{tokenizer.vocab_size}: build the model with "
                             "vocab_size=tokenizer.vocab_size and train it on that tokenizer's ids")
        if mask is not None:  # forbidden tokens get -inf, so softmax gives them probability 0
            logits = logits.masked_fill(~mask(pos).to(device), float("-inf"))
        nxt = sample_next(logits, temperature, top_k, generator=generator)  # (n,)
        idx = torch.cat([idx, nxt[:, None]], dim=1)  # (n, T + 1)
        if mask is None and (idx[:, 1:] == newline).any(dim=1).all():
            break  # every row has ended its poem
    texts = [tokenizer.decode(row[1:].tolist()) for row in idx.cpu()]
    return [text.split("\n", 1)[0] for text in texts]


def generate_poems(model: nn.Module, tokenizer: CharTokenizer, n: int, generator=None,
                   temperature: float = 1.0, top_k: int | None = None, constrained: bool = True,
                   prompt: str = "", batch_size: int = 100) -> list[str]:
    """Sample n poems, batch_size side by side; see generate_poem for the settings.

    The same generator seed and batch_size give the same poems (another batch_size draws the
    random numbers in another order, so other poems).
    """
    tokenizer = _check_tokenizer(tokenizer)
    mask = FormMask(tokenizer) if constrained else None
    prompt = _check_prompt(prompt, tokenizer)
    n, batch_size = as_int(n, "n", 1), as_int(batch_size, "batch_size", 1)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch model (nn.Module), got {type(model).__name__}")
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        poems = []
        for start in range(0, n, batch_size):
            rows = min(batch_size, n - start)
            poems += _sample_rows(model, tokenizer, rows, prompt, mask, temperature, top_k, generator)
        return poems
    finally:
        model.train(was_training)


def generate_poem(model: nn.Module, tokenizer: CharTokenizer, generator=None,
                  temperature: float = 1.0, top_k: int | None = None, constrained: bool = True,
                  prompt: str = "") -> str:
    """Sample one poem, one character at a time, starting after "\\n" (and prompt, if given).

    constrained=True masks, before sampling, every token the form does not allow at that position
    (the rest are renormalised), so the result is always well formed. constrained=False samples
    freely until the model writes "\\n" (not returned) or POEM_LEN + 1 characters are out: the
    result is well formed only if the model itself ended the poem where the form ends.
    prompt must be how a quatrain starts (e.g. "白日依山尽，"); the poem continues it.
    """
    return generate_poems(model, tokenizer, 1, generator, temperature, top_k, constrained, prompt)[0]


# ---------------------------------------------------------------------------------------------
# Measuring generated poems


def _as_poem_list(poems, name: str = "poems") -> list[str]:
    """poems as a non-empty list of str, or raise."""
    if isinstance(poems, str):
        raise TypeError(f"{name} must be a list of poems, got one str: wrap it, [poem]")
    poems = list(poems)
    if not poems:
        raise ValueError(f"{name} is empty: there is nothing to measure; generate some poems first")
    for i, poem in enumerate(poems):
        check_text(poem, f"{name}[{i}]")
    return poems


def form_rate(poems) -> float:
    """The share of poems that are well-formed quatrains."""
    poems = _as_poem_list(poems)
    return sum(is_well_formed(p) for p in poems) / len(poems)


def show_poem(poem: str) -> str:
    """A poem as it is printed on a page: a line break after each "，" "。" "？" "！"."""
    return re.sub("([，。？！])(?!$)", "\\1\n", check_text(poem, "poem"))


def poem_lines(poem: str) -> list[str]:
    """A poem's lines: the text between "，" "。" "？" "！" and "\\n" (a quatrain: four of 5 characters)."""
    return [line for line in _LINE_BREAKS_RE.split(check_text(poem, "poem")) if line]


def memorised_lines(poems, training_poems) -> float:
    """The share of the lines of poems that occur, exactly, as a line of some training poem."""
    known = {line for p in _as_poem_list(training_poems, "training_poems") for line in poem_lines(p)}
    lines = [line for p in _as_poem_list(poems) for line in poem_lines(p)]
    if not lines:
        raise ValueError("the poems have no lines (only punctuation or empty text), so there is "
                         "nothing to compare with the training poems")
    return sum(line in known for line in lines) / len(lines)


def copied_poems(poems, training_poems) -> float:
    """The share of poems that are, character for character, one of the training poems."""
    known = set(_as_poem_list(training_poems, "training_poems"))
    poems = _as_poem_list(poems)
    return sum(p in known for p in poems) / len(poems)


# ---------------------------------------------------------------------------------------------
# Bytes, characters, tokens


def _utf8_size(text) -> int:
    """Bytes of non-empty text in UTF-8."""
    if not check_text(text):
        raise ValueError("text is empty: there is nothing to count; pass some text")
    return len(text.encode("utf-8"))


def bytes_per_char(text: str) -> float:
    """UTF-8 bytes per character: 1 for ASCII English, 3 for common CJK characters."""
    return _utf8_size(text) / len(text)


def bytes_per_token(text: str, tokenizer) -> float:
    """UTF-8 bytes per token of tokenizer: how much text each token (and each model step) carries."""
    size = _utf8_size(text)
    return size / len(tokenizer.encode(text))

