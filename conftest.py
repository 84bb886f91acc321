"""Test-suite wide settings, applied before any notebook kernel starts."""
import os

# Notebooks read LLMLAB_QUICK in their set-up cell and train with smaller budgets.
os.environ.setdefault("LLMLAB_QUICK", "1")
# Keep kernels and plots quiet and deterministic on shared machines.
os.environ.setdefault("PYTHONHASHSEED", "0")

# --- Offline guard -----------------------------------------------------------------------------
# Every connection to a non-loopback address raises NetworkBlockedError, in this process and in
# every Python child (nbval kernels, the browser tests' JupyterLab and its kernels), which load
# tests/netguard/sitecustomize.py through PYTHONPATH. Attempts are also logged to a file, and the
# test (or notebook cell) during which one happened fails, even if a library caught the error.
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

_NETGUARD = Path(__file__).resolve().parent / "tests" / "netguard"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(_NETGUARD)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
_OWN_LOG = "LLMLAB_NETGUARD_LOG" not in os.environ  # else a caller collects the attempts
if _OWN_LOG:
    _fd, _log = tempfile.mkstemp(prefix="llmlab-netguard-", suffix=".log")
    os.close(_fd)
    os.environ["LLMLAB_NETGUARD_LOG"] = _log
_SESSION_LOG = Path(os.environ["LLMLAB_NETGUARD_LOG"])  # tests may point the env var elsewhere
sys.path.insert(0, str(_NETGUARD))
import llmlab_netguard  # noqa: E402

llmlab_netguard.install()

import pytest  # noqa: E402

_LOG_READ = [0]  # how much of the attempts log has been reported already


def _new_attempts() -> str:
    """Attempts logged (by any process) since the last call."""
    if not _SESSION_LOG.exists():
        return ""
    with open(_SESSION_LOG, encoding="utf-8") as f:
        f.seek(_LOG_READ[0])
        new = f.read()
        _LOG_READ[0] = f.tell()
    return new.strip()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fail the test (or notebook cell) during which a process tried to reach the network."""
    outcome = yield
    report = outcome.get_result()
    if call.when == "call":
        attempts = _new_attempts()
        if attempts and report.passed:
            report.outcome = "failed"
            report.longrepr = ("network access attempted (the course must run offline; the "
                               "error may have been caught and ignored):\n" + attempts)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any process tried to reach the network outside a test's call phase."""
    attempts = _new_attempts()
    if _OWN_LOG:
        _SESSION_LOG.unlink(missing_ok=True)
    if attempts:
        print("\n\nNETWORK ACCESS ATTEMPTED during the tests (the course must run offline):\n"
              + attempts, file=sys.stderr)
        session.exitstatus = 1
