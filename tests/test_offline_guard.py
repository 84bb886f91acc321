"""The offline guard (tests/netguard) blocks every non-loopback connection before it leaves.

Nothing here reaches the network: the guard raises before the system call, and the loopback
checks use a listening socket of this test. 10.255.255.1 and 1.1.1.1 are only ever *refused*.
"""
import os
import socket
import subprocess
import sys
import textwrap

import pytest

import llmlab_netguard as guard  # on sys.path via the root conftest

BLOCKED = [("10.255.255.1", 9), ("1.1.1.1", 80), ("2606:4700:4700::1111", 53), ("example.org", 443)]


@pytest.fixture
def private_log(tmp_path, monkeypatch):
    """Route this test's deliberate attempts to its own log, not the session's."""
    log = tmp_path / "attempts.log"
    monkeypatch.setenv(guard.LOG_ENV, str(log))
    monkeypatch.setattr(guard, "ATTEMPTS", [])
    return log


def test_guard_is_installed_in_the_test_process():
    assert guard.installed()
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0].endswith(os.path.join("tests", "netguard"))


@pytest.mark.parametrize("host, port", BLOCKED)
def test_non_loopback_connections_raise_and_are_recorded(host, port, private_log):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with pytest.raises(guard.NetworkBlockedError, match="network access blocked"):
        socket.create_connection((host, port), timeout=0.1)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.1)
        with pytest.raises(guard.NetworkBlockedError):
            s.connect((host, port))
        with pytest.raises(guard.NetworkBlockedError):
            s.connect_ex((host, port))
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        with pytest.raises(guard.NetworkBlockedError):
            s.sendto(b"x", (host, port))
    assert len(guard.ATTEMPTS) == 4
    assert private_log.read_text().count("blocked") == 4


def test_name_lookups_are_blocked_too(private_log):
    with pytest.raises(guard.NetworkBlockedError):
        socket.getaddrinfo("pypi.org", 443)
    assert "pypi.org" in private_log.read_text()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_still_works(host, private_log):
    family = socket.AF_INET6 if host == "::1" else socket.AF_INET
    try:
        server = socket.socket(family, socket.SOCK_STREAM)
        server.bind(("::1" if host == "::1" else "127.0.0.1", 0))
    except OSError as err:  # a machine without IPv6 on lo
        pytest.skip(f"cannot listen on {host}: {err}")
    with server:
        server.listen(1)
        port = server.getsockname()[1]
        with socket.create_connection((host, port), timeout=5):
            pass
    assert guard.ATTEMPTS == [] and not private_log.exists()


def test_unix_sockets_are_allowed():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        a.sendall(b"ok")
        assert b.recv(2) == b"ok"


def _child_env(log):
    env = dict(os.environ)
    env[guard.LOG_ENV] = str(log)
    return env


def test_guard_is_on_in_child_pythons(tmp_path):
    """Kernels are separate processes: a plain `python` child gets the guard via sitecustomize."""
    log = tmp_path / "child.log"
    code = textwrap.dedent("""
        import socket, llmlab_netguard
        assert llmlab_netguard.installed(), "sitecustomize did not install the guard"
        try:
            socket.create_connection(("10.255.255.1", 9), timeout=0.1)
        except llmlab_netguard.NetworkBlockedError:
            print("BLOCKED")
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(log), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "BLOCKED"
    assert "10.255.255.1" in log.read_text()


@pytest.mark.slow
def test_guard_is_on_in_a_jupyter_kernel(tmp_path):
    """A real ipykernel, started the way nbval and JupyterLab start theirs, refuses too."""
    from jupyter_client.manager import start_new_kernel

    log = tmp_path / "kernel.log"
    km, kc = start_new_kernel(kernel_name="python3", env=_child_env(log))
    try:
        reply = kc.execute_interactive(
            "import socket\nsocket.socket().connect(('1.1.1.1', 80))", timeout=60,
            output_hook=lambda msg: None)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "NetworkBlockedError"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "1.1.1.1" in log.read_text()
