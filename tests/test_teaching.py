"""Teacher notes (teaching/NN_*.md): one per lesson, the same sections, a timed plan that fits a
60-90 minute session, answered discussion questions, and every exercise's common mistakes."""
import re
import sys
from pathlib import Path

import pytest

from llmlab.classroom import exercises

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import notebooks as build  # noqa: E402  (scripts/notebooks.py)

SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
SECTIONS = ["Goals", "Before class", "Session plan (60–90 minutes)", "Discussion questions",
            "Common mistakes", "When a widget cannot render"]


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_lesson_has_teacher_notes_with_a_plan_answers_and_its_mistakes(src):
    path = ROOT / "teaching" / f"{src.stem}.md"
    assert path.is_file(), f"no teacher notes for {src.stem}: write {path.relative_to(ROOT)}"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# Lesson {src.stem[:2]} ")
    sections = _sections(text)
    assert list(sections) == SECTIONS, f"{path.name}: sections {list(sections)}"
    minutes = [int(m) for m in re.findall(r"^\|\s*(\d+)\s*\|", sections[SECTIONS[2]], re.MULTILINE)]
    assert minutes and 60 <= sum(minutes) <= 90, f"{path.name}: the plan adds up to {sum(minutes)} min"
    answers = re.findall(r"^\s*(?:[-*]\s*)?\**Answer:?\**:?", sections["Discussion questions"],
                         re.MULTILINE)
    assert len(answers) >= 4, f"{path.name}: {len(answers)} answered questions"
    mistakes = sections["Common mistakes"]
    for ex in exercises(build.make_notebook(src)):
        assert f"`{ex.function}" in mistakes, f"{path.name}: no common mistakes for {ex.function}"
