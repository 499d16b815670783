"""Does the whole smoke track pass through the real CLI, every notebook 00..12 included? (slow: marked curriculum)"""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from support.notebooks import EXPECTED, NOTEBOOKS
from support.skip import need

REPO = NOTEBOOKS.parent


@pytest.mark.curriculum
@pytest.mark.timeout(900)
def test_whole_smoke_track_passes():
    """Does `academy curriculum test --jobs 2 --smoke` exit 0 with all 13 notebooks run, passing, and reporting metrics?"""
    missing = [n for n in EXPECTED if not (NOTEBOOKS / f"{n}.ipynb").exists()]
    need(not missing, f"curriculum notebooks {', '.join(missing)}")
    # The default report paths under test-output/ are what CI uploads, and the JUnit file's
    # timings let the next run start the slowest notebooks first.
    junit = REPO / "test-output" / "curriculum-junit.xml"
    junit.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "academy", "curriculum", "test", "--jobs", "2", "--smoke"],
        cwd=REPO, capture_output=True, text=True, timeout=870,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert sorted(cases) == EXPECTED
    for name, case in cases.items():
        assert case.find("failure") is None and case.find("error") is None, name
        metrics = [p.get("name") for p in case.iter("property") if p.get("name", "").startswith("metric.")]
        assert metrics, f"{name} reported no metrics from its learning check"
    assert sum(float(c.get("time")) for c in cases.values()) > 0
