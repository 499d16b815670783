"""The README tells the truth: the two quick-start commands, and a reference generated from the schema."""
from __future__ import annotations

import re

from academy.config import markdown_reference
from academy.probes import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_quick_start_is_the_two_make_commands_ci_runs():
    """Does the quick start show exactly `make up` and `make test`, and does .ci/run call the latter?"""
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick.split("```bash", 1)[1].split("```", 1)[0], re.M)
    assert commands == ["make up", "make test"]
    assert "make test" in (PROJECT_ROOT / ".ci" / "run").read_text()


def test_configuration_reference_matches_the_schema():
    """Is the README's configuration reference exactly what the schema generates today?"""
    assert markdown_reference() in README, "run `academy config reference` and paste it into README.md"
