"""JupyterHub configuration for AI Factory Academy: load the site YAML, validate it, apply it.

Everything tunable lives in hub/academy.yaml (schema: hub/academy/schema/site.schema.yaml).
`academy up` passes what it decided at start-up (ports, proxy) in $ACADEMY_RUNTIME, read with
the YAML by ``hub_config``; without it (a plain ``jupyterhub -f``) the YAML's own values apply.
Files in hub/jupyterhub_config.d/*.py are loaded last, as an escape hatch for settings the
schema does not (yet) cover.
"""
from pathlib import Path

from academy.configurer import apply_config
from academy.siteconfig import hub_config

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)
apply_config(c, hub_config())

for extra in sorted((Path(__file__).parent / "jupyterhub_config.d").glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821
