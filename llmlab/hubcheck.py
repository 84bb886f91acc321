"""Try a class hub as a student would: log in, start the server, run a lesson in its kernel.

    python -m llmlab.hubcheck http://localhost:8000 alice --lesson 03     # asks for the password

A teacher runs it before class with one student account; the course's tests drive three users
through the same functions (tests/test_classroom_hub.py). Everything goes over HTTP and the
kernel's websocket, exactly as JupyterLab does: the hub's login form, its REST API to start the
server, the server's contents and sessions API, then each code cell as an execute_request.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import nbformat
import requests
import websocket  # websocket-client, a dependency of jupyter_server

__all__ = ["HubError", "Run", "Student", "MEMORY_CODE", "unreachable", "main"]


class HubError(RuntimeError):
    """The hub or a student's server did not do what a student needs."""


@dataclass
class Run:
    """What executing one notebook in a student's kernel gave."""

    cells: int                              # code cells executed
    seconds: float
    errors: list[str] = field(default_factory=list)   # "cell N: Ename: value", first one stops the run
    memory: dict = field(default_factory=dict)        # {"rss", "pss"} bytes after the last cell


# Runs inside a student's kernel: the memory of every process of that account (their server and
# kernels). PSS shares libraries fairly between the students who map them (torch is mapped by
# every kernel); RSS counts them in full for each, so it overstates what one more student costs.
MEMORY_CODE = """
import json, os, psutil
_rss = _pss = 0
for _p in psutil.process_iter(["uids"]):
    if _p.info["uids"] and _p.info["uids"].real == os.getuid():
        _m = _p.memory_full_info()
        _rss += _m.rss; _pss += _m.pss
print(json.dumps({"rss": _rss, "pss": _pss}))
"""


def unreachable(paths: list[Path]) -> list[str]:
    """Why other accounts cannot use each path (a folder on the way they may not enter, or the
    file not readable by them); [] when every student can. Symlinks are followed."""
    problems = []
    for path in paths:
        real = Path(os.path.realpath(path))
        for folder in reversed(real.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                problems.append(f"{path} lies inside {folder}, which other accounts may not "
                                f"enter (mode {stat.filemode(folder.stat().st_mode)})")
                break
        else:
            if not real.stat().st_mode & stat.S_IROTH:
                problems.append(f"{real} is not readable by other accounts")
    return problems


class Student:
    """One student's browser session on the hub: cookies, then their server and kernels."""

    def __init__(self, hub_url: str, name: str, timeout: float = 120):
        self.hub = hub_url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self.http = requests.Session()

    # --- the hub -------------------------------------------------------------------------------
    def _xsrf(self) -> str:
        """The xsrf token the hub set as a cookie (JupyterLab sends it back as a header)."""
        for cookie in self.http.cookies:
            if cookie.name == "_xsrf":
                return cookie.value
        raise HubError("the hub set no _xsrf cookie: is this a JupyterHub?")

    def login(self, password: str) -> None:
        """Log in with the hub's own form, as a browser does."""
        self.http.get(f"{self.hub}/hub/login", timeout=self.timeout).raise_for_status()
        r = self.http.post(f"{self.hub}/hub/login?next=/hub/home", allow_redirects=False,
                           data={"username": self.name, "password": password,
                                 "_xsrf": self._xsrf()}, timeout=self.timeout)
        if r.status_code != 302 or not any(c.name == "jupyterhub-session-id" or
                                           c.name.startswith("jupyterhub-hub-login")
                                           for c in self.http.cookies):
            raise HubError(f"login as {self.name!r} refused (HTTP {r.status_code}): wrong "
                           f"password, or the account is not in the hub's allowed group")
        self.http.get(f"{self.hub}/hub/home", timeout=self.timeout).raise_for_status()

    def _hub_api(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"X-XSRFToken": self._xsrf(), "Accept": "application/json"}
        return self.http.request(method, f"{self.hub}/hub/api{path}", headers=headers,
                                 timeout=self.timeout, **kw)

    def start_server(self) -> float:
        """Start this student's server and wait until it answers; the seconds it took."""
        t0 = time.monotonic()
        r = self._hub_api("POST", f"/users/{quote(self.name)}/server")
        if r.status_code not in (201, 202, 400):   # 400: already running
            raise HubError(f"the hub would not start {self.name}'s server: "
                           f"HTTP {r.status_code} {r.text[:300]}")
        while True:
            model = self._hub_api("GET", f"/users/{quote(self.name)}").json()
            if model.get("server") and not model.get("pending"):
                break
            if not model.get("pending") and not model.get("server") and time.monotonic() - t0 > 5:
                raise HubError(f"{self.name}'s server stopped while starting: see the hub's log")
            if time.monotonic() - t0 > self.timeout:
                raise HubError(f"{self.name}'s server did not start in {self.timeout:.0f} s")
            time.sleep(0.5)
        # Opening JupyterLab does the OAuth hand-over that gives us the server's own cookie.
        r = self.http.get(f"{self.hub}/user/{quote(self.name)}/lab", timeout=self.timeout)
        if r.status_code != 200:
            raise HubError(f"{self.name}'s JupyterLab answered HTTP {r.status_code}")
        return time.monotonic() - t0

    def stop_server(self) -> None:
        """Stop this student's server and wait until it has stopped (their files stay)."""
        self._hub_api("DELETE", f"/users/{quote(self.name)}/server")
        deadline = time.monotonic() + self.timeout
        while self._hub_api("GET", f"/users/{quote(self.name)}").json().get("server"):
            if time.monotonic() > deadline:
                raise HubError(f"{self.name}'s server did not stop in {self.timeout:.0f} s")
            time.sleep(0.3)

    # --- the student's own server --------------------------------------------------------------
    def server_api(self, method: str, path: str, user: str | None = None,
                   **kw) -> requests.Response:
        """A request to the Jupyter server API of `user` (default: this student's own)."""
        xsrf = next((c.value for c in self.http.cookies
                     if c.name == "_xsrf" and "/user/" in (c.path or "")), None)
        if xsrf is None:  # no server cookie yet: the hub's token (looked up only when needed)
            xsrf = self._xsrf()
        url = f"{self.hub}/user/{quote(user or self.name)}/api{path}"
        return self.http.request(method, url, headers={"X-XSRFToken": xsrf},
                                 allow_redirects=False, timeout=self.timeout, **kw)

    def notebook(self, path: str) -> nbformat.NotebookNode:
        """A notebook from the student's own folder, read through their server."""
        r = self.server_api("GET", f"/contents/{quote(path)}?content=1")
        if r.status_code != 200:
            raise HubError(f"{path} is not in {self.name}'s folder (HTTP {r.status_code})")
        return nbformat.from_dict(r.json()["content"])

    def open_kernel(self, path: str) -> "Kernel":
        """Open the notebook at path as JupyterLab does (a session) and connect to its kernel."""
        r = self.server_api("POST", "/sessions", json={
            "path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}})
        if r.status_code != 201:
            raise HubError(f"could not start a kernel for {path}: HTTP {r.status_code} {r.text}")
        kernel_id = r.json()["kernel"]["id"]
        ws_url = (self.hub.replace("http", "ws", 1) +
                  f"/user/{quote(self.name)}/api/kernels/{kernel_id}/channels")
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        return Kernel(websocket.create_connection(ws_url, cookie=cookies, timeout=self.timeout),
                      self, kernel_id)

    def run_notebook(self, path: str, cell_timeout: float = 600) -> Run:
        """Execute every code cell of the student's copy of path in a fresh kernel of theirs,
        then measure their memory with that kernel still running, then shut it down."""
        nb = self.notebook(path)
        kernel = self.open_kernel(path)
        t0 = time.monotonic()
        run = Run(cells=0, seconds=0.0)
        try:
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                run.cells += 1
                _, error = kernel.execute(cell.source, cell_timeout)
                if error:
                    run.errors.append(f"cell {i}: {error}")
                    break
            run.seconds = time.monotonic() - t0
            run.memory = kernel.memory()     # with the lesson's kernel still running
        finally:
            kernel.close()
        return run


def _decode(frame: str | bytes) -> dict:
    """A kernel message from a websocket frame: JSON text, or (with binary buffers, e.g. a
    widget's image) the server's binary form: a uint32 count n, n uint32 offsets, the JSON, the
    buffers."""
    if isinstance(frame, str):
        return json.loads(frame)
    n = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 + 4 * i: 8 + 4 * i], "big") for i in range(n)]
    end = offsets[1] if n > 1 else len(frame)
    return json.loads(frame[offsets[0]:end])


class Kernel:
    """A kernel of a student's server, driven over its websocket as JupyterLab drives it."""

    def __init__(self, ws, student: Student, kernel_id: str):
        self.ws, self.student, self.id = ws, student, kernel_id
        self.session = uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 600) -> tuple[str, str | None]:
        """Run code; (its stdout, its error as "Ename: value" or None)."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": self.session,
                       "username": self.student.name, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
        stdout, error, replied, idle = [], None, False, False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = _decode(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                raise HubError(f"a cell ran past {timeout:.0f} s in {self.student.name}'s kernel")
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                stdout.append(content["text"])
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        return "".join(stdout), error

    def memory(self) -> dict:
        """Bytes of memory held by this student's processes: {"rss": …, "pss": …}."""
        out, error = self.execute(MEMORY_CODE, 60)
        if error:
            raise HubError(f"measuring memory failed: {error}")
        return json.loads(out.strip().splitlines()[-1])

    def close(self, shutdown: bool = True) -> None:
        """Close the websocket; with shutdown, also stop the kernel."""
        self.ws.close()
        if shutdown:
            self.student.server_api("DELETE", f"/kernels/{self.id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmlab.hubcheck", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hub", help="the hub's address, e.g. http://localhost:8000")
    parser.add_argument("user", help="a student account to try")
    parser.add_argument("--lesson", default="03", help="lesson number to run (03)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per cell (600)")
    args = parser.parse_args(argv)
    password = getpass.getpass(f"password for {args.user}: ")
    student = Student(args.hub, args.user)
    try:
        student.login(password)
        print(f"logged in as {args.user}; starting the server …")
        print(f"server up in {student.start_server():.1f} s")
        listing = student.server_api("GET", "/contents/").json()["content"]
        names = sorted(f["name"] for f in listing if f["name"].startswith(args.lesson))
        if not names:
            raise HubError(f"no lesson {args.lesson} notebook in {args.user}'s folder")
        run = student.run_notebook(names[0], args.timeout)
    except (HubError, requests.RequestException, websocket.WebSocketException) as exc:
        print(f"hub check failed: {exc}", file=sys.stderr)
        return 1
    status = "every cell ran" if not run.errors else f"stopped at {run.errors[0]}"
    print(f"{names[0]}: {run.cells} code cells in {run.seconds:.1f} s; {status}")
    print(f"{args.user}'s server and kernel hold {run.memory['pss'] / 2**20:.0f} MiB (PSS; "
          f"RSS {run.memory['rss'] / 2**20:.0f} MiB)")
    return 0 if not run.errors else 1


if __name__ == "__main__":
    sys.exit(main())
