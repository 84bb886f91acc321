"""Notebook runs (nbval): every figure a lesson draws is audited, in its own kernel, as it is shown.

An IPython startup file (in a private IPYTHONDIR) wraps matplotlib's print_figure in each kernel,
the one call every shown figure goes through: the inline backend, a CourseFigure's PNG and every
widget picture (llmlab.viz._render.figure_to_png). AttentionExplorer blits its frames instead,
so its redraw is wrapped as soon as a lesson imports it. One JSON line per figure holds the problems
tests/_figure_audit.py finds; notebooks/test_figure_readability.py reads them.
"""
import os
import tempfile
from pathlib import Path

_DIR = Path(tempfile.mkdtemp(prefix="llmlab-figures-"))
REPORT = _DIR / "report.jsonl"     # one line per figure shown
CURRENT = _DIR / "notebook.txt"    # the notebook nbval is running (the kernel cannot know it)
_TESTS = Path(__file__).resolve().parent.parent / "tests"

_STARTUP = '''
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from _figure_audit import audit
from matplotlib.backend_bases import FigureCanvasBase

_cell = {{"source": ""}}
get_ipython().events.register("pre_run_cell", lambda info: _cell.update(source=info.raw_cell))
_print_figure = FigureCanvasBase.print_figure


def _record(fig, dpi, width=None):
    """Write down what a learner would find hard to read in fig, shown at dpi (width px if trimmed)."""
    current = Path({current!r})
    if not current.exists():
        return
    try:
        problems = audit(fig, dpi, width)
    except Exception as e:  # the audit must never break a lesson
        problems = [f"the audit failed: {{type(e).__name__}}: {{e}}"]
    lines = [l for l in _cell["source"].splitlines() if l.strip() and not l.startswith("#")]
    with open({report!r}, "a", encoding="utf-8") as f:
        f.write(json.dumps({{"notebook": current.read_text().strip(),
                             "cell": lines[-1][:80] if lines else "",
                             "problems": problems}}) + "\\n")


def _audited(self, filename, *args, **kwargs):
    """print_figure, after auditing the figure it prints."""
    fig = self.figure
    dpi = kwargs.get("dpi") or fig.dpi
    dpi = fig.dpi if dpi == "figure" else dpi
    width = None
    if kwargs.get("bbox_inches") == "tight":  # the inline backend trims the margins
        try:
            fig.canvas.draw()
            width = fig.get_tightbbox(fig.canvas.get_renderer()).width * dpi
        except Exception:
            pass
    _record(fig, dpi, width)
    return _print_figure(self, filename, *args, **kwargs)


def _audit_blitted_frames():
    """Audit AttentionExplorer's frames too: it blits to its canvas, never calling print_figure."""
    explorers = sys.modules.get("llmlab.viz.attention")
    cls = getattr(explorers, "AttentionExplorer", None)
    if cls is None or getattr(cls.redraw, "audited", False):
        return
    redraw = cls.redraw

    def audited(self):
        redraw(self)
        fig = self.current_figure
        # Blitted artists are animated, which a full draw skips: show them for the audit.
        animated = [a for a in fig.findobj() if a.get_animated()]
        for a in animated:
            a.set_animated(False)
        try:
            _record(fig, self.dpi)
        finally:
            for a in animated:
                a.set_animated(True)

    audited.audited = True
    cls.redraw = audited


get_ipython().events.register("pre_run_cell", lambda info: _audit_blitted_frames())
get_ipython().events.register("post_run_cell", lambda result: _audit_blitted_frames())
FigureCanvasBase.print_figure = _audited
'''

_startup_dir = _DIR / "ipython" / "profile_default" / "startup"
_startup_dir.mkdir(parents=True)
_startup = _STARTUP.format(tests=str(_TESTS), current=str(CURRENT), report=str(REPORT))
compile(_startup, "00-llmlab-figure-audit.py", "exec")  # a kernel would only print a SyntaxError
(_startup_dir / "00-llmlab-figure-audit.py").write_text(_startup, encoding="utf-8")
os.environ["IPYTHONDIR"] = str(_DIR / "ipython")
os.environ["LLMLAB_FIGURE_REPORT"] = str(REPORT)


def pytest_runtest_setup(item):
    """Tell the kernels which lesson is running (nbval runs one notebook's cells in order)."""
    if str(item.fspath).endswith(".ipynb"):
        CURRENT.write_text(Path(str(item.fspath)).stem, encoding="utf-8")

