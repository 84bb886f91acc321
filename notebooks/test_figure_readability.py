"""Every figure the lessons draw is readable where the notebook shows it (issue 17's checks).

nbval runs each lesson first (notebooks/*.ipynb sort before this file), and notebooks/conftest.py
has every kernel audit each figure as it is rendered, static figures and widget pictures alike:
text at least 10 px on screen in a 1000 px output area, no two labels colliding, no legend on
data or on a title (tests/_figure_audit.py). Problems already known are listed, per lesson and
cell, in figure_readability_known.json: the test fails on any new problem, and on a known one
that is gone (so the list only shrinks: delete the entry).
"""
import json
import os
import re
from pathlib import Path

import pytest

KNOWN = Path(__file__).with_name("figure_readability_known.json")
LESSONS = sorted(p.stem for p in Path(__file__).parent.glob("[0-9][0-9]_*.ipynb"))


def read_report() -> list[dict]:
    """Every figure audited in this session (notebooks/conftest.py names the file)."""
    report = Path(os.environ.get("LLMLAB_FIGURE_REPORT", "/nonexistent"))
    if not report.exists():
        return []
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines() if line]


def kind(problem: str) -> str:
    """A problem without its numbers and labels: what went wrong, not where exactly."""
    if re.match(r"text .* px on screen", problem):
        return "text under 10 px"
    if re.match(r"texts .* overlap", problem):
        return "labels overlap"
    if problem.startswith("the legend covers"):
        return "legend covers " + ("data" if "data" in problem or "cells" in problem else "text")
    return problem


def found(records) -> dict[str, list[str]]:
    """{"lesson | cell | kind": [an example problem]} for every problem in the report."""
    table: dict[str, list[str]] = {}
    for r in records:
        for problem in r["problems"]:
            table.setdefault(f"{r['notebook']} | {r['cell']} | {kind(problem)}", []).append(problem)
    return table


def test_every_lessons_figures_were_audited():
    records = read_report()
    if not records:
        if os.environ.get("CI"):
            pytest.fail("no figure was audited: run the whole suite (pytest), which runs the "
                        "notebooks before this file")
        pytest.skip("the notebooks did not run in this session (run the whole suite)")
    seen = {r["notebook"] for r in records}
    ran = {n for n in LESSONS if n in seen}
    assert ran, seen
    failed = [r for r in records for p in r["problems"] if p.startswith("the audit failed")]
    assert not failed, failed[:3]


def test_no_new_readability_problems_and_none_fixed_silently():
    records = read_report()
    if not records:
        pytest.skip("the notebooks did not run in this session (see the test above)")
    ran = {r["notebook"] for r in records}
    now = found(records)
    known = {k for k in json.loads(KNOWN.read_text(encoding="utf-8"))["known"]
             if k.split(" | ")[0] in ran}
    new = sorted(set(now) - known)
    gone = sorted(known - set(now))
    assert not new, "new readability problems (fix the figure):\n" + "\n".join(
        f"{k}: {now[k][0]}" for k in new)
    assert not gone, ("fixed, so delete from figure_readability_known.json:\n" + "\n".join(gone))


def test_the_readme_counts_the_known_problems():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    said = re.search(r"the list\s+holds (\d+) known problems", readme)
    known = json.loads(KNOWN.read_text(encoding="utf-8"))["known"]
    assert said and int(said.group(1)) == len(known), "update the README's count"
