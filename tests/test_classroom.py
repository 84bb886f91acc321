"""Student and solution versions of every lesson (llmlab.classroom, scripts/notebooks.py).

The exercise cells of both versions are executed here for every lesson: each solution passes its
check, each untouched stub gets "not attempted yet" (never a traceback). The whole solution
version of lesson 03 is also executed end to end by tests/test_grade.py; the student versions
are the stored notebooks, which nbval executes end to end.
"""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmlab import checks
from llmlab.classroom import exercises, solution_version, student_version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as build  # noqa: E402  (scripts/notebooks.py)

SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _run_exercise_cells(nb) -> dict[str, object]:
    """Execute only the exercise cells, in one fresh namespace; {checker: verdict returned}."""
    verdicts = {}
    namespace = {"checks": checks}
    # A cell may use what the lesson imported at the top (e.g. lesson 10's FORM): run that first.
    exec(compile(_without_magics(nb.cells[1].source), "<setup>", "exec"), namespace)
    for ex in exercises(nb):
        if ex.def_cell != ex.cell:
            exec(compile(nb.cells[ex.def_cell].source, f"<cell {ex.def_cell}>", "exec"), namespace)
        source = nb.cells[ex.cell].source
        call = f"checks.{ex.checker}({ex.function})"
        exec(compile(source.replace(call, f"__verdict = {call}"), f"<cell {ex.cell}>", "exec"),
             namespace)
        verdicts[ex.checker] = namespace.pop("__verdict")
    return verdicts


def _without_magics(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not line.startswith("%"))


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_lesson_has_exercises_and_both_versions_behave(src):
    nb = build.make_notebook(src)
    found = exercises(nb)
    assert len(found) >= 3, f"{src.stem}: only {len(found)} checked exercises"
    solved = _run_exercise_cells(solution_version(nb, src.stem, ROOT))
    assert set(solved) == {ex.checker for ex in found}
    for checker, verdict in solved.items():
        assert verdict.passed, f"{src.stem}: the solution fails {checker}: {verdict.message}"
    student = _run_exercise_cells(student_version(nb))
    for checker, verdict in student.items():
        assert not verdict.passed and verdict.message.startswith("not attempted yet"), (
            f"{src.stem}: the empty {checker} says {verdict.message!r}")


def test_the_solution_version_changes_only_the_exercise_cells_and_keeps_the_checks():
    src = next(s for s in SOURCES if s.stem.startswith("03"))
    nb = build.make_notebook(src)
    solved = solution_version(nb, src.stem, ROOT)
    changed = [i for i, (a, b) in enumerate(zip(nb.cells, solved.cells)) if a.source != b.source]
    assert changed == [ex.def_cell for ex in exercises(nb)]
    for ex in exercises(nb):
        assert "raise NotImplementedError" not in solved.cells[ex.def_cell].source
        assert f"checks.{ex.checker}(" in solved.cells[ex.cell].source
    assert all(not c.get("outputs") for c in student_version(nb).cells if c.cell_type == "code")


def test_the_build_commands_write_the_versions_a_teacher_hands_out(tmp_path):
    for kind in ("student", "solutions"):
        out = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), kind,
                              str(tmp_path / kind), "03", "10"], capture_output=True, text=True,
                             cwd=ROOT, timeout=120)
        assert out.returncode == 0, out.stderr
    for stem in ("03_scaled_dot_product_attention", "10_your_own_gpt"):
        student = nbformat.read(tmp_path / "student" / f"{stem}.ipynb", as_version=4)
        solved = nbformat.read(tmp_path / "solutions" / f"{stem}.ipynb", as_version=4)
        assert "raise NotImplementedError" in "".join(c.source for c in student.cells)
        assert "raise NotImplementedError" not in "".join(c.source for c in solved.cells)
        assert len(student.cells) == len(solved.cells)
    fail = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "student"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert fail.returncode != 0 and "needs an output folder" in fail.stderr
