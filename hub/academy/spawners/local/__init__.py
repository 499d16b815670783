"""The local backend: each learner's JupyterLab as a local process (``spawner``), held to its profile by ``cgroups``."""
