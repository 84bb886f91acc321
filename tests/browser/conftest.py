"""Fixtures for the real-browser tests: a private JupyterLab server and a headless Chromium.

Everything runs offline on 127.0.0.1: JupyterLab with a random port and token, its state
(config, settings, workspaces, runtime files, IPython, matplotlib) in a temporary home, serving
a temporary folder (each test copies its notebook there, so autosave never edits the repo), and
Debian's Chromium driven by Playwright (never `playwright install`: it downloads a browser).
Every process started here is stopped again, also when a test fails.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LLMLAB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS_ENV = "LLMLAB_SCREENSHOTS_DIR"  # `make screenshots` points it at docs/screenshots
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes tabs
    # Answer every DNS lookup locally with NOTFOUND: Chromium otherwise still asks the resolver
    # for accounts.google.com, update.googleapis.com, ...
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def _missing(reason: str):
    """Skip on a learner's machine; fail in CI, where the browser tests must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests are required in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where screenshots go: artifacts/screenshots (git-ignored) unless LLMLAB_SCREENSHOTS_DIR."""
    path = Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "artifacts" / "screenshots")
    path = path if path.is_absolute() else ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class JupyterLab:
    """A running private JupyterLab server."""

    url: str
    token: str
    root: Path        # the folder it serves
    home: Path        # its private Jupyter / IPython / matplotlib state
    proc: subprocess.Popen
    kernel_pids: set = field(default_factory=set)  # filled by the tests, killed at teardown
    timings: dict = field(default_factory=dict)

    def api(self, path: str, method: str = "GET"):
        """Call the server's REST API; return the decoded JSON (or None)."""
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def lab_url(self, relpath: str, workspace: str) -> str:
        """URL opening one notebook in a fresh, named workspace (no tabs restored from others)."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{relpath}?reset&token={self.token}"

    def shutdown_sessions(self) -> None:
        """Shut down every kernel of this server (each test leaves the next a clean server)."""
        for session in self.api("/api/sessions") or []:
            self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def log(self) -> str:
        return (self.home / "jupyterlab.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_env(home: Path) -> dict:
    """The server's environment: private state dirs, quick mode, offline guard (PYTHONPATH)."""
    env = dict(os.environ)  # carries PYTHONPATH with the offline guard (root conftest)
    dirs = {
        "JUPYTER_CONFIG_DIR": "jupyter-config", "JUPYTER_DATA_DIR": "jupyter-data",
        "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "JUPYTERLAB_SETTINGS_DIR": "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces", "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "mpl", "TMPDIR": "tmp",
    }
    for var, name in dirs.items():
        (home / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / name)
    # JUPYTER_DATA_DIR no longer points at ~/.local/share/jupyter, so kernels are found only in
    # sys.prefix/share/jupyter/kernels: the venv's python3 spec (checked in the fixture).
    env.pop("JUPYTER_PATH", None)
    env["LLMLAB_QUICK"] = "1"  # kernels run the lessons in quick mode, as nbval does
    env["PYTHONHASHSEED"] = "0"
    # No news toast over the screenshots, no update check (both would fetch from the internet).
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Render every cell (JupyterLab 4 otherwise skips laying out cells far off-screen), so the
    # tests can count and measure every widget view without scrolling through the notebook.
    tracker = home / "lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def _start(home: Path, root: Path) -> JupyterLab:
    port, token = _free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--allow-root",
        "--LabApp.expose_app_in_browser=True",      # window.jupyterapp, to drive commands
        "--LabApp.news_url=None",                    # no announcements feed
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",       # the extension manager would query PyPI
    ]
    log = open(home / "jupyterlab.log", "w")
    t0 = time.monotonic()
    # A new session, so the server can be signalled as a group; kernels get their own sessions
    # (jupyter_client), so their pids are recorded and stopped separately at teardown.
    proc = subprocess.Popen(cmd, env=_lab_env(home), cwd=root, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, root, home, proc)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{lab.log()[-3000:]}")
        try:
            lab.api("/api/status")
            break
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() - t0 > 90:
            _stop(lab)
            raise RuntimeError(f"jupyter lab not up after 90 s:\n{lab.log()[-3000:]}")
        time.sleep(0.2)
    lab.timings["server_start_s"] = round(time.monotonic() - t0, 2)
    return lab


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _stop(lab: JupyterLab) -> None:
    """Shut down kernels and server politely, then make sure each process we started is gone."""
    try:
        lab.shutdown_sessions()
        lab.api("/api/shutdown", method="POST")
    except OSError:
        pass
    try:
        lab.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(lab.proc.pid, signal.SIGTERM)   # the group this fixture created
        try:
            lab.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(lab.proc.pid, signal.SIGKILL)
            lab.proc.wait(timeout=10)
    for pid in lab.kernel_pids:                   # kernels this run started (their own pids)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium and the playwright package, or skip (fail when CI=true)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _missing(f"Chromium not found at {CHROMIUM}: apt-get install chromium "
                 "(or set LLMLAB_CHROMIUM to a Chromium binary)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("playwright not installed: make setup (it is in requirements.txt)")
    return CHROMIUM


@pytest.fixture(scope="session")
def jupyterlab(chromium_path, tmp_path_factory):
    """A private JupyterLab server for the whole session, stopped (with its kernels) at the end."""
    home = tmp_path_factory.mktemp("jupyterlab-home")
    root = home / "served"
    root.mkdir()
    lab = _start(home, root)
    try:
        specs = lab.api("/api/kernelspecs")
        assert "python3" in specs["kernelspecs"], (
            f"the python3 kernel spec is not visible to the server: {specs}")
        yield lab
    finally:
        _stop(lab)
        print(f"\n[jupyterlab] timings: {lab.timings}")


@pytest.fixture(scope="session")
def browser(chromium_path, tmp_path_factory):
    """One headless Chromium for the session (Playwright's temp profiles in our temp dir)."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("playwright-tmp")
    old_tmp = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)   # inherited by the Playwright driver, which makes profiles
    try:
        pw = sync_playwright().start()
    finally:                          # the rest of the test process keeps its own TMPDIR
        if old_tmp is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old_tmp
    try:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
