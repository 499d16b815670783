"""JupyterHub configuration for AI Factory Academy: load the site YAML, validate it, apply it.

Everything tunable lives in hub/academy.yaml (schema: hub/academy/schema/site.schema.yaml).
Files in hub/jupyterhub_config.d/*.py are loaded last, as an escape hatch for settings the
schema does not (yet) cover.
"""
from pathlib import Path

from academy.configurer import apply_config
from academy.siteconfig import load_config, resolve_runtime

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)
apply_config(c, resolve_runtime(load_config()))

for extra in sorted((Path(__file__).parent / "jupyterhub_config.d").glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821
