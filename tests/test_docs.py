"""The code in docs/ runs as written (no internet: Hugging Face snippets run on a local folder)."""
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


def _python_blocks(doc: Path, heading: str) -> list[str]:
    """Every ```python block under a '## heading' of a Markdown file."""
    section = doc.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_attention_viewer_hugging_face_snippets_run_on_a_local_gpt2(tmp_path):
    """The Hugging Face snippets, run on a small random GPT-2 folder instead of the download."""
    import torch

    from llmlab.gpt import GPT, GPTConfig
    from llmlab.hf import save_hf
    from llmlab.tokenizers import BPETokenizer

    tok = BPETokenizer.train("The cat sat on the mat because it was tired. " * 10, 280,
                             special_tokens=["<|endoftext|>"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=6, n_head=2, n_embd=16))
    folder = save_hf(model, tok, tmp_path / "gpt2")
    blocks = _python_blocks(ROOT / "docs" / "attention_viewer.md", "Hugging Face models")
    assert len(blocks) == 2
    namespace = {}
    for code in blocks:
        code = code.replace('"openai-community/gpt2"', repr(str(folder)))
        exec(compile(code, "docs/attention_viewer.md", "exec"), namespace)  # noqa: S102 - our docs
    out, T = namespace["out"], namespace["T"]
    assert len(out.attentions) == 6 and out.attentions[0].shape == (2, 2, T, T)
    assert namespace["pad"].sum() > 0  # the second sequence was padded (on the left)


def test_attention_viewer_export_snippet_runs(tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.chdir(tmp_path)  # the snippet writes ./shakespeare-hf
    code = _python_block(ROOT / "docs" / "attention_viewer.md",
                         "Export a course model to Hugging Face, or load GPT-2 into llmlab")
    namespace = {}
    exec(compile(code, "docs/attention_viewer.md", "exec"), namespace)  # noqa: S102 - our docs
    model, tok = namespace["model"], namespace["tok"]
    printed = capsys.readouterr().out.strip()
    ids = torch.tensor([tok.encode("ROMEO:")])
    assert printed == tok.decode(model.generate(ids, 40, greedy=True)[0].tolist())
    assert namespace["enc"]["input_ids"][0].tolist() == tok.encode("ROMEO:\nBut soft")
    with torch.no_grad():
        ours = model(namespace["enc"]["input_ids"], return_attention=True)
    assert (ours.logits - namespace["out"].logits).abs().max() <= 1e-5
    assert (ours.attention[:, 0] - torch.stack(namespace["out"].attentions)[:, 0]).abs().max() <= 1e-5
