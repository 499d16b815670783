"""Learner servers: the Academy lab extension from the package, and terminals in the learner environment.

Loaded from ``JUPYTER_CONFIG_PATH`` next to ``jupyter_server_config.json`` (which enables
``academy.lab``). Paths are relative to this file (``hub/academy/lab``), so the same file serves the
local backend and Slurm jobs. No server module is imported here (importing ``academy.lab`` while
jupyterhub-singleuser loads its config stalls its start); only the small limits reader is.
"""
import os
import sys
from pathlib import Path

LAB = Path(__file__).resolve().parent.parent / "academy" / "lab"

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# The prebuilt extension ships inside the package (built by `make`), so no learner ever runs a build.
c.LabApp.extra_labextensions_path = [str(LAB / "labextensions")]

# Terminals: a login shell's /etc/profile resets PATH and hides the learner environment; our rc file
# runs the login files, then puts that environment (this server's own Python) first again.
os.environ.setdefault("ACADEMY_ENV_BIN", str(Path(sys.executable).parent))
c.ServerApp.terminado_settings = {
    "shell_command": ["/bin/bash", "--rcfile", str(LAB / "terminal.bashrc"), "-i"],
}

# jupyter-resource-usage shows memory and CPU against the session's real limits (the spawner's
# cgroup, the Slurm allocation or the server's own cgroup), so its status bar and the Academy
# resources item agree. academy.labtools.limits imports nothing of the server, unlike academy.lab.
from academy.labtools.limits import session_limits  # noqa: E402

_limits = session_limits()
c.ResourceUseDisplay.mem_limit = _limits.memory_bytes or 0
c.ResourceUseDisplay.cpu_limit = _limits.cpus or 0
c.ResourceUseDisplay.track_cpu_percent = True
