"""Exercise checkers: call check_*(your_function) and read the verdict; wrong answers never raise."""
from ._core import Verdict

__all__ = ["Verdict"]
