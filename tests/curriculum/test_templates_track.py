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


def _train_module(slug: str):
    import importlib.util

    from academy.project.templates import find_template

    spec = importlib.util.spec_from_file_location(f"template_{slug.replace('-', '_')}", find_template(slug).path / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_users_own_data_is_never_overwritten_by_generated_data(tmp_path):
    """When data/ holds the user's own file that is smaller than a run wants, is it used or refused, but never replaced?"""
    import numpy as np

    batch = _train_module("batch-job")
    own = tmp_path / "regression.npz"
    np.savez(own, x=np.zeros((10, 8), np.float32), y=np.ones(10, np.float32))
    before = own.read_bytes()
    result = batch.train(steps=3, samples=100, hidden=4, data_dir=tmp_path, checkpoint=None, out=None, log=lambda m: None)
    assert result["steps"] == 3 and own.read_bytes() == before

    transformer = _train_module("transformer-finetune")
    own = tmp_path / "sequences.npz"
    np.savez(own, unlabelled=np.zeros((5, 7), np.int64), sequences=np.zeros((5, 7), np.int64), labels=np.zeros(5, np.int64))
    before = own.read_bytes()
    with pytest.raises(ValueError, match="Config.seq_len"):
        transformer.make_data(transformer.Config.smoke(), tmp_path)
    assert own.read_bytes() == before
    # Its own generated data, by contrast, is made again for a run that needs more.
    own.unlink()
    small = transformer.make_data(transformer.Config.smoke(), tmp_path)
    bigger = transformer.Config.smoke()
    bigger.n_unlabelled = 2 * len(small["unlabelled"])
    assert len(transformer.make_data(bigger, tmp_path)["unlabelled"]) == bigger.n_unlabelled
