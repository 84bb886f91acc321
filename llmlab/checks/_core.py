"""The machinery every exercise checker shares: run the learner's code safely, report a verdict."""
from __future__ import annotations

import html
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one exercise: passed or not, and a friendly message."""

    exercise: str
    passed: bool
    message: str

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
        return None, failed(exercise, "the function still raises NotImplementedError: "
                                      "replace that line with your implementation.")
    except Exception as exc:  # a wrong answer must never crash into the learner's face
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return None, failed(exercise, f"your function raised {type(exc).__name__}: {exc} "
                                      f"(line {where.lineno}). Read the message, fix, and run again.")
