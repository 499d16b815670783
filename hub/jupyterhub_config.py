"""JupyterHub configuration for AI Factory Academy: load the site YAML, validate it, apply it.

Everything tunable lives in hub/academy.yaml (schema: hub/academy/schema/site.schema.yaml).
`academy up` passes what it decided at start-up (ports, proxy) in $ACADEMY_RUNTIME, read with
the YAML by ``hub_config``; without it (a plain ``jupyterhub -f``) the YAML's own values apply.
Files in hub/jupyterhub_config.d/*.py are loaded last, as an escape hatch for settings the
schema does not (yet) cover.
"""
from pathlib import Path

from academy import hubdb, hubgc, stallwatch
from academy.configurer import apply_config
from academy.siteconfig import hub_config

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)
cfg = hub_config()
apply_config(c, cfg)
# In the hub process itself: SQLite commits that do not wait for the disk, a garbage collector that
# skips what start-up made, and the optional stall watch.
hubdb.install_from(cfg)
hubgc.install()
stallwatch.install(cfg)

for extra in sorted((Path(__file__).parent / "jupyterhub_config.d").glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821
