# Two commands for learners:  `make lab` (set up, then open JupyterLab)  and  `make test`.
# Both create .venv on first use and are no-ops for set-up when nothing changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.llmlab-installed
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: setup lab test check bench timings clean browser screenshots hub-setup hub

setup: $(STAMP)

# Re-installs only when requirements.txt or pyproject.toml changed (or .venv is missing).
# --no-deps on the editable install: the tested set comes only from requirements.txt,
# so nothing here can upgrade torch past its pin.
$(STAMP): requirements.txt requirements-assets.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "llmlab needs Python >= 3.10; run make PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -r requirements-assets.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# JupyterLab refuses to run as root (containers, some cloud machines) unless told it may.
LAB_FLAGS := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: setup
	$(BIN)/jupyter lab $(LAB_FLAGS) notebooks/

# The whole suite: unit and property tests, then every notebook in quick mode (LLMLAB_QUICK=1).
test: setup
	$(BIN)/python -m pytest

# Only the real-browser tests (JupyterLab + Debian's Chromium: apt-get install chromium).
browser: setup
	$(BIN)/python -m pytest tests/browser

# Same, saving the widget screenshots the README shows into docs/screenshots.
screenshots: setup
	LLMLAB_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/browser

# The class server (classroom/README.md): JupyterHub from PyPI and its proxy from npm, pinned.
HUB_STAMP := $(VENV)/.llmlab-hub-installed
hub-setup: $(HUB_STAMP)

$(HUB_STAMP): $(STAMP) classroom/requirements-hub.txt classroom/package.json classroom/package-lock.json
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null || \
		{ echo "the class server's proxy needs Node.js 20 or newer (node and npm on PATH)"; exit 1; }
	$(PIP) install --quiet --no-deps -r classroom/requirements-hub.txt
	cd classroom && npm ci --no-audit --no-fund --loglevel=error
	@$(BIN)/python -c 'import sys; from pathlib import Path; from llmlab.hubcheck import unreachable; \
		p = unreachable([Path(sys.executable), Path("classroom/singleuser.py")]); \
		sys.exit("students could not run the course (see classroom/README.md, Before you start):\n  " \
		+ "\n  ".join(p)) if p else None'
	@touch $(HUB_STAMP)

# Start the class server (as root: it runs each student's server as that student). Writes the
# student notebooks each account gets a copy of first, if they are not there yet.
hub: hub-setup
	@[ "$$(id -u)" = 0 ] || { echo "the class server runs as root: sudo make hub"; exit 1; }
	@[ -d classroom/handout ] || $(BIN)/python scripts/notebooks.py student classroom/handout
	$(BIN)/jupyterhub -f classroom/jupyterhub_config.py

check: setup
	$(BIN)/python ../shared/tools/course_check.py

# Every benchmark prints its figures with the machine and its load (about 30 minutes in all on
# 2 cores; the speedrun's ablations are most of it: `python benchmarks/speedrun.py --no-ablations`
# alone takes about 6).
bench: setup
	cd benchmarks && for b in bpe_train attention_fused generate_kv_cache viz_redraw train_shakespeare speedrun; do \
		echo "=== benchmarks/$$b.py"; ../$(BIN)/python $$b.py || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info classroom/node_modules
