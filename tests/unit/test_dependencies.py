"""Every third-party module the hub package imports is a declared dependency in pyproject.toml."""
from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from academy.probes import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "hub" / "academy"
# The learner-side framework may use the learners' AI stack (the `ai` extra); the hub may not.
LEARNER_SIDE = PACKAGE / "learn"


def _name(requirement: str) -> str:
    """PEP 503 normal form of a requirement's distribution name."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)).lower()


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports anywhere in ``path`` (also those inside functions or try blocks)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "academy"}


def test_every_imported_third_party_module_is_declared():
    """Does each module hub/academy (and jupyterhub_config.py) imports come from a distribution in
    [project.dependencies] (or, on the learner side, the `ai` extra), so a fresh install has it?"""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    ai = {_name(r) for r in project["optional-dependencies"]["ai"]}
    dists = packages_distributions()
    files = [*PACKAGE.rglob("*.py"), PROJECT_ROOT / "hub" / "jupyterhub_config.py"]
    assert len(files) > 50
    undeclared = set()
    for path in files:
        allowed = core | ai if LEARNER_SIDE in path.parents else core
        for module in imported_modules(path):
            provided_by = {_name(d) for d in dists.get(module, [])}
            if not provided_by & allowed:
                undeclared.add(f"{module} (from {sorted(provided_by) or 'no installed distribution'}), "
                               f"imported by {path.relative_to(PROJECT_ROOT)}")
    assert not undeclared, "undeclared in pyproject.toml:\n" + "\n".join(sorted(undeclared))


def test_the_check_sees_an_undeclared_import(tmp_path):
    """Would the check notice a module imported only inside a function (as the package's lazy imports are)?"""
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from bcrypt import hashpw\n    import academy.probes\n")
    assert imported_modules(module) == {"bcrypt"}
