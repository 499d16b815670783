"""Learner servers: the Academy lab extension from the package, and terminals in the learner environment.

Loaded from ``JUPYTER_CONFIG_PATH`` next to ``jupyter_server_config.json`` (which enables
``academy.lab``). Paths come from the installed ``academy`` package, so the same file serves the
local backend and Slurm jobs.
"""
import os
import sys
from pathlib import Path

import academy.lab

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)

# The prebuilt extension ships inside the package (built by `make`), so no learner ever runs a build.
c.LabApp.extra_labextensions_path = [str(academy.lab.LABEXTENSIONS_DIR)]

# Terminals: a login shell's /etc/profile resets PATH and hides the learner environment; our rc file
# runs the login files, then puts that environment (this server's own Python) first again.
os.environ.setdefault("ACADEMY_ENV_BIN", str(Path(sys.executable).parent))
c.ServerApp.terminado_settings = {
    "shell_command": ["/bin/bash", "--rcfile", str(Path(academy.lab.__file__).with_name("terminal.bashrc")), "-i"],
}
