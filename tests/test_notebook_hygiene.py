"""Static checks of the stored lesson notebooks: in sync with sources, anatomy, hygiene."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MACHINE_PATH = re.compile(r"(/(work|root|home|Users|tmp)/[A-Za-z]|[A-Z]:\\\\)")


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _markdown(nb):
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 2


def test_notebooks_are_in_sync_with_their_sources():
    result = subprocess.run([sys.executable, str(ROOT / "scripts/notebooks.py"), "check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_hygiene(path):
    nb = _load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    ids = [c.get("id") for c in nb["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), "cell ids must be present and unique"
    for n, cell in enumerate(nb["cells"]):
        src = "".join(cell["source"])
        assert not MACHINE_PATH.search(src), f"cell {n} contains a machine-specific path"
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"cell {n} has a stored error"
            text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
            assert "Traceback" not in text, f"cell {n} printed a traceback"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_anatomy(path):
    nb = _load(path)
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# "), "a lesson opens with its title"
    md = _markdown(nb)
    assert re.search(r"you will learn", md, re.I), "learning goals"
    assert re.search(r"prerequisites", md, re.I), "prerequisites"
    assert re.search(r"\d+\s*(–|-|to)?\s*\d*\s*min", md, re.I), "time estimate"
    assert re.search(r"recap", md, re.I), "recap"
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'os.environ.get("LLMLAB_QUICK")' in code, "the set-up cell reads quick mode openly"
    n_checks = len(re.findall(r"checks\.check_\w+\(", code))
    assert n_checks >= 3, f"at least 3 exercises checked by llmlab.checks, found {n_checks}"
    assert "assert_close" in code or "assert " in code, "build-it-then-import-it cells assert agreement"


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_outputs_read_well_before_the_first_run(path):
    """A notebook fresh from disk is untrusted: JupyterLab shows a widget output's picture or its
    text, so that text is a note, never a repr ("VBox(children=...") or a progress bar's 0 %."""
    nb = _load(path)
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            text = "".join(data.get("text/plain", ""))
            assert re.fullmatch(r"\[[^\n]*run this cell[^\n]*\]", text), (
                f"cell {i} shows {text[:60]!r} before it runs: rebuild with scripts/notebooks.py "
                "build (explorers inherit llmlab.viz._render.LiveWidget)")
            if "Explorer" in text or "Playground" in text:
                assert {"image/png", "text/html"} & set(data), f"cell {i}: an explorer shows nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_widget_state(path):
    """Stored widget views point at saved widget models, and no saved model holds an error."""
    nb = _load(path)
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    views = [out["data"][WIDGET_VIEW]["model_id"] for cell in nb["cells"]
             for out in cell.get("outputs", []) if WIDGET_VIEW in out.get("data", {})]
    missing = [model_id for model_id in views if model_id not in state]
    assert not missing, (f"widget views {missing} have no saved state: viewers show 'Model not "
                         "found'; rebuild with scripts/notebooks.py build")
    for model_id, model in state.items():
        # an Output widget keeps what was printed into it in its state: no errors in there
        for out in (model.get("state") or {}).get("outputs") or []:
            assert out.get("output_type") != "error", (
                f"widget {model_id} ({model.get('model_name')}) stores an error output")
            text = "".join(out.get("text", "")) if out.get("output_type") == "stream" else ""
            assert "Traceback" not in text, f"widget {model_id} stores a traceback"
