"""Suite-wide fixtures and hooks.

Fixtures (documented here, as JupyterHub's conftest does):
- ``hub`` (tests/hub/conftest.py): a running ``academy up`` with the local backend, module scoped.
- ``learner`` (tests/hub/conftest.py): a fresh native account, logged in, with an API token.
- ``slurm_cluster`` (tests/slurm/conftest.py): the one-node Slurm started by tests/slurm_cluster.py.

Hooks: each test's report is attached to its item (``item.rep_call``) so fixtures can
dump logs of real components when the test failed.
"""
from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
