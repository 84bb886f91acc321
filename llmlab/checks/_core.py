"""The machinery every exercise checker shares: run the learner's code safely, report a verdict."""
from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import math
import random
import sys
import traceback
from dataclasses import dataclass

import torch


# How a verdict on an untouched stub begins; the autograder (llmlab.grade) reads it.
NOT_ATTEMPTED = "not attempted yet"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one exercise: passed or not, and a friendly message."""

    exercise: str
    passed: bool
    message: str
    # The IPython execution count of the cell whose check already displayed this verdict, so that
    # the cell's last-expression display does not show it a second time.
    shown_in: int | None = dataclasses.field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "✅ Correct" if self.passed else "❌ Not yet"
        return f"{mark} ({self.exercise}): {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = "#1b7837" if self.passed else "#b35806"
        mark = "✅ Correct" if self.passed else "❌ Not yet"
        return (f'<div style="border-left: 4px solid {colour}; padding: 4px 10px;">'
                f"<b>{mark}</b> — <i>{html.escape(self.exercise)}</i><br>"
                f"{html.escape(self.message)}</div>")


    def _ipython_display_(self) -> None:
        shell = _shell()
        if shell is not None and self.shown_in == shell.execution_count:
            return  # its check showed it already, in this very cell
        from IPython.display import display
        display({"text/html": self._repr_html_(), "text/plain": str(self)}, raw=True)


def _shell():
    """The running IPython shell, or None (plain Python: IPython is never imported for this)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def shows_verdict(check):
    """Make a check_* function display its verdict itself, so two checks in one cell both show."""
    @functools.wraps(check)
    def run(*args, **kwargs):
        verdict = check(*args, **kwargs)
        shell = _shell()
        if shell is None or not isinstance(verdict, Verdict):
            return verdict
        verdict._ipython_display_()
        return dataclasses.replace(verdict, shown_in=shell.execution_count)
    return run


def passed(exercise: str, message: str = "well done!") -> Verdict:
    """A passing verdict."""
    return Verdict(exercise, True, message)


def failed(exercise: str, hint: str) -> Verdict:
    """A failing verdict carrying a hint aimed at the mistake we detected."""
    return Verdict(exercise, False, hint)


def call_safely(exercise: str, fn, *args, **kwargs):
    """Call the learner's fn; return (result, None) or (None, Verdict) describing the exception."""
    if not callable(fn):
        return None, failed(exercise, f"expected a function, got {type(fn).__name__}. "
                                      "Pass the function itself, without calling it: check(my_fn).")
    try:
        return fn(*args, **kwargs), None
    except NotImplementedError:
        return None, failed(exercise, f"{NOT_ATTEMPTED}: the function still raises "
                                      "NotImplementedError. Replace that line with your "
                                      "implementation, then run the cell again.")
    except Exception as exc:  # a wrong answer must never crash into the learner's face
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return None, failed(exercise, f"your function raised {type(exc).__name__}: {exc} "
                                      f"(line {where.lineno}). Read the message, fix, and run again.")


# --- shared by the tensor exercises -----------------------------------------------------------

def randn(*shape: int, seed: int, std: float = 1.0):
    """Random test data from a private generator (the learner's random state is left alone)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * std


def as_tensor(value, exercise: str, what: str = "the result"):
    """Return (value as a float64 tensor, None) or (None, a failing verdict saying what came back)."""
    try:
        return torch.as_tensor(value).detach().double(), None
    except (TypeError, ValueError, RuntimeError):
        return None, failed(exercise, f"{what} should be a tensor, but your function returned "
                                      f"{type(value).__name__}. Did you forget a `return`?")


def close(a, b, atol: float = 1e-5) -> bool:
    """Same shape and the same numbers, up to float32 rounding."""
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), atol=atol, rtol=1e-4))


def _argument_names(fn, n: int) -> list[str]:
    """The names the learner gave fn's first n parameters (argument 1, 2, ... where unknown)."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i + 1}" for i in range(n)]


def call_unchanged(exercise: str, fn, *args):
    """Call fn on clones of the tensor args; (result, None), or (None, verdict) when it raised
    or changed an input in place (which would spoil the caller's tensor). The verdict names the
    input by the learner's own parameter name."""
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    with torch.no_grad():
        result, verdict = call_safely(exercise, fn, *copies)
    if verdict is not None:
        return None, verdict
    names = _argument_names(fn, len(args))
    tensors = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    return result, unchanged(exercise, {names[i]: args[i] for i in tensors},
                             {names[i]: copies[i] for i in tensors})


def unchanged(exercise: str, originals: dict, now: dict) -> Verdict | None:
    """A failing verdict if the learner's function modified one of its inputs in place.

    originals maps each argument's name to a private copy taken before the call; now, to the
    object the learner received. Tensors are compared exactly, anything else (a dict) with ==.
    """
    for name, before in originals.items():
        after = now[name]
        same = torch.equal(before, after) if isinstance(before, torch.Tensor) else before == after
        if not same and isinstance(before, (list, dict, set)):
            return failed(exercise, f"your function changed its input `{name}` in place (with "
                                    "`.sort()`, `.append()`, `.pop()`, item assignment or `del`), "
                                    "so the caller's data is spoiled. Work on a copy "
                                    f"(`sorted({name})`, `list({name})`) or build a new one.")
        if not same:
            return failed(exercise, f"your function changed its input `{name}` in place (with "
                                    "`/=`, `-=`, `setdefault`, or a method ending in `_` such as "
                                    "`.masked_fill_()`), so the caller's data is spoiled. Compute "
                                    "a new value instead: `x = x + ...` rather than `x += ...`, "
                                    "`y = x / t` rather than `x /= t`.")
    return None


def as_count(value):
    """The learner's count as an int (ints, whole floats, 1-element tensors), else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value)


def distinct_sizes(*ranges: tuple[int, int]) -> list[int]:
    """One size from each (low, high) range, drawn afresh on every call, no two equal.

    Checkers add a case of these sizes to their fixed ones, so an answer cannot be fitted to the
    cases it was tried on, and a mix-up of two axes always changes the shape.
    """
    pick = random.SystemRandom()
    while True:
        sizes = [pick.randint(low, high) for low, high in ranges]
        if len(set(sizes)) == len(sizes):
            return sizes


def fresh_seed() -> int:
    """A seed for randn, drawn afresh on every call (the learner's random state is untouched)."""
    return random.SystemRandom().randint(0, 10**6)
