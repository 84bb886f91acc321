"""Every lesson, run in a real JupyterLab in a real (headless) browser, offline.

For each notebook in notebooks/ (a fresh copy each, on a fresh kernel in quick mode):

1. open it, wait for an idle kernel, clear all outputs, "Run All Cells", wait until every code
   cell has an execution count and the kernel is idle;
2. assert: no error output and no traceback in any cell; the page shows no "Error displaying
   widget" / "Loading widget" / "Model not found"; every widget output of the notebook model is
   rendered as a live widget view (counted in the model, compared with the DOM);
3. drive the lesson's main widget (MANIFEST below) through the DOM like a learner: what it shows
   (the picture of an `ipywidgets.Image`, or the text of an `ipywidgets.HTML`) must change, and
   the kernel must hold the new control value;
   screenshots before and after go to artifacts/screenshots (or $LLMLAB_SCREENSHOTS_DIR);
4. "Restart Kernel and Run All Cells" (the dialog accepted like a learner would): the same checks
   again, and every `# NBVAL_CHECK_OUTPUT` cell prints exactly what it printed the first time.
   To keep CI within its time budget this runs for the lessons in RESTART_LESSONS (the four
   quickest lessons) unless LLMLAB_BROWSER_RESTART=all;
   every lesson still runs on a fresh kernel here and again under nbval;
5. no browser console errors and no uncaught page errors during all of it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the chromium_path fixture skips (fails when CI=true) with the reason
    PlaywrightTimeout = TimeoutError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TIMEOUT_MS = int(os.environ.get("LLMLAB_BROWSER_TIMEOUT_S", "900")) * 1000  # one run-all
# The last two are matplotlib's and llmlab's warnings for characters drawn as empty boxes: CJK
# labels (lessons 01 and 10) must find a font, the course's own (data/fonts/) if no other.
BAD_TEXT = ("Error displaying widget", "Loading widget", "Model not found", "Traceback",
            "missing from font", "show as empty boxes")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Interaction:
    """How a learner changes a lesson's main widget, and what the kernel must then hold.

    `variable` holds the explorer object (with `.widget`, its top container); `control` names
    the attribute holding the ipywidgets control, found in the page by its description label.
    `action` is one of: "arrow_right" (press ArrowRight `times` on the slider's handle),
    "select" (choose option number `option` of the <select>), "click" (toggle the checkbox),
    "type" (type `text` into the text/combobox input and press Enter). `then_click` names a
    button to press afterwards (e.g. "Generate"). `shows` is what must change: "image" (the
    widget's picture) or "html" (the text of its last HTML output).
    """

    variable: str
    control: str
    action: str
    expected: object          # the control's value in the kernel afterwards
    times: int = 1
    option: int = 0
    text: str = ""
    then_click: str = ""
    shows: str = "image"


# One entry per lesson; None for a lesson without a widget (it still runs twice and is checked).
# A new lesson without an entry fails the test below, so no lesson escapes the browser check.
MANIFEST: dict[str, Interaction | None] = {
    "01_tokens_and_embeddings": Interaction("explorer", "word", "type", "brother", text="brother"),
    "02_predicting_the_next_token": Interaction("explorer", "top_k", "arrow_right", 1, times=1),
    "03_scaled_dot_product_attention": Interaction("playground", "causal", "click", True),
    "04_multi_head_attention": Interaction("explorer", "query", "select", 0, option=0),
    "05_the_transformer_block": None,  # no widget: experiments and figures only
    "06_mini_gpt": Interaction("explorer", "seed", "type", 7, text="7", then_click="Generate",
                               shows="html"),
    # lesson 07's SentimentExplorer: choose the first layer's attention (it opens on the last).
    "07_finetuning_for_sentiment": Interaction("explorer", "layer", "select", 0, option=0),
    # lesson 08's AlignmentExplorer: type a new date; the output and its cross-attention redraw.
    "08_encoder_decoder_and_cross_attention": Interaction(
        "explorer", "source", "type", "the 1st of june 1999", text="the 1st of june 1999"),
    # lesson 09's AttentionExplorer on Hugging Face's attention: choose the first query character.
    "09_inside_and_beyond": Interaction("explorer", "query", "select", 0, option=0),
    # lesson 10's AttentionExplorer on a Chinese poem: choose the first query character; the
    # labels are drawn with the course's CJK font (checked for empty boxes below).
    "10_your_own_gpt": Interaction("explorer", "query", "select", 0, option=0),
}

# Step 4 (restart and run all) for these lessons, or for all with LLMLAB_BROWSER_RESTART=all: it
# tests JupyterLab's restart path and the determinism of NBVAL_CHECK_OUTPUT cells, which do not
# depend on the lesson, while each run costs a whole quick-mode execution (minutes for 07-10).
RESTART_LESSONS = {"02_predicting_the_next_token", "03_scaled_dot_product_attention",
                   "04_multi_head_attention", "05_the_transformer_block"}

# ---------------------------------------------------------------------------------------------
# JavaScript run in the page. `NB` finds the notebook panel of a path among the open documents.
NB = """const nb = [...window.jupyterapp.shell.widgets('main')].find(
            w => w.context && w.context.path === path && w.content && w.sessionContext);"""

JS_KERNEL_IDLE = f"""(path) => {{ {NB}
    const k = nb && nb.context.isReady && nb.sessionContext.session &&
              nb.sessionContext.session.kernel;
    return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }}"""

# Start a command without awaiting it here; its result lands in window.__llmlab_done.
JS_START_COMMAND = f"""([path, command]) => {{ {NB}
    window.jupyterapp.shell.activateById(nb.id);
    window.__llmlab_done = null;
    window.jupyterapp.commands.execute(command).then(
        r => {{ window.__llmlab_done = {{ok: r}}; }},
        e => {{ window.__llmlab_done = {{error: String(e)}}; }});
    return true; }}"""

JS_RUN_FINISHED = f"""(path) => {{ {NB}
    const k = nb.sessionContext.session && nb.sessionContext.session.kernel;
    return window.__llmlab_done !== null && !!k && k.status === 'idle'; }}"""

# The output nodes of the widget outputs in the notebook model, in order. (JupyterLab gives a
# widget view's node no data-mime-type, so the model's outputs are mapped to their DOM children.)
WIDGET_NODES = f"""const widgetNodes = () => {{ const found = [];
    for (const cell of nb.content.widgets) {{
        if (cell.model.type !== 'code') continue;
        const area = cell.outputArea;
        for (let i = 0; i < area.model.length; i++) {{
            const data = area.model.get(i).data['{WIDGET_MIME}'];
            if (!data) continue;
            const child = area.widgets[i];
            found.push({{modelId: data.model_id,
                         node: child ? child.node.querySelector('.jp-OutputArea-output') : null}});
        }} }}
    return found; }};"""

# Everything the assertions need about the notebook, from the models and from the DOM.
JS_REPORT = f"""(path) => {{ {NB} {WIDGET_NODES}
    const text = t => Array.isArray(t) ? t.join('') : (t || '');
    const cells = [];
    nb.content.widgets.forEach((cell, index) => {{
        if (cell.model.type !== 'code') return;
        const outputs = cell.model.outputs.toJSON().map(o => ({{
            type: o.output_type, name: o.name || null,
            text: o.output_type === 'stream' ? text(o.text)
                  : (o.data && o.data['text/plain'] ? text(o.data['text/plain']) : ''),
            ename: o.ename || null, evalue: o.evalue || null,
            traceback: o.traceback ? o.traceback.join('\\n') : null,
            widget: o.data && o.data['{WIDGET_MIME}'] ? o.data['{WIDGET_MIME}'].model_id : null,
        }}));
        cells.push({{index, count: cell.model.executionCount,
                     source: cell.model.sharedModel.getSource(), outputs}});
    }});
    const views = widgetNodes().map(({{modelId, node}}) => {{
        if (!node) return {{modelId, live: false, controls: 0, height: 0, text: 'no DOM node'}};
        const r = node.getBoundingClientRect();
        return {{modelId, live: !!node.querySelector(':scope > .jupyter-widgets'),
                 controls: node.querySelectorAll(
                     'input, select, button, img, .widget-html-content, .progress-bar').length,
                 height: r.height, text: node.innerText.slice(0, 200)}}; }});
    const liveRoots = nb.content.node.querySelectorAll(
        '.jp-OutputArea-output > .jupyter-widgets').length;
    const outputText = [...nb.content.node.querySelectorAll('.jp-OutputArea')]
        .map(n => n.innerText).join('\\n');
    const stderrTracebacks = [...nb.content.node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
        .filter(n => n.innerText.includes('Traceback')).map(n => n.innerText.slice(0, 500));
    return {{cells, views, liveRoots, outputText, stderrTracebacks}}; }}"""

# Before the first run (the notebook as opened from disk, untrusted): what the outputs show.
JS_BEFORE_RUN = f"""(path) => {{ {NB}
    const outs = [...nb.content.node.querySelectorAll('.jp-OutputArea-output')];
    return {{reprs: outs.map(n => n.textContent).filter(t => /children=|^[^|]*\\d+%\\|/.test(t))
                       .map(t => t.slice(0, 120)),
             width: Math.max(0, ...outs.map(n => n.getBoundingClientRect().width))}}; }}"""

# Widget pictures drawn wider than their pixels (a VBox stretches its children by default).
JS_STRETCHED = f"""(path) => {{ {NB}
    return [...nb.content.node.querySelectorAll('img.widget-image')]
        .filter(img => img.naturalWidth && img.getBoundingClientRect().width > img.naturalWidth + 1)
        .map(img => `${{img.naturalWidth}} px shown ${{Math.round(img.getBoundingClientRect().width)}} px`); }}"""

JS_WIDGETS_SETTLED = f"""(path) => {{ {NB} {WIDGET_NODES}
    return widgetNodes().every(({{node}}) => node && node.querySelector(':scope > .jupyter-widgets')
        && !node.innerText.includes('Loading widget')); }}"""

# Ask the kernel for Python expressions (user_expressions: nothing runs, nothing is recorded).
JS_KERNEL_EVAL = f"""async ([path, expressions]) => {{ {NB}
    const k = nb.sessionContext.session.kernel;
    const f = k.requestExecute({{code: '', silent: true, store_history: false,
                                user_expressions: expressions}});
    let result = null;
    f.onReply = msg => {{ result = msg.content.user_expressions; }};
    await f.done;
    return result; }}"""

# Tag the DOM node of the output showing the widget with this model id (the explorer's .widget).
JS_MARK_VIEW = f"""([path, modelId]) => {{ {NB} {WIDGET_NODES}
    const hit = widgetNodes().find(w => w.modelId === modelId && w.node);
    if (hit) hit.node.setAttribute('data-llmlab-main', modelId);
    return !!hit; }}"""

# Tag the control whose description label reads `description`, inside the main view.
JS_MARK_CONTROL = """([modelId, description]) => {
    const view = document.querySelector(`[data-llmlab-main="${modelId}"]`);
    for (const el of view.querySelectorAll('.widget-inline-hbox, .widget-checkbox')) {
        const labels = [...el.querySelectorAll(
            ':scope > .widget-label, :scope .widget-label-basic span')];
        if (labels.some(l => l.textContent.trim() === description)) {
            el.setAttribute('data-llmlab-control', '1');
            return true; } }
    return false; }"""

# What the main view shows: its picture, or the text of its last HTML output (generated text).
JS_SHOWN = """([modelId, shows]) => {
    const view = document.querySelector(`[data-llmlab-main="${modelId}"]`);
    if (!view) return null;
    if (shows === 'html') {
        const boxes = view.querySelectorAll('.widget-html-content');
        const box = boxes[boxes.length - 1];
        return box ? {key: box.innerHTML, ready: box.innerText.trim().length > 0,
                      width: box.offsetWidth, height: box.offsetHeight} : null; }
    const img = view.querySelector('img.widget-image');
    return img ? {key: img.getAttribute('src'), ready: img.complete && img.naturalWidth > 0,
                  width: img.naturalWidth, height: img.naturalHeight} : null; }"""

JS_SHOWN_CHANGED = f"""([modelId, shows, old]) => {{
    const now = ({JS_SHOWN})([modelId, shows]);
    return !!now && now.ready && now.key !== old; }}"""


# ---------------------------------------------------------------------------------------------
def _kernel_eval(page, path, **expressions):
    """Evaluate Python expressions in the notebook's kernel; return their values (literal_eval)."""
    reply = page.evaluate(JS_KERNEL_EVAL, [path, expressions])
    values = {}
    for name, result in reply.items():
        if result["status"] != "ok":
            raise AssertionError(f"kernel could not evaluate {expressions[name]!r}: "
                                 f"{result.get('ename')}: {result.get('evalue')}")
        text = result["data"]["text/plain"]
        try:
            values[name] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            values[name] = text
    return values


def _run(page, path, command, accept_dialog=False):
    """Run a notebook command (run-all / restart-run-all) to completion; return seconds taken."""
    page.evaluate(JS_START_COMMAND, [path, "notebook:clear-all-cell-outputs"])
    page.wait_for_function("() => window.__llmlab_done !== null", timeout=30000)
    t0 = time.monotonic()
    page.evaluate(JS_START_COMMAND, [path, command])
    if accept_dialog:  # "Restart Kernel?": click the accept button, as a learner would
        page.locator(".jp-Dialog .jp-mod-accept").click(timeout=30000)
    page.wait_for_function(JS_RUN_FINISHED, arg=path, timeout=TIMEOUT_MS, polling=250)
    seconds = time.monotonic() - t0
    done = page.evaluate("() => window.__llmlab_done")
    assert "error" not in done, f"{command} failed in the page: {done['error']}"
    return seconds, done.get("ok")


def _check_run(page, path, label):
    """Assert that a finished run left no errors, and every widget output is a live view."""
    try:
        page.wait_for_function(JS_WIDGETS_SETTLED, arg=path, timeout=60000, polling=250)
    except Exception:  # noqa: BLE001 - the report below says what is missing
        pass
    report = page.evaluate(JS_REPORT, path)
    problems = []
    for cell in report["cells"]:
        first_line = cell["source"].strip().splitlines()[0][:60] if cell["source"].strip() else ""
        where = f"{label}: cell {cell['index']} ({first_line!r})"
        if cell["source"].strip() and cell["count"] is None:
            problems.append(f"{where} did not run")
        for out in cell["outputs"]:
            if out["type"] == "error":
                tb = ANSI.sub("", out["traceback"] or "")[-1500:]
                problems.append(f"{where} raised {out['ename']}: {out['evalue']}\n{tb}")
            elif out["name"] == "stderr" and "Traceback" in out["text"]:
                problems.append(f"{where} printed a traceback:\n{out['text'][-1500:]}")
    problems += [f"{label}: stderr traceback in the page: {t}" for t in report["stderrTracebacks"]]
    for bad in BAD_TEXT:
        if bad in report["outputText"]:
            i = report["outputText"].index(bad)
            problems.append(f"{label}: the page shows {bad!r}: "
                            f"...{report['outputText'][max(0, i - 200):i + 300]}...")
    expected = [o["widget"] for c in report["cells"] for o in c["outputs"] if o["widget"]]
    views = report["views"]
    if not len(views) == len(expected) == report["liveRoots"]:
        problems.append(f"{label}: the notebook has {len(expected)} widget outputs but the page "
                        f"shows {report['liveRoots']} live widget views")
    for n, view in enumerate(views):
        if not (view["live"] and view["controls"] and view["height"] > 0):
            problems.append(f"{label}: widget view {n} is not a live widget: {view}")
    return report, problems


def _check_outputs(report):
    """The text printed by each `# NBVAL_CHECK_OUTPUT` cell, by cell index."""
    return {c["index"]: [o["text"] for o in c["outputs"] if o["text"]]
            for c in report["cells"] if c["source"].lstrip().startswith("# NBVAL_CHECK_OUTPUT")}


def _interact(page, path, stem, spec: Interaction, shots: Path, timings: dict):
    """Change the main widget's control through the DOM; check the view and the kernel follow."""
    var, ctrl = spec.variable, f"{spec.variable}.{spec.control}"
    info = _kernel_eval(page, path, model_id=f"{var}.widget.model_id",
                        description=f"{ctrl}.description", value=f"{ctrl}.value")
    assert info["value"] != spec.expected, (
        f"{ctrl} already holds {spec.expected!r}; pick another value in MANIFEST")
    model_id = info["model_id"]
    assert page.evaluate(JS_MARK_VIEW, [path, model_id]), (
        f"no output of the notebook shows {var}.widget (model {model_id}): display it")
    view = page.locator(f'[data-llmlab-main="{model_id}"]')
    view.scroll_into_view_if_needed()
    shown = [model_id, spec.shows]
    page.wait_for_function(f"(a) => ({JS_SHOWN})(a) && ({JS_SHOWN})(a).ready", arg=shown,
                           timeout=60000)
    before = page.evaluate(JS_SHOWN, shown)
    assert before["width"] > 50 and before["height"] > 20, f"the {spec.shows} is tiny: {before}"
    assert page.evaluate(JS_MARK_CONTROL, [model_id, info["description"]]), (
        f"no control labelled {info['description']!r} ({ctrl}) inside {var}.widget")
    control = view.locator("[data-llmlab-control]")
    view.screenshot(path=str(shots / f"{stem}-before.png"))

    t0 = time.monotonic()
    if spec.action == "arrow_right":
        handle = control.locator(".noUi-handle").first
        handle.focus()
        for _ in range(spec.times):
            handle.press("ArrowRight")
    elif spec.action == "select":
        control.locator("select").select_option(index=spec.option)
    elif spec.action == "click":
        control.locator("input[type=checkbox]").click()
    elif spec.action == "type":
        box = control.locator("input").first
        box.fill(spec.text)
        box.press("Enter")
    else:
        raise ValueError(f"unknown action {spec.action!r} in MANIFEST")
    if spec.then_click:
        view.get_by_role("button", name=spec.then_click).click()
    try:
        page.wait_for_function(JS_SHOWN_CHANGED, arg=[*shown, before["key"]], timeout=60000,
                               polling=50)
        changed = True
    except PlaywrightTimeout:
        changed = False
    timings["interaction_s"] = round(time.monotonic() - t0, 2)
    deadline = time.monotonic() + 30  # several key presses: the picture follows the first one
    while True:
        after = _kernel_eval(page, path, value=f"{ctrl}.value")["value"]
        if after == spec.expected or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after == spec.expected, f"kernel has {ctrl} = {after!r}, expected {spec.expected!r}"
    clicked = f" and a click on {spec.then_click!r}" if spec.then_click else ""
    assert changed, (f"the {spec.shows} of {var}.widget did not change within 60 s after "
                     f"{spec.action} on {ctrl}{clicked} (the kernel does hold {ctrl} = {after!r})")
    # Not a failure, but worth knowing for the widget's author: controls or picture reaching past
    # the right edge of the output area (clipped or scrolled) in a 1280 px window.
    overflow = view.evaluate("""n => { const edge = n.getBoundingClientRect().right;
        const over = [...n.querySelectorAll('*')].filter(e => e.getClientRects().length)
            .map(e => e.getBoundingClientRect().right - edge);
        return Math.round(Math.max(0, ...over)); }""")
    if overflow > 1:
        timings["overflow_px"] = overflow
        print(f"\n[{stem}] note: part of {var}.widget lies {overflow} px beyond the right edge "
              "of the notebook in a 1280 px window (file browser open)")
    view.screenshot(path=str(shots / f"{stem}-after.png"))


def _save_failure(page, jupyterlab, stem):
    """Keep a full-page screenshot, the console and the server log for a failed lesson."""
    out = ROOT / "artifacts" / "browser-failures"
    out.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(out / f"{stem}.png"), full_page=True, timeout=30000)
    except Exception:  # noqa: BLE001 - best effort: the test's own error is what matters
        pass
    (out / f"{stem}.console.txt").write_text("\n".join(page.console_errors))
    (out / f"{stem}.jupyterlab.log").write_text(jupyterlab.log()[-20000:])
    print(f"\n[{stem}] failure artifacts in {out}")


# ---------------------------------------------------------------------------------------------
@pytest.fixture
def page(browser):
    """A fresh browser context and page, collecting console errors and uncaught page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(
        f"console.error: {m.text} @ {m.location.get('url', '')}"))
    page.on("pageerror", lambda e: page.console_errors.append(f"pageerror: {e}"))
    yield page
    context.close()


def _unexpected(console_errors):
    """Console errors, minus well-understood benign noise (each filter says why)."""
    benign = [
        # (none needed so far; add (regex, reason) pairs here, each with a comment)
    ]
    return [e for e in console_errors if not any(re.search(rx, e) for rx, _ in benign)]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_runs_and_its_widget_responds(notebook, jupyterlab, page, screenshot_dir):
    stem = notebook.stem
    assert stem in MANIFEST, (
        f"{notebook.name} has no entry in MANIFEST ({__file__}): add one naming the variable "
        "holding its main widget and the control a learner changes (None: no widget)")
    spec = MANIFEST[stem]
    folder = f"{stem}-{secrets.token_hex(3)}"           # a fresh copy: nothing carried over
    (jupyterlab.root / folder).mkdir()
    shutil.copy2(notebook, jupyterlab.root / folder / notebook.name)
    path = f"{folder}/{notebook.name}"
    timings = jupyterlab.timings.setdefault(stem, {})
    try:
        t0 = time.monotonic()
        page.goto(jupyterlab.lab_url(path, workspace=folder), wait_until="domcontentloaded")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell",
                               timeout=120000)
        page.wait_for_function(JS_KERNEL_IDLE, arg=path, timeout=120000, polling=250)
        timings["open_to_idle_kernel_s"] = round(time.monotonic() - t0, 2)
        kernel = _kernel_eval(page, path, pid="__import__('os').getpid()",
                              quick="__import__('os').environ.get('LLMLAB_QUICK')",
                              guard="__import__('llmlab_netguard').installed()",
                              prefix="__import__('sys').prefix")
        jupyterlab.kernel_pids.add(kernel["pid"])
        assert kernel["quick"] == "1", "the kernel does not run in quick mode"
        assert kernel["guard"] is True, "the offline guard is not active in the kernel"
        assert Path(kernel["prefix"]).resolve() == Path(sys.prefix).resolve(), (
            f"the kernel runs {kernel['prefix']}, not this environment")

        # 0. before the first run: pictures and notes, never a widget's repr or a 0 % bar
        before = page.evaluate(JS_BEFORE_RUN, path)
        timings["output_width_px"] = round(before["width"])
        assert not before["reprs"], f"before the first run the lesson shows {before['reprs'][:3]}"

        # 1-2. run all on a fresh kernel
        seconds, ok = _run(page, path, "notebook:run-all-cells")
        timings["run_all_s"] = round(seconds, 1)
        first, problems = _check_run(page, path, "run all")
        assert not problems, "\n\n".join(problems)
        assert ok is True, "Run All Cells reported a failure"

        # 3. the main widget responds
        if spec is not None:
            _interact(page, path, stem, spec, screenshot_dir, timings)

        stretched = page.evaluate(JS_STRETCHED, path)
        assert not stretched, f"widget pictures stretched (blurred): {stretched}"

        # 4. restart the kernel and run all again (RESTART_LESSONS, or all on request)
        if stem in RESTART_LESSONS or os.environ.get("LLMLAB_BROWSER_RESTART") == "all":
            seconds, ok = _run(page, path, "notebook:restart-run-all", accept_dialog=True)
            timings["restart_run_all_s"] = round(seconds, 1)
            second, problems = _check_run(page, path, "restart and run all")
            new_pid = _kernel_eval(page, path, pid="__import__('os').getpid()")["pid"]
            jupyterlab.kernel_pids.add(new_pid)
            assert new_pid != kernel["pid"], "the kernel was not restarted"
            assert not problems, "\n\n".join(problems)
            assert ok is True, "Restart Kernel and Run All Cells reported a failure"
            before, after = _check_outputs(first), _check_outputs(second)
            differ = {i: (before[i], after.get(i)) for i in before if before[i] != after.get(i)}
            assert not differ, ("# NBVAL_CHECK_OUTPUT cells printed something else after "
                                f"restart-and-run-all (cell: (first run, second run)): {differ}")

        # 5. a clean console
        errors = _unexpected(page.console_errors)
        assert not errors, "browser console errors:\n" + "\n".join(errors)
    except BaseException:
        _save_failure(page, jupyterlab, stem)
        raise
    finally:
        print(f"\n[{stem}] timings: {timings}")
        jupyterlab.shutdown_sessions()
        timings_file = ROOT / "artifacts" / "browser_timings.json"
        timings_file.parent.mkdir(exist_ok=True)
        timings_file.write_text(json.dumps(jupyterlab.timings, indent=1))
