"""Make (or remove) the class's Unix accounts from a roster: one login name per line.

    sudo .venv/bin/python classroom/students.py add roster.txt passwords.csv
    sudo .venv/bin/python classroom/students.py remove roster.txt       # after the course

`add` checks the whole roster first (valid, unique names), then makes each account with a home
folder only its owner can read, puts it in the group the hub lets in, and writes a random
password per new account to the CSV (readable by root only) for the teacher to hand out.
Accounts that already exist join the group and keep their password. `remove` deletes only
accounts in that group, with their home folders.
"""
from __future__ import annotations

import argparse
import csv
import grp
import os
import pwd
import re
import secrets
import subprocess
import sys
from pathlib import Path

GROUP = os.environ.get("LLMLAB_HUB_GROUP", "llmlab-students")
# What useradd accepts everywhere (and what JupyterHub keeps unchanged in URLs).
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def read_roster(path: Path) -> list[str]:
    """The login names in a roster file (blank lines and # comments skipped), all checked."""
    names, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not _NAME.match(name):
            problems.append(f"line {n}: {name!r} is not a login name (lowercase letters, digits, "
                            f"_ and -, starting with a letter, at most 32)")
        elif name in names:
            problems.append(f"line {n}: {name!r} is listed twice")
        elif name == "root":
            problems.append(f"line {n}: 'root' cannot be a student")
        names.append(name)
    if problems:
        raise SystemExit(f"{path}: nothing was changed:\n  " + "\n  ".join(problems))
    if not names:
        raise SystemExit(f"{path} names no students (one login name per line)")
    return names


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _in_group(name: str) -> bool:
    return name in grp.getgrnam(GROUP).gr_mem


def _run(*cmd: str, stdin: str | None = None) -> None:
    done = subprocess.run(cmd, input=stdin, text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[:-1] if stdin else cmd)} failed: {done.stderr.strip()}"
                         + (" (stop the hub first: the account still has processes)"
                            if cmd[0] == "userdel" else ""))


def add(names: list[str], passwords: Path) -> list[tuple[str, str]]:
    """Make the accounts; (name, password) for each new one, also written to passwords."""
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        _run("groupadd", GROUP)
    made = []
    for name in names:
        if _exists(name):
            _run("usermod", "-a", "-G", GROUP, name)
            print(f"{name}: exists already; added to {GROUP}, password unchanged")
            continue
        _run("useradd", "--create-home", "--shell", "/bin/bash", "--groups", GROUP, name)
        password = secrets.token_urlsafe(9)
        _run("chpasswd", stdin=f"{name}:{password}\n")
        Path(pwd.getpwnam(name).pw_dir).chmod(0o700)
        made.append((name, password))
        print(f"{name}: made")
    # The passwords file is root's alone, written whole (never half a class).
    passwords.parent.mkdir(parents=True, exist_ok=True)
    tmp = passwords.with_name(passwords.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as f:
        csv.writer(f).writerows([("username", "password"), *made])
    os.replace(tmp, passwords)
    return made


def remove(names: list[str]) -> None:
    """Delete the accounts (and their homes) that are in the class group; leave others alone."""
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        raise SystemExit(f"there is no group {GROUP}: no class accounts to remove")
    for name in names:
        if not _exists(name):
            print(f"{name}: no such account")
        elif not _in_group(name):
            print(f"{name}: not in {GROUP}, left alone")
        else:
            _run("userdel", "--remove", name)
            print(f"{name}: removed")
    if not grp.getgrnam(GROUP).gr_mem:     # the last student gone: the group goes too
        _run("groupdel", GROUP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["add", "remove"])
    parser.add_argument("roster", type=Path, help="one login name per line")
    parser.add_argument("passwords", type=Path, nargs="?", default=Path("passwords.csv"),
                        help="add: where to write the new accounts' passwords (passwords.csv)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("making accounts needs root: run it with sudo")
    names = read_roster(args.roster)
    if args.action == "add":
        made = add(names, args.passwords)
        print(f"{len(made)} new accounts; their passwords are in {args.passwords}")
    else:
        remove(names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
