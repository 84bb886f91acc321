"""JupyterHub configuration for an llmlab class on one machine.

Start it with `make hub` (as root: the hub runs each student's server as that student's own
Unix account). See classroom/README.md for the whole set-up.

    students    Unix accounts in the group `llmlab-students` (classroom/students.py makes them),
                logging in with their own password (PAM)
    servers     one JupyterLab per student, run as that student (LocalProcessSpawner), in
                ~/llmlab, which classroom/singleuser.py fills with the student notebooks
    isolation   home folders are mode 700, so one student cannot read another's files
    state       the hub's database and cookie secret in classroom/state/ (LLMLAB_HUB_STATE)

Settings a teacher may change without editing this file (environment variables):

    LLMLAB_HUB_PORT        port to listen on (8000); the hub's and the proxy's own APIs take the
                           next two (8001, 8002), on localhost only
    LLMLAB_HUB_IP          address to listen on ("" = every interface, so the class can reach it)
    LLMLAB_HUB_ADMINS      comma-separated accounts that may administer the hub (none)
    LLMLAB_HUB_GROUP       the group whose members may log in (llmlab-students)
    LLMLAB_HANDOUT         folder of notebooks each student gets a copy of (classroom/handout)
    LLMLAB_HUB_STATE       folder for the hub's database and cookie secret (classroom/state)
    LLMLAB_KERNEL_THREADS  torch/BLAS threads per student kernel (1: thirty kernels share the cores)
    LLMLAB_QUICK           set to 1 to give every student the lessons' quick training budgets
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent      # the course's .venv: the hub and every student share it
STATE = Path(os.environ.get("LLMLAB_HUB_STATE", HERE / "state"))
HANDOUT = Path(os.environ.get("LLMLAB_HANDOUT", HERE / "handout"))
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"

for needed, fix in ((PROXY, "run `make hub-setup` (installs the proxy from npm)"),
                    (HANDOUT, "run `make hub` (it writes the student notebooks first), or "
                              "`python scripts/notebooks.py student classroom/handout`")):
    if not needed.exists():
        sys.exit(f"llmlab hub: {needed} is missing: {fix}")
# Students' servers run as the students: they must be able to run the course's Python and read
# the course. Say so now, not as a failed spawn in class.
from llmlab.hubcheck import unreachable  # noqa: E402  (the hub runs from the course's venv)

_blocked = unreachable([Path(sys.executable), HERE / "singleuser.py", HANDOUT])
if _blocked:
    sys.exit("llmlab hub: students could not start their servers:\n  " + "\n  ".join(_blocked)
             + "\nPut the course and its Python where every account can read them (e.g. clone "
               "into /opt/llmlab and `make setup PYTHON=/usr/bin/python3`), or let other "
               "accounts enter the folder named (chmod o+x, which lists nothing).")
STATE.mkdir(mode=0o700, parents=True, exist_ok=True)

c = get_config()  # noqa: F821  (JupyterHub provides get_config when it loads this file)

# --- where the hub listens, and its state -----------------------------------------------------
c.JupyterHub.ip = os.environ.get("LLMLAB_HUB_IP", "")
c.JupyterHub.port = int(os.environ.get("LLMLAB_HUB_PORT", "8000"))
c.JupyterHub.hub_port = c.JupyterHub.port + 1
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{c.JupyterHub.port + 2}"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.ConfigurableHTTPProxy.command = [str(PROXY)]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
# Stopping the hub stops every student's server too (nothing is left running after class).
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# --- who may log in ---------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.PAMAuthenticator.allowed_groups = {os.environ.get("LLMLAB_HUB_GROUP", "llmlab-students")}
c.Authenticator.admin_users = {u for u in os.environ.get("LLMLAB_HUB_ADMINS", "").split(",") if u}
# Accounts are made by the teacher (classroom/students.py), never by logging in (JupyterHub's
# default: LocalAuthenticator.create_system_users is False).

# --- each student's own server ----------------------------------------------------------------
c.JupyterHub.spawner_class = "localprocess"
# The server starts through classroom/singleuser.py, which runs as the student (never as root):
# it locks their home (mode 700) and copies in each handout notebook they do not have yet.
c.Spawner.cmd = [str(VENV_BIN / "python"), str(HERE / "singleuser.py")]
c.Spawner.notebook_dir = "~/llmlab"
c.Spawner.default_url = "/lab"
threads = os.environ.get("LLMLAB_KERNEL_THREADS", "1")
c.Spawner.environment = {
    "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
    # The course's .venv first on PATH, so terminals and `python` in a student's server are it.
    "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
    "LLMLAB_HANDOUT": str(HANDOUT),
}
if "LLMLAB_QUICK" in os.environ:          # quick mode (smaller training budgets) for every student
    c.Spawner.environment["LLMLAB_QUICK"] = os.environ["LLMLAB_QUICK"]
# A first start imports torch and JupyterLab from a cold disk: give it time on a busy machine.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# Students who close their laptop keep their server until the hub stops; the course's
# kernels are small (see classroom/README.md, "How many students fit").

