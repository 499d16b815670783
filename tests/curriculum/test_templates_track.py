"""Does every project template's notebook pass at smoke size through the real `academy curriculum test` CLI, as CI runs the lessons?"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from academy.project.templates import list_templates, templates_dir


@pytest.mark.timeout(600)
def test_every_template_notebook_passes_at_smoke_size(tmp_path):
    """Does `academy curriculum test notebooks/templates --smoke --require-clean` run each template's notebook in a real kernel, pass, and report its learning check's metrics?"""
    templates = list_templates()
    assert len(templates) >= 4
    junit = tmp_path / "templates-junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "academy", "curriculum", "test", str(templates_dir()), "--smoke", "--require-clean",
         "--jobs", "2", "--junit", str(junit), "--keep", str(tmp_path / "failures")],
        cwd=tmp_path, capture_output=True, text=True, timeout=570,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(cases) == sorted(f"{t.slug}/{t.notebook}" for t in templates)
    for name, case in cases.items():
        assert case.find("failure") is None and case.find("error") is None, name
        metrics = [p.get("name") for p in case.iter("property") if p.get("name", "").startswith("metric.")]
        assert metrics, f"{name} reported no metrics from its learning check"
    # A run works in scratch copies: the templates stay as committed (no data or results written into them).
    assert not any((t.path / "results").exists() for t in templates)
