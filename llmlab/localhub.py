"""The class hub run on this machine for a check or a benchmark: real accounts, real servers.

    with LocalClass(["ana", "ben"], folder) as (hub, passwords):
        Student(hub.url, "ana").login(passwords["ana"])

LocalHub starts JupyterHub with classroom/jupyterhub_config.py on free localhost ports and
stops it (and with it every student's server) on exit. LocalClass also makes the accounts with
classroom/students.py in a group of their own, writes the student notebooks they get, and
removes accounts, homes and group afterwards. Needs root. Used by tests/test_classroom_hub.py
and benchmarks/classroom_memory.py.
"""
from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from llmlab.hubcheck import HubError

__all__ = ["LocalHub", "LocalClass", "processes_of"]

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"


def _free_port_run(n: int) -> int:
    """A port p with p, p+1, …, p+n-1 all free on localhost."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for k in range(1, n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + k))
            return port
        except OSError:
            continue
    raise HubError(f"found no {n} free ports in a row on localhost")


class LocalHub:
    """The class hub (classroom/jupyterhub_config.py) run on localhost, for checks and
    benchmarks: `with LocalHub(state, handout) as hub: Student(hub.url, name)`. Needs root."""

    def __init__(self, state: Path, handout: Path, env: dict | None = None, timeout: float = 60):
        self.state, self.handout, self.timeout = Path(state), Path(handout), timeout
        self.port = _free_port_run(3)
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LLMLAB_HUB_IP": "127.0.0.1", "LLMLAB_HUB_PORT": str(self.port),
                    "LLMLAB_HUB_STATE": str(self.state), "LLMLAB_HANDOUT": str(self.handout),
                    **(env or {})}
        self.log = self.state / "hub.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "LocalHub":
        self.state.mkdir(parents=True, exist_ok=True)
        hub = Path(sys.executable).parent / "jupyterhub"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(hub), "-f", str(CONFIG)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.state)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"the hub exited ({self.proc.returncode}): {self.tail()}")
            try:
                if requests.get(f"{self.url}/hub/api", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise HubError(f"the hub did not answer in {self.timeout:.0f} s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        """The end of the hub's log."""
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def __exit__(self, *exc) -> None:
        """Stop the hub; it stops every student's server and its proxy as it exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def processes_of(names: list[str]) -> list[psutil.Process]:
    """The running processes of these accounts (missing accounts have none)."""
    uids = set()
    for name in names:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"]
            and p.info["uids"].real in uids]


class LocalClass:
    """Accounts for names (group `group`), their handout of lessons, and the hub serving them.

    folder must be readable by every account (the students' servers read the handout there)."""

    def __init__(self, names: list[str], folder: Path, group: str, lessons: list[str],
                 env: dict | None = None, timeout: float = 90):
        self.names, self.folder, self.group, self.lessons = names, Path(folder), group, lessons
        self.env = {"LLMLAB_HUB_GROUP": group, **(env or {})}
        self.timeout = timeout
        self._students = [sys.executable, str(ROOT / "classroom" / "students.py")]
        self.hub: LocalHub | None = None
        self.left_running: list[str] = []   # what still ran once the hub had stopped

    def _students_py(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._students, *args], env={**os.environ, **self.env},
                              capture_output=True, text=True)

    def __enter__(self) -> tuple["LocalHub", dict[str, str]]:
        handout = self.folder / "handout"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "notebooks.py"), "student",
                        str(handout), *self.lessons], check=True, capture_output=True)
        roster, passwords = self.folder / "roster.txt", self.folder / "state" / "passwords.csv"
        roster.write_text("\n".join(self.names) + "\n")
        done = self._students_py("add", str(roster), str(passwords))
        if done.returncode:
            raise HubError(f"making the accounts failed: {done.stderr}")
        rows = [line.split(",") for line in passwords.read_text().split()[1:]]
        try:
            self.hub = LocalHub(self.folder / "state", handout, self.env, self.timeout)
            self.hub.__enter__()
        except BaseException:
            self._remove()
            raise
        return self.hub, dict(rows)

    def _remove(self) -> None:
        for p in processes_of(self.names):
            p.kill()
        done = self._students_py("remove", str(self.folder / "roster.txt"))
        if done.returncode:
            raise HubError(f"removing the accounts failed: {done.stderr}")

    def __exit__(self, *exc) -> None:
        """Stop the hub, then remove the accounts (killing anything of theirs still running)."""
        try:
            if self.hub:
                self.hub.__exit__(*exc)
                self.left_running = [" ".join(p.cmdline()) for p in processes_of(self.names)]
        finally:
            self._remove()
