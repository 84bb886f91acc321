"""The lessons' slides (scripts/notebooks.py slides) in a real, offline Chromium.

For every lesson: the slides are built from the stored notebook, opened from disk with every
non-file request refused and recorded, reveal.js must start from the local copy, show one slide
per heading with the cells below it as vertical slides (the count is checked against the
notebook), load the course's CJK font for Chinese text, render the lesson's own figures, and
log no page error. A screenshot of the title
slide and of the first figure goes to artifacts/slides (or $LLMLAB_SCREENSHOTS_DIR/slides).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """Every lesson's slides, built once into a temporary folder."""
    folder = tmp_path_factory.mktemp("slides")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "slides",
                          str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return folder


def _expected(notebook: Path) -> tuple[int, int]:
    """(horizontal slides, all slides) the notebook should give: headings, and every cell."""
    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if c.source.strip()]
    heads = [c for c in cells if c.cell_type == "markdown"
             and c.source.lstrip().startswith(("# ", "## "))]
    return len(heads), len(cells)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_slides_run_offline_with_one_slide_per_section(notebook, slides, browser):
    shots = Path(os.environ.get("LLMLAB_SCREENSHOTS_DIR") or ROOT / "artifacts") / "slides"
    shots.mkdir(parents=True, exist_ok=True)
    page_file = slides / f"{notebook.stem}.slides.html"
    assert page_file.is_file(), f"no slides for {notebook.name}"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    refused, errors = [], []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else (refused.append(route.request.url), route.abort()))
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function("() => window.Reveal && Reveal.isReady && Reveal.isReady()",
                               timeout=30000)
        horizontal, total = _expected(notebook)
        got = page.evaluate("() => [Reveal.getHorizontalSlides().length, Reveal.getTotalSlides()]")
        assert got == [horizontal, total], (f"{notebook.stem}: {got[0]} slides ({got[1]} in "
                                            f"all), expected {horizontal} ({total})")
        assert page.evaluate("() => document.querySelector('.reveal .slides h1') !== null")
        # Chinese text is drawn with the course's font, shipped next to the slides: a browser
        # loads a web font only when some text on the page needs it, so "loaded" means used.
        if re.search("[\u4e00-\u9fff]", notebook.read_text(encoding="utf-8")):
            for _ in range(2):  # the title slide, then every slide, so all text is laid out
                status = page.evaluate("""async () => { await document.fonts.ready;
                    return [...document.fonts].filter(f => f.family.includes('LLMLab'))
                        .map(f => f.status); }""")
                if "loaded" in status:
                    break
                page.evaluate("() => Reveal.configure({viewDistance: 1000})")
                page.wait_for_timeout(500)
            assert "loaded" in status, f"{notebook.stem}: Chinese text without the CJK font {status}"
        page.screenshot(path=str(shots / f"{notebook.stem}-title.png"))
        figures = page.evaluate("""() => [...document.querySelectorAll('.reveal img')]
            .filter(i => i.src.startsWith('data:image/png')).length""")
        assert figures >= 1, f"{notebook.stem}: no figure on the slides"
        # Go to the first figure's slide: it must be drawn (a decoded image of real size).
        size = page.evaluate("""() => {
            const img = [...document.querySelectorAll('.reveal img')]
                .find(i => i.src.startsWith('data:image/png'));
            const section = img.closest('section');
            const idx = Reveal.getIndices(section);
            Reveal.slide(idx.h, idx.v);
            return [img.naturalWidth, img.naturalHeight]; }""")
        assert size[0] > 100 and size[1] > 100, f"{notebook.stem}: the figure is {size}"
        page.wait_for_timeout(300)  # reveal's transition
        page.screenshot(path=str(shots / f"{notebook.stem}-figure.png"))
        assert not refused, f"{notebook.stem}: the slides asked the network for {refused[:5]}"
        assert not errors, f"{notebook.stem}: page errors {errors[:3]}"
    finally:
        context.close()
