"""Suite-wide fixtures and hooks.

Fixtures (documented here, as JupyterHub's conftest does):
- ``hub`` (tests/hub/conftest.py): a running ``academy up`` with the local backend, module scoped.
- ``learner`` (tests/hub/conftest.py): a fresh native account, logged in, with an API token.
- ``slurm_cluster`` (tests/slurm/conftest.py): the one-node Slurm started by tests/slurm_cluster.py.

Hooks: each test's report is attached to its item (``item.rep_call``) so fixtures can
dump logs of real components when the test failed.  For ``make test``'s parallel run
(pytest-xdist, ``--dist loadgroup``) every test is grouped by its module, so a module's hub starts
once on one worker, and every ``slurm`` test shares one group: the one-node cluster, its
reservation and its queue are one machine's, and the Slurm tests assume they have it to themselves.
"""
from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = "slurm" if item.get_closest_marker("slurm") else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
