"""The autograder (llmlab.grade) on real generated submissions of lesson 03: all solved, none
attempted, one wrong, one that raises, one that deletes files, one that hangs.

Only the "all solved" one is the whole lesson; the others keep the lesson's set-up cell and its
exercise cells (plus the cell that misbehaves), which is what grading reads, to keep this fast.
"""
import csv
import sys
from pathlib import Path

import nbformat
import pytest

from llmlab.classroom import exercises, solution_version, student_version
from llmlab.grade import grade_folder, grade_notebook, main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as build  # noqa: E402  (scripts/notebooks.py)

STEM = "03_scaled_dot_product_attention"
CHECKERS = ["check_softmax", "check_attention", "check_causal_mask", "check_masked_attention"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lesson():
    return build.make_notebook(ROOT / "notebooks" / "src" / f"{STEM}.py")


def _reduced(nb, extra_after=None):
    """The set-up cell and the exercise cells of nb; extra_after = (exercise index, source)."""
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    keep = [1] + sorted({i for ex in exercises(nb) for i in (ex.def_cell, ex.cell)})
    for n, i in enumerate(keep):
        out.cells.append(nbformat.v4.new_code_cell(nb.cells[i].source))
        if extra_after is not None and n == extra_after[0]:
            out.cells.append(nbformat.v4.new_code_cell(extra_after[1]))
    return out


def _write(folder: Path, name: str, nb) -> Path:
    path = folder / f"{STEM[:2]}_{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _status(rows, student):
    return [r.status for r in rows if r.submission == f"03_{student}"]


@pytest.fixture(scope="module")
def graded(lesson, tmp_path_factory):
    """A class of five submissions, graded as a folder, with the CSV the command writes."""
    folder = tmp_path_factory.mktemp("submissions")
    solved = solution_version(lesson, STEM, ROOT)
    _write(folder, "ada_solved", solved)  # the whole lesson
    _write(folder, "ben_none", _reduced(student_version(lesson)))
    wrong = _reduced(solved)
    for cell in wrong.cells:  # the causal mask upside down: future keys instead of past ones
        cell.source = cell.source.replace("torch.tril(torch.ones(T, T, dtype=torch.bool))",
                                          "torch.triu(torch.ones(T, T, dtype=torch.bool))")
    _write(folder, "cy_wrong", wrong)
    raises = _reduced(solved)
    for cell in raises.cells:
        if "def my_attention" in cell.source:
            cell.source = 'raise RuntimeError("half-finished cell")\n' + cell.source
    _write(folder, "dee_raises", raises)
    (folder / "sentinel.txt").write_text("the teacher's file")
    deletes = _reduced(solved, (0, "import os\nos.remove('sentinel.txt')\n"
                                   "os.remove(os.path.expanduser('~/sentinel.txt'))"))
    _write(folder, "eve_deletes", deletes)
    return folder, grade_folder(folder, timeout=120), None


def test_a_solved_lesson_passes_every_exercise(graded):
    _, rows, _ = graded
    assert _status(rows, "ada_solved") == ["passed"] * 4
    assert [r.exercise for r in rows if r.submission == "03_ada_solved"] == CHECKERS


def test_an_untouched_notebook_is_not_attempted_and_a_wrong_answer_fails_with_its_hint(graded):
    _, rows, _ = graded
    assert _status(rows, "ben_none") == ["not attempted"] * 4
    assert _status(rows, "cy_wrong") == ["passed", "passed", "failed", "passed"]
    hint = next(r.message for r in rows if r.submission == "03_cy_wrong" and r.status == "failed")
    assert "wrong triangle" in hint, hint  # the checker's own message, carried into the grade


def test_a_cell_that_raises_is_an_error_for_its_exercise_only(graded):
    _, rows, _ = graded
    statuses = _status(rows, "dee_raises")
    assert statuses[0] == "passed" and statuses[2] == "passed"
    assert statuses[1] in ("error", "failed")  # the function was never defined
    assert statuses[3] == "passed"


def test_deleting_files_touches_only_the_graders_copy(graded):
    folder, rows, _ = graded
    assert (folder / "sentinel.txt").read_text() == "the teacher's file"
    assert _status(rows, "eve_deletes") == ["passed"] * 4
    assert sorted(p.name for p in folder.glob("*.ipynb")) == [
        "03_ada_solved.ipynb", "03_ben_none.ipynb", "03_cy_wrong.ipynb", "03_dee_raises.ipynb",
        "03_eve_deletes.ipynb"]


def test_the_command_prints_a_class_table_and_writes_the_csv(lesson, tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    _write(folder, "gus_none", _reduced(student_version(lesson)))
    solved = _reduced(solution_version(lesson, STEM, ROOT))
    _write(folder, "hal_solved", solved)
    out_csv = tmp_path / "grades.csv"
    assert main([str(folder), "--timeout", "120", "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "03_gus_none: 0 of 4 passed" in printed and "03_hal_solved: 4 of 4 passed" in printed
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4
    assert [(r["submission"], r["exercise"], r["status"]) for r in rows] == (
        [("03_gus_none", c, "not attempted") for c in CHECKERS]
        + [("03_hal_solved", c, "passed") for c in CHECKERS])
    with pytest.raises(SystemExit, match="there is no"):
        main([str(tmp_path / "missing")])


def test_a_notebook_that_hangs_is_stopped_and_the_rest_is_still_graded(lesson, tmp_path):
    hang = _reduced(solution_version(lesson, STEM, ROOT), (2, "while True:\n    pass"))
    path = _write(tmp_path, "fay_hangs", hang)
    rows = grade_notebook(path, timeout=15)
    assert [r.status for r in rows] == ["passed", "passed", "error", "error"]
    assert "time limit" in rows[2].message


def test_an_unreadable_file_and_an_empty_folder_are_reported(tmp_path):
    bad = tmp_path / "03_broken.ipynb"
    bad.write_text("{ not json")
    rows = grade_notebook(bad)
    assert [(r.exercise, r.status) for r in rows] == [("(notebook)", "error")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .ipynb files"):
        grade_folder(empty)
