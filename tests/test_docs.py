"""The code in docs/ runs as written (the snippets that need no internet or extra packages)."""
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent


def _python_block(doc: Path, heading: str) -> str:
    """The first ```python block under a '## heading' of a Markdown file."""
    text = doc.read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_attention_viewer_mini_gpt_snippet_runs(capsys):
    code = _python_block(ROOT / "docs" / "attention_viewer.md", "The course's mini-GPT")
    namespace = {}
    exec(compile(code, "docs/attention_viewer.md", "exec"), namespace)  # noqa: S102 - our docs
    T = len(namespace["text"])
    assert tuple(namespace["attention"].shape) == (4, 1, 4, T, T)
    assert namespace["explorer"].widget is not None
    assert set(namespace["scores"]) >= {"previous token", "induction"}
    layer, head, score = namespace["top_heads"](namespace["scores"])["previous token"]
    assert f"({layer}, {head}, {score}" in capsys.readouterr().out
    assert score > 0.5  # the shipped model has a previous-token head (lesson 06: layer 0, head 2)
