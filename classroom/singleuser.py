"""Start one student's JupyterLab: runs as the student (the hub's spawner has dropped root).

Locks the student's home (mode 700: no other account may list or read it), copies each handout
notebook the student does not have yet into ~/llmlab (never overwriting their work), then
becomes jupyterhub-singleuser with the arguments the hub passed.
"""
import os
import shutil
import sys
from pathlib import Path

HANDOUT = Path(os.environ.get("LLMLAB_HANDOUT", Path(__file__).resolve().parent / "handout"))


def give_notebooks(home: Path, handout: Path) -> list[str]:
    """Copy into home/llmlab each handout notebook missing there; the names copied."""
    home.chmod(0o700)
    course = home / "llmlab"
    course.mkdir(mode=0o700, exist_ok=True)
    copied = []
    for src in sorted(handout.glob("*.ipynb")):
        dest = course / src.name
        if not dest.exists() and not dest.is_symlink():
            shutil.copyfile(src, dest)
            copied.append(src.name)
    return copied


if __name__ == "__main__":
    if os.getuid() == 0:
        sys.exit("llmlab hub: a student's server must not run as root (check c.Spawner.cmd)")
    copied = give_notebooks(Path.home(), HANDOUT)
    if copied:
        print(f"llmlab: copied {len(copied)} notebooks into ~/llmlab", file=sys.stderr)
    server = Path(sys.executable).parent / "jupyterhub-singleuser"
    os.execv(server, [str(server), *sys.argv[1:]])
