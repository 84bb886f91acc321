"""Solutions to the exercises of lesson 10, "Your own GPT".

Try the exercises in the notebook first: the checkers give a hint for each typical mistake.
Each function here passes its checker in llmlab.checks.
"""
import torch

from llmlab.poems import FORM, is_cjk, poem_lines


def utf8_bytes(ch):
    """Exercise 1: the UTF-8 bytes of one character, as a list of ints, from its code point."""
    cp = ord(ch)
    if cp < 0x80:  # 7 bits: ASCII stays one byte, itself
        return [cp]
    if cp < 0x800:  # 11 bits: 110xxxxx 10xxxxxx
        return [0xC0 | cp >> 6, 0x80 | cp & 0x3F]
    if cp < 0x10000:  # 16 bits (all common Chinese): 1110xxxx 10xxxxxx 10xxxxxx
        return [0xE0 | cp >> 12, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F]
    # 21 bits: 11110xxx and three continuation bytes
    return [0xF0 | cp >> 18, 0x80 | cp >> 12 & 0x3F, 0x80 | cp >> 6 & 0x3F, 0x80 | cp & 0x3F]


def form_mask(vocab, position):
    """Exercise 2: (V,) bools, True for the tokens the form allows at position (24: the end)."""
    slot = (FORM + "\n")[position]  # "H" (a character), "，", "。", or "\n" after the poem
    if slot == "H":
        return torch.tensor([is_cjk(token) for token in vocab])
    return torch.tensor([token == slot for token in vocab])


def memorised_share(poems, training_poems):
    """Exercise 3: the share of the poems' lines that are, exactly, a line of a training poem."""
    known = {line for poem in training_poems for line in poem_lines(poem)}  # a set: fast lookups
    lines = [line for poem in poems for line in poem_lines(poem)]  # every line, repeats too
    return sum(line in known for line in lines) / len(lines)
