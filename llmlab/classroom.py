"""Student and solution versions of a lesson notebook, made from the same source.

An exercise cell defines a function and calls its checker: `def my_softmax(x): ... raise
NotImplementedError` then `checks.check_softmax(my_softmax)`. The student version keeps the stub
(its check says "not attempted yet"); the solution version replaces the stub with the function
of the same name (without a leading "my_") from solutions/NN_*.py, with the solution file's
imports and the other solution functions it calls, so that every check passes. The autograder (llmlab.grade) reads the
verdicts these checks print.
"""
from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Exercise", "exercises", "solution_version", "student_version", "solutions_file",
           "slides_version"]

_CHECK_RE = re.compile(r"^checks\.(check_\w+)\((\w+)\)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook: its cell, the checker it calls and the function it checks."""

    cell: int        # index of the cell that calls the checker
    checker: str     # e.g. "check_softmax"
    function: str    # the name the learner defines, e.g. "my_softmax"
    def_cell: int    # index of the cell that defines it: the same one, or an earlier one

    @property
    def solution_name(self) -> str:
        """The function's name in solutions/: the same, without a leading "my_"."""
        return self.function.removeprefix("my_")


def _defines(source: str, name: str) -> bool:
    """True if the cell's source defines function name at its top level."""
    try:
        return any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.parse(source).body)
    except SyntaxError:  # a learner's unfinished cell: it defines nothing we can use
        return False


def exercises(nb) -> list[Exercise]:
    """The exercises of a notebook, in order: every code cell that calls checks.check_*(fn)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for m in _CHECK_RE.finditer(cell.source):
            fn = m.group(2)
            where = next((j for j in range(i, -1, -1) if nb.cells[j].cell_type == "code"
                          and _defines(nb.cells[j].source, fn)), i)
            found.append(Exercise(i, m.group(1), fn, where))
    return found


def solutions_file(stem: str, root: Path) -> Path:
    """solutions/<stem>.py for a lesson stem such as "03_scaled_dot_product_attention"."""
    path = root / "solutions" / f"{stem}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no solutions for {stem}: expected {path}")
    return path


def _solution_parts(path: Path) -> tuple[list[str], dict[str, str]]:
    """(import lines, {function name: source}) of a solutions file."""
    text = path.read_text(encoding="utf-8")
    imports, functions = [], {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.get_source_segment(text, node))
        elif isinstance(node, ast.FunctionDef):
            functions[node.name] = ast.get_source_segment(text, node)
    return imports, functions


def _needed(name: str, functions: dict[str, str]) -> list[str]:
    """The other functions of the solutions file that name's solution calls, callees first."""
    order: list[str] = []

    def visit(fn: str) -> None:
        called = {n.id for n in ast.walk(ast.parse(functions[fn])) if isinstance(n, ast.Name)}
        for other in sorted(called & functions.keys() - {fn, *order}):
            visit(other)
            order.append(other)

    visit(name)
    return [n for n in order if n != name]


def _function_span(source: str, name: str) -> tuple[int, int]:
    """(first, last) line numbers (1-based) of the top-level def of name in a cell's source."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return first, node.end_lineno
    raise ValueError(f"the exercise cell does not define {name}()")


def solution_version(nb, stem: str, root: Path):
    """A copy of the notebook with every exercise's stub replaced by the reference solution."""
    imports, functions = _solution_parts(solutions_file(stem, root))
    out = copy.deepcopy(nb)
    for ex in exercises(out):
        if ex.solution_name not in functions:
            raise ValueError(f"solutions/{stem}.py has no {ex.solution_name}() for "
                             f"{ex.checker}({ex.function}) in cell {ex.cell}")
        cell = out.cells[ex.def_cell]
        first, last = _function_span(cell.source, ex.function)
        body = functions[ex.solution_name]
        if ex.function != ex.solution_name:  # the notebook's name, so the check call finds it
            body = re.sub(rf"^def {ex.solution_name}\(", f"def {ex.function}(", body, count=1)
        used = [functions[n] + "\n\n" for n in _needed(ex.solution_name, functions)]
        lines = cell.source.split("\n")
        block = "\n".join(["# Solution (from solutions/" + f"{stem}.py)", *imports, "", *used, body])
        cell.source = "\n".join(lines[:first - 1] + [block] + lines[last:])
        cell.outputs, cell.execution_count = [], None
    return out


def student_version(nb):
    """A copy of the notebook as a student gets it: the stubs as they are, every output cleared."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out


def slides_version(nb):
    """A copy of an executed notebook marked up as slides: a new slide at each "#"/"##" heading,
    every other cell on a slide below it (reveal.js's vertical "subslides"), outputs kept."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        text = cell.source.lstrip()
        heading = cell.cell_type == "markdown" and (text.startswith("# ") or text.startswith("## "))
        cell.metadata["slideshow"] = {"slide_type": "slide" if heading else "subslide"}
    return out
