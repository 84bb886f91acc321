"""Build the lesson notebooks from their sources, and time them.

    python scripts/notebooks.py build [NAME ...]   # notebooks/src/*.py -> notebooks/*.ipynb, executed (full mode)
    python scripts/notebooks.py check              # fail if a notebook's cells differ from its source
    python scripts/notebooks.py time               # run every notebook in full and quick mode, update README table
    python scripts/notebooks.py student DIR [NAME ...]    # the versions to hand out: exercises empty, no outputs
    python scripts/notebooks.py solutions DIR [NAME ...]  # every exercise solved (add --execute to run them)
    python scripts/notebooks.py slides DIR [NAME ...]     # reveal.js slides of the stored notebooks, offline

Sources use the "percent" format: a line `# %%` starts a code cell, `# %% [markdown]` a markdown
cell whose lines start with `# `. Cell ids are derived from the notebook name and position, so
rebuilding never churns them. The stored notebooks are executed in full mode, so a reader on
GitHub sees every figure (the static twins of the widgets).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"
README = ROOT / "README.md"
CELL_RE = re.compile(r"^# %%(?P<kind>\s*\[markdown\])?(?P<rest>.*)$")
TABLE_START = "<!-- timings:start -->"
TABLE_END = "<!-- timings:end -->"


def parse_source(path: Path) -> list[tuple[str, str]]:
    """Split a percent-format source into (cell_type, source) pairs."""
    cells: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = CELL_RE.match(line)
        if m:
            cells.append(("markdown" if m.group("kind") else "code", []))
            continue
        if not cells:
            continue  # a module docstring or blank lines before the first cell are ignored
        cells[-1][1].append(line)
    out = []
    for kind, lines in cells:
        if kind == "markdown":
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
        text = "\n".join(lines).strip("\n")
        if text:
            out.append((kind, text))
    return out


def make_notebook(src: Path) -> nbformat.NotebookNode:
    """Create an (unexecuted) notebook from a source file, with stable cell ids."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    stem = src.stem.split("_")[0]
    for i, (kind, text) in enumerate(parse_source(src)):
        new = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = new(text)
        cell["id"] = f"nb{stem}-{i:03d}"
        nb.cells.append(cell)
    return nb


def execute(nb: nbformat.NotebookNode, quick: bool, timeout: int = 900) -> float:
    """Run a notebook in place on a fresh kernel; return the wall time in seconds."""
    env_before = os.environ.get("LLMLAB_QUICK")
    os.environ["LLMLAB_QUICK"] = "1" if quick else "0"
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(NB_DIR)}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0
    finally:
        if env_before is None:
            os.environ.pop("LLMLAB_QUICK", None)
        else:
            os.environ["LLMLAB_QUICK"] = env_before


WIDGET = "application/vnd.jupyter.widget-view+json"
PROGRESS_RE = re.compile(r"^[^|]*\d+%\|")  # tqdm's text: "training:  33%|###3 | 433/1300 ..."


def label_widget_outputs(nb: nbformat.NotebookNode) -> int:
    """Give stored widget outputs a note in place of their repr; return how many were changed.

    A notebook opened from disk is untrusted, so JupyterLab shows a widget output's next type
    instead of the widget: its text/plain, which for a progress bar is its first frame ("0%") and
    for a box its repr ("VBox(children=..."). Explorers bring a picture and a note themselves
    (llmlab.viz._render.LiveWidget); this labels the rest.
    """
    changed = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET not in data or "image/png" in data:
                continue
            text = "".join(data.get("text/plain", ""))
            if text.startswith("[") and text.endswith("]"):
                continue  # already a note
            data["text/plain"] = ("[a progress bar: it runs when you run this cell]"
                                  if PROGRESS_RE.match(text)
                                  else "[a live widget: run this cell to use it]")
            changed += 1
    return changed


def sources(names: list[str]) -> list[Path]:
    """The source files to act on: all of notebooks/src, or those whose name starts with a given prefix."""
    all_src = sorted(SRC_DIR.glob("[0-9][0-9]_*.py"))
    if not names:
        return all_src
    picked = [s for s in all_src if any(s.stem.startswith(n) for n in names)]
    if not picked:
        sys.exit(f"no source in {SRC_DIR} matches {names}")
    return picked


def cmd_build(names: list[str]) -> None:
    """Generate and execute notebooks, writing notebooks/NN_name.ipynb."""
    for src in sources(names):
        nb = make_notebook(src)
        seconds = execute(nb, quick=False)
        label_widget_outputs(nb)
        target = NB_DIR / f"{src.stem}.ipynb"
        nbformat.write(nb, target)
        print(f"built {target.relative_to(ROOT)} in {seconds:.1f} s")


def cmd_check() -> int:
    """Return 1 if any stored notebook's cell sources differ from its source file."""
    bad = 0
    for src in sources([]):
        target = NB_DIR / f"{src.stem}.ipynb"
        if not target.exists():
            print(f"missing {target.relative_to(ROOT)}: run `python scripts/notebooks.py build`")
            bad += 1
            continue
        want = [(c.cell_type, c.source) for c in make_notebook(src).cells]
        have = [(c.cell_type, c.source) for c in nbformat.read(target, as_version=4).cells]
        if want != have:
            print(f"{target.relative_to(ROOT)} is out of date with {src.relative_to(ROOT)}: rebuild it")
            bad += 1
    return 1 if bad else 0


def cmd_version(kind: str, folder: Path, names: list[str], run: bool) -> None:
    """Write the student or the solution version of each lesson into folder (made from its source)."""
    from llmlab.classroom import solution_version, student_version

    folder.mkdir(parents=True, exist_ok=True)
    for src in sources(names):
        nb = make_notebook(src)
        nb = student_version(nb) if kind == "student" else solution_version(nb, src.stem, ROOT)
        if run:
            execute(nb, quick=os.environ.get("LLMLAB_QUICK") == "1")
        target = folder / f"{src.stem}.ipynb"
        nbformat.write(nb, target)
        print(f"wrote {target}")


def reveal_assets() -> Path:
    """reveal.js's files, as installed by `make setup` (the sphinx-revealjs wheel ships them)."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx_revealjs")  # found, not imported: sphinx is not installed
    if spec is None or not spec.submodule_search_locations:
        sys.exit("reveal.js is missing: run `make setup` (it installs sphinx-revealjs, which ships it)")
    return Path(list(spec.submodule_search_locations)[0]) / "_static" / "revealjs"


# nbconvert's template starts reveal.js through require.js, jQuery and MathJax 2, all from CDNs;
# these slides load reveal.js's own files, from the copy next to them, and nothing else.
_REVEAL_START = """<script src="reveal.js/dist/reveal.js"></script>
<script src="reveal.js/plugin/notes/notes.js"></script>
<style>
@font-face { font-family: "LLMLab Sans SC"; src: url("fonts/LLMLabSansSC-Regular.otf"); }
:root { --jp-content-font-family: system-ui, Helvetica, Arial, sans-serif, "LLMLab Sans SC";
        --jp-ui-font-family: system-ui, Helvetica, Arial, sans-serif, "LLMLab Sans SC";
        --jp-code-font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace, "LLMLab Sans SC"; }
.reveal { font-family: "Source Sans Pro", Helvetica, sans-serif, "LLMLab Sans SC"; }
.reveal .slides section { overflow-y: auto; max-height: 100%; }
</style>
<script>
Reveal.initialize({controls: true, progress: true, history: true, transition: "slide",
                   slideNumber: "c/t", plugins: [RevealNotes], width: 1280, height: 800,
                   center: false});
</script>
"""


def _local_reveal(html: str) -> str:
    """The exported slides with the CDN loader replaced by reveal.js from the local copy."""
    start = html.index("<script>\nrequire(")
    end = html.index("</script>", start) + len("</script>")
    html = html[:start] + _REVEAL_START + html[end:]
    html = re.sub(r'<script type="module">\s*import mermaid from \'\';.*?</script>', "", html,
                  flags=re.S)  # no diagrams in the lessons, and its library is a CDN's
    return html.replace('<script src=""></script>', "")  # the switched-off CDN scripts


def cmd_slides(folder: Path, names: list[str]) -> None:
    """Write NN_name.slides.html for each stored (executed) notebook, with reveal.js beside them."""
    import shutil

    from nbconvert import SlidesExporter

    from llmlab.classroom import slides_version

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "reveal.js").exists():  # a local copy: the projector machine may be offline
        shutil.copytree(reveal_assets(), folder / "reveal.js", ignore=shutil.ignore_patterns("*.map"))
    # The course's CJK font, for Chinese text on the slides (the figures have it already).
    (folder / "fonts").mkdir(exist_ok=True)
    for name in ("LLMLabSansSC-Regular.otf", "OFL.txt"):
        shutil.copy2(ROOT / "data" / "fonts" / name, folder / "fonts" / name)
    # Every URL the template would fetch from a CDN is switched off or made local.
    exporter = SlidesExporter(reveal_url_prefix="reveal.js", reveal_theme="white", mathjax_url="",
                              require_js_url="", jquery_url="", font_awesome_url="",
                              widget_renderer_url="", jupyter_widgets_base_url="",
                              mermaid_js_url="", mermaid_layout_elk_js_url="")
    for src in sources(names):
        stored = NB_DIR / f"{src.stem}.ipynb"
        html, _ = exporter.from_notebook_node(slides_version(nbformat.read(stored, as_version=4)))
        html = _local_reveal(html)
        target = folder / f"{src.stem}.slides.html"
        target.write_text(html, encoding="utf-8")
        print(f"wrote {target}")


def hardware() -> str:
    """A one-line description of this machine's CPU."""
    from llmlab import cpu_name

    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def cmd_time(names: list[str]) -> None:
    """Time every notebook in full and quick mode and write the README table."""
    rows = []
    for src in sources(names):
        full = execute(make_notebook(src), quick=False)
        quick = execute(make_notebook(src), quick=True)
        rows.append(f"| `{src.stem}.ipynb` | {full:.0f} s | {quick:.0f} s |")
        print(rows[-1], flush=True)
    table = "\n".join([
        TABLE_START,
        f"Measured by `python scripts/notebooks.py time` on {hardware()}:",
        "",
        "| notebook | full mode | quick mode (`LLMLAB_QUICK=1`) |",
        "| --- | ---: | ---: |",
        *rows,
        TABLE_END,
    ])
    text = README.read_text(encoding="utf-8")
    if TABLE_START in text and TABLE_END in text:
        head, rest = text.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        README.write_text(head + table + tail, encoding="utf-8")
        print("README timings table updated")
    else:
        print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "check", "time", "student", "solutions",
                                            "slides"])
    parser.add_argument("names", nargs="*", help="notebook name prefixes, e.g. 01 02 (default: "
                        "all); for student and solutions, the output folder first")
    parser.add_argument("--execute", action="store_true", help="student/solutions: also run each "
                        "version (quick mode with LLMLAB_QUICK=1), so a reader sees its outputs")
    args = parser.parse_args()
    if args.command == "slides":
        if not args.names:
            parser.error("slides needs an output folder, e.g. slides/")
        cmd_slides(Path(args.names[0]), args.names[1:])
    elif args.command in ("student", "solutions"):
        if not args.names:
            parser.error(f"{args.command} needs an output folder, e.g. handout/")
        cmd_version(args.command, Path(args.names[0]), args.names[1:], args.execute)
    elif args.command == "build":
        cmd_build(args.names)
    elif args.command == "check":
        return cmd_check()
    else:
        cmd_time(args.names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
