"""Grade submitted lesson notebooks: run each in a fresh kernel, read its exercise verdicts.

    python -m llmlab.grade submissions/ --csv grades.csv      # a folder: one row per exercise
    python -m llmlab.grade alice.ipynb --timeout 300

Each notebook runs in its own process, in a scratch copy of its folder with HOME pointing there
(so a notebook that deletes files deletes copies), under a time limit; one that crashes, loops
forever or kills its kernel is reported and the others are graded all the same. The exercises
are the lesson's `checks.check_*(fn)` cells (llmlab.classroom.exercises) of the lesson the file
name starts with (e.g. "03"), or, if the name has no lesson number, of the notebook itself.
Status per exercise: passed, failed, not attempted (the stub still raises NotImplementedError),
or error (the cell raised, or the run stopped before it), with the checker's message.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from llmlab.checks._core import NOT_ATTEMPTED
from llmlab.classroom import exercises

__all__ = ["Row", "grade_notebook", "grade_folder", "main"]

ROOT = Path(__file__).resolve().parent.parent
STATUSES = ("passed", "failed", "not attempted", "error")
_VERDICT_RE = re.compile(r"^(✅ Correct|❌ Not yet) \((?P<exercise>.*?)\): (?P<message>.*)$", re.S)


@dataclass
class Row:
    """One exercise of one submission."""

    submission: str
    exercise: str   # the checker's name, e.g. "check_softmax"
    status: str     # one of STATUSES
    message: str


def _lesson_exercises(path: Path, nb) -> list:
    """The exercises the submission should have: its lesson's, or (no lesson number) its own."""
    match = re.match(r"(\d\d)", path.name)
    if match:
        sources = sorted((ROOT / "notebooks").glob(f"{match.group(1)}_*.ipynb"))
        if sources:
            return exercises(nbformat.read(sources[0], as_version=4))
    return exercises(nb)


def _verdict(cell) -> tuple[str, str] | None:
    """(status, message) from the verdict a check cell displayed, or None if it shows none."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return "error", f"the cell raised {out.get('ename')}: {out.get('evalue')}"
        text = out.get("data", {}).get("text/plain", "") if "data" in out else ""
        text = "".join(text) if isinstance(text, list) else text
        m = _VERDICT_RE.match(text.strip())
        if m:
            message = m.group("message")
            if m.group(1).startswith("✅"):
                return "passed", message
            if message.startswith(NOT_ATTEMPTED):
                return "not attempted", message
            return "failed", message
    return None


def _run_one(notebook: Path, out: Path, timeout: int) -> str | None:
    """Execute notebook into out in a child process; None if it finished, else why it did not."""
    code = ("import sys, nbformat; from nbclient import NotebookClient\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "client = NotebookClient(nb, timeout=int(sys.argv[3]), allow_errors=True,"
            " kernel_name='python3', resources={'metadata': {'path': sys.argv[4]}})\n"
            "try:\n    client.execute()\nfinally:\n    nbformat.write(nb, sys.argv[2])\n")
    env = {**os.environ, "HOME": str(notebook.parent), "LLMLAB_QUICK": os.environ.get(
        "LLMLAB_QUICK", "1"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(notebook), str(out), str(timeout),
                             str(notebook.parent)], cwd=notebook.parent, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own process group: killed as one
    try:
        log, _ = proc.communicate(timeout=timeout + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the kernel too: it is in the same group
        proc.communicate()
        return f"stopped after {timeout} s (the time limit): a cell runs too long or forever"
    if proc.returncode != 0:
        last = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        if "CellTimeoutError" in log or "timed out" in log.lower():
            return f"stopped after {timeout} s (the time limit): a cell runs too long or forever"
        if "DeadKernelError" in log:
            return "the kernel died (out of memory, or the notebook ended its own process)"
        return f"the run failed: {last[0][:300]}"
    return None


def grade_notebook(path, timeout: int = 600) -> list[Row]:
    """Grade one submitted notebook: one Row per exercise of its lesson."""
    path = Path(path)
    name = path.stem
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one student's problem
        return [Row(name, "(notebook)", "error", f"cannot read {path.name}: {e}")]
    wanted = _lesson_exercises(path, nb)
    scratch = Path(tempfile.mkdtemp(prefix="llmlab-grade-"))
    try:
        work = scratch / path.name
        shutil.copy2(path, work)
        result = scratch / "executed.ipynb"
        problem = _run_one(work, result, timeout)
        # Killed before anything was saved: no verdict can be read, every exercise is an error.
        executed = nbformat.read(result, as_version=4) if result.exists() else nbformat.v4.new_notebook()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    shown = {}
    for ex in exercises(executed):
        verdict = _verdict(executed.cells[ex.cell])
        if verdict is not None:
            shown.setdefault(ex.checker, verdict)
    rows = []
    for ex in wanted:
        status, message = shown.get(ex.checker, ("error", problem or
                                                 "no verdict: the check cell was removed or did not run"))
        rows.append(Row(name, ex.checker, status, message))
    return rows


def grade_folder(folder, timeout: int = 600) -> list[Row]:
    """Grade every .ipynb in folder (sorted by name), one after the other."""
    files = sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no .ipynb files in {folder}: put the submitted notebooks there")
    return [row for f in files for row in grade_notebook(f, timeout)]


def main(argv=None) -> int:
    """Grade a notebook or a folder of them; print a table and optionally write a CSV."""
    p = argparse.ArgumentParser(prog="python -m llmlab.grade", description=__doc__.split("\n")[0])
    p.add_argument("path", help="a submitted .ipynb, or a folder of them")
    p.add_argument("--timeout", type=int, default=600, help="seconds for each notebook (600); a "
                   "cell that alone runs longer is stopped and the verdicts before it are kept")
    p.add_argument("--csv", help="also write the rows to this CSV file")
    args = p.parse_args(argv)
    path = Path(args.path)
    if not path.exists():
        sys.exit(f"error: there is no {path}: give a notebook or a folder of notebooks")
    rows = grade_folder(path, args.timeout) if path.is_dir() else grade_notebook(path, args.timeout)
    width = max(len(r.submission) for r in rows)
    for r in rows:
        print(f"{r.submission:<{width}}  {r.exercise:<28} {r.status:<14} {r.message[:90]}")
    by_student: dict[str, list[Row]] = {}
    for r in rows:
        by_student.setdefault(r.submission, []).append(r)
    for student, own in by_student.items():
        done = sum(r.status == "passed" for r in own)
        print(f"{student}: {done} of {len(own)} passed")
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["submission", "exercise", "status", "message"])
            writer.writerows([r.submission, r.exercise, r.status, r.message] for r in rows)
        print(f"wrote {args.csv} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
