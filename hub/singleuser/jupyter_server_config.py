"""Learner servers: jupyter-resource-usage shows memory and CPU against the session's real limits.

The limits come from the spawner (local backend: the profile's cgroup), the Slurm job's allocation,
or the server's own cgroup (academy.labtools.limits), so the status bar and the Academy resources
panel agree.  Settings that need no code stay in jupyter_server_config.json beside this file.
"""
from academy.labtools.limits import session_limits

c = get_config()  # noqa: F821 (provided by Jupyter when it loads this file)
_limits = session_limits()
c.ResourceUseDisplay.mem_limit = _limits.memory_bytes or 0
c.ResourceUseDisplay.cpu_limit = _limits.cpus or 0
c.ResourceUseDisplay.track_cpu_percent = True
