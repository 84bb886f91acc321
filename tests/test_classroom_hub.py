"""The class server for real: JupyterHub from classroom/, three student accounts, lesson 03 in each.

The hub test makes three Unix accounts with classroom/students.py, starts the hub on localhost
with classroom/jupyterhub_config.py, logs each student in through the login form, starts their
server, runs their own copy of lesson 03 in their own kernel (all three at once, as in class),
and checks that no student can read another's files. It then stops the hub and removes the
accounts, and checks nothing of theirs is left running. It needs root (accounts, PAM, running
servers as the students) and `make hub-setup`; without them it skips, except in CI (CI=true),
where it fails. The roster and notebook-copy tests need neither.
"""
from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest

from llmlab.hubcheck import HubError, Student, unreachable
from llmlab.localhub import LocalClass, processes_of

ROOT = Path(__file__).resolve().parent.parent
CLASSROOM = ROOT / "classroom"
LESSON = "03_scaled_dot_product_attention.ipynb"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, CLASSROOM / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


students_py = _load("students")
singleuser_py = _load("singleuser")


# --- pieces that need no root ---------------------------------------------------------------------
def test_roster_is_checked_whole_before_anything_changes(tmp_path):
    roster = tmp_path / "roster.txt"
    roster.write_text("# class 7b\nana\n\nBen Smith\nana\nroot\nc" + "x" * 40 + "\n")
    with pytest.raises(SystemExit) as err:
        students_py.read_roster(roster)
    message = str(err.value)
    assert "nothing was changed" in message
    assert "line 4: 'Ben Smith' is not a login name" in message
    assert "line 5: 'ana' is listed twice" in message
    assert "line 6: 'root' cannot be a student" in message
    assert "line 7" in message
    roster.write_text("ana  # the first\nben_2\n\n")
    assert students_py.read_roster(roster) == ["ana", "ben_2"]
    roster.write_text("# nobody yet\n")
    with pytest.raises(SystemExit, match="names no students"):
        students_py.read_roster(roster)


def test_each_student_gets_the_handout_once_and_keeps_their_work(tmp_path):
    handout, home = tmp_path / "handout", tmp_path / "home"
    handout.mkdir()
    home.mkdir(mode=0o755)
    for name in ("01_a.ipynb", "03_b.ipynb"):
        (handout / name).write_text(f"fresh {name}")
    (handout / "notes.txt").write_text("not a notebook")
    assert singleuser_py.give_notebooks(home, handout) == ["01_a.ipynb", "03_b.ipynb"]
    assert (home.stat().st_mode & 0o777) == 0o700
    assert sorted(p.name for p in (home / "llmlab").iterdir()) == ["01_a.ipynb", "03_b.ipynb"]
    (home / "llmlab" / "03_b.ipynb").write_text("my answers")
    (handout / "04_c.ipynb").write_text("fresh 04")
    assert singleuser_py.give_notebooks(home, handout) == ["04_c.ipynb"]
    assert (home / "llmlab" / "03_b.ipynb").read_text() == "my answers"


def test_unreachable_names_the_folder_that_blocks_students():
    tmp_path = Path(tempfile.mkdtemp(prefix="llmlab-reach-"))   # pytest's own tmp is mode 700
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "python").write_text("")
    (tmp_path / "shared.txt").write_text("")
    (tmp_path / "shared.txt").chmod(0o644)
    tmp_path.chmod(0o755)
    problems = unreachable([private / "python", tmp_path / "shared.txt"])
    shutil.rmtree(tmp_path)
    assert len(problems) == 1 and f"inside {private}, which other accounts may not enter" in \
        problems[0]


# --- the real hub ---------------------------------------------------------------------------------
def _need(ok: bool, reason: str) -> None:
    """Skip on a learner's machine; fail in CI, where the class server is required."""
    if ok:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the class-server test is required in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def classroom():
    """Three fresh student accounts and the class hub running for them; all removed afterwards."""
    _need(hasattr(os, "geteuid") and os.geteuid() == 0,
          "the class-server test runs as root (it makes accounts and runs servers as them)")
    _need(importlib.util.find_spec("jupyterhub") is not None
          and (CLASSROOM / "node_modules" / ".bin" / "configurable-http-proxy").exists(),
          "the class server is not installed: run `make hub-setup`")
    _need(all(shutil.which(tool) for tool in ("useradd", "userdel", "chpasswd")),
          "useradd/userdel/chpasswd are missing")
    blocked = unreachable([Path(sys.executable)])
    _need(not blocked, f"students could not run the course's Python: {blocked}")

    # Not pytest's tmp_path: it lies in a folder only root may enter, and the students' servers
    # must read the handout.
    tmp = Path(tempfile.mkdtemp(prefix="llmlab-classroom-"))
    tmp.chmod(0o755)
    tag = secrets.token_hex(2)
    names = [f"llmlabt{tag}{who}" for who in ("ana", "ben", "cai")]
    lesson = LocalClass(names, tmp, group=f"llmlabt{tag}", lessons=["03"])
    try:
        with lesson as (hub, passwords):
            assert sorted(passwords) == sorted(names)
            assert ((tmp / "state" / "passwords.csv").stat().st_mode & 0o777) == 0o600
            yield hub, passwords
            print(hub.tail(1500))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The hub stopped every server it started as it exited; the accounts are gone.
    assert lesson.left_running == []
    assert processes_of(names) == []
    for name in names:
        with pytest.raises(KeyError):
            pwd.getpwnam(name)


@pytest.fixture(scope="module")
def logged_in(classroom):
    """The three students logged in with their own passwords, each with their server started."""
    hub, passwords = classroom
    students = {}
    for name, password in passwords.items():
        student = Student(hub.url, name, timeout=180)
        student.login(password)
        student.start_server()
        students[name] = student
    return hub, students


def test_a_wrong_password_is_refused(classroom):
    hub, passwords = classroom
    name = next(iter(passwords))
    with pytest.raises(HubError, match="refused"):
        Student(hub.url, name).login(passwords[name] + "x")


def test_three_students_run_lesson_03_in_their_own_kernels_at_once(logged_in):
    hub, students = logged_in
    expected = nbformat.read(hub.handout / LESSON, as_version=4)
    code_cells = sum(1 for c in expected.cells if c.cell_type == "code" and c.source.strip())
    runs, failures = {}, {}

    def work(student):
        try:
            runs[student.name] = student.run_notebook(LESSON, cell_timeout=300)
        except Exception as exc:  # noqa: BLE001  (reported below, per student)
            failures[student.name] = repr(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in students.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    for name, run in runs.items():
        assert run.errors == [], (name, run.errors)
        assert run.cells == code_cells
        # Their server and kernel: at least a Python with torch loaded, at most a generous bound.
        assert 100 * 2**20 < run.memory["pss"] <= run.memory["rss"] < 2 * 2**30, run.memory
        print(f"{name}: {run.cells} cells in {run.seconds:.1f} s, "
              f"PSS {run.memory['pss'] / 2**20:.0f} MiB, RSS {run.memory['rss'] / 2**20:.0f} MiB")
    # Each server runs as its own student, never as root.
    for name in students:
        procs = processes_of([name])
        assert any("jupyterhub-singleuser" in " ".join(p.cmdline()) for p in procs), name


def test_no_student_can_read_another_students_files(logged_in):
    hub, students = logged_in
    (a, alice), (b, _) = list(students.items())[:2]
    # Through the other student's server: the hub does not let alice in.
    r = alice.server_api("GET", "/contents/", user=b)
    assert r.status_code in (302, 403), r.status_code
    assert LESSON not in r.text
    # From inside alice's own kernel: the operating system does not let her in either.
    kernel = alice.open_kernel(LESSON)
    try:
        out, error = kernel.execute(
            "import os, pwd\n"
            f"home = pwd.getpwnam({b!r}).pw_dir\n"
            "for what, act in [('list', lambda: os.listdir(home)),\n"
            f"                  ('read', lambda: open(home + '/llmlab/{LESSON}').read()),\n"
            "                  ('write', lambda: open(home + '/llmlab/x.txt', 'w'))]:\n"
            "    try:\n"
            "        act(); print(what, 'ALLOWED')\n"
            "    except PermissionError:\n"
            "        print(what, 'denied')\n"
            "print('uid', os.getuid())\n")
    finally:
        kernel.close()
    assert error is None, error
    assert out.split("\n")[:3] == ["list denied", "read denied", "write denied"], out
    assert f"uid {pwd.getpwnam(a).pw_uid}" in out


def test_a_students_work_survives_a_server_restart(logged_in):
    hub, students = logged_in
    student = list(students.values())[2]
    nb = student.notebook(LESSON)
    nb.cells.append(nbformat.v4.new_markdown_cell("my own note"))
    r = student.server_api("PUT", f"/contents/{LESSON}",
                           json={"type": "notebook", "format": "json", "content": nb})
    assert r.status_code == 200, r.text
    student.stop_server()
    student.start_server()
    assert student.notebook(LESSON).cells[-1].source == "my own note"
