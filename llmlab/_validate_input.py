"""Input checks shared by the tokenizers, data, language-model and embedding modules.

Each check either returns the value in a clean form or raises at the boundary with a message
that names the problem and the fix. Kept apart so the modules that use them read as the idea.
"""
from __future__ import annotations

import math
import numbers
import operator
import re

import numpy as np
import torch

__all__: list[str] = []  # private: the modules that use these checks are the public face

# UTF-8 (and so JSON files and every byte-level tokenizer) cannot hold a lone surrogate.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def check_text(text, name: str = "text") -> str:
    """Return text unchanged if it is a str of valid Unicode; raise naming the problem otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"expected {name} as a str, got {type(text).__name__}; "
                        "join a list of strings first, or decode bytes with .decode('utf-8')")
    bad = _SURROGATE_RE.search(text)
    if bad is not None:
        raise ValueError(
            f"{name} contains a lone surrogate U+{ord(bad.group()):04X} at index {bad.start()}: it is "
            "not valid Unicode text (UTF-8 cannot encode it); clean it with "
            "text.encode('utf-8', 'replace').decode('utf-8')")
    return text


def as_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return value as an int in [minimum, maximum] (Python, NumPy or 0-d tensor ints), or raise.

    Bools and floats are refused, even 3.0: a size or an id is a whole number, and a float here is
    usually a division (n / 2) that should have been n // 2.
    """
    bounds = (f" >= {minimum}" if maximum is None else f" from {minimum} to {maximum}") \
        if minimum is not None else ""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        hint = " (a whole number is needed: use int(...), or // instead of /)" \
            if isinstance(value, float) else ""
        raise ValueError(f"{name} must be an int{bounds}, got {value!r}{hint}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int{bounds}, got {value}")
    return value


def is_number(x) -> bool:
    """True for a finite real number (not a bool)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_bool(value, name: str) -> bool:
    """Return value if it is a real bool; raise for 'false', 0 and friends (a string is truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}"
                         + (" (a string: write the bool itself, e.g. false in JSON)"
                            if isinstance(value, str) else ""))
    return bool(value)


def as_id_tensor(ids, name: str = "ids") -> torch.Tensor:
    """Return token ids (a list, NumPy array or tensor) as an integer tensor, refusing text and floats."""
    if ids is None or isinstance(ids, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of integer token ids, got "
                        f"{'None' if ids is None else type(ids).__name__}"
                        + ("; encode the text with a tokenizer first" if ids is not None else ""))
    try:
        tensor = torch.as_tensor(ids)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a sequence of integer token ids, got "
                        f"{type(ids).__name__} ({e})") from None
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer token ids, got dtype {tensor.dtype}; "
                         "encode the text with a tokenizer (or convert with ids.long() if the "
                         "values are whole numbers)")
    return tensor


def as_id_list(ids, name: str = "ids") -> list[int]:
    """Return a 1-D sequence of integer token ids as a list of Python ints, or raise naming the fix."""
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        tensor = as_id_tensor(ids, name)
        if tensor.dim() != 1:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but must be 1-D (one sequence): "
                             "decode each row separately, e.g. [tok.decode(row) for row in ids]")
        return tensor.tolist()
    if ids is None or isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        as_id_tensor(ids, name)  # raises the TypeError that names what was passed
        raise TypeError(f"{name} must be a sequence of integer token ids, got {type(ids).__name__}")
    out = []
    for pos, i in enumerate(ids):
        try:
            out.append(as_int(i, f"{name}[{pos}]"))
        except ValueError:
            raise ValueError(f"{name}[{pos}] is {i!r} ({type(i).__name__}), but token ids must be ints "
                             "(not floats, bools or strings): pass the ids that encode() returned")
    return out
