"""Import the reference solutions in solutions/ (their file names start with a digit, so not with
`import`). Test modules import this from tests/, which pytest puts on sys.path."""
import importlib.util
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=None)
def load_solutions(stem: str):
    """The module solutions/<stem>.py, imported once."""
    spec = importlib.util.spec_from_file_location(f"solutions_{stem[:2]}",
                                                  ROOT / "solutions" / f"{stem}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fails_with(check, answer, words) -> None:
    """Assert that check(answer) fails and that its message names every one of words."""
    verdict = check(answer)
    assert not verdict.passed
    for word in words:
        assert word in verdict.message, verdict.message
