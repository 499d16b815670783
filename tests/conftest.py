"""Suite-wide fixtures and hooks.

Fixtures (documented here, as JupyterHub's conftest does):
- ``hub`` (tests/hub/conftest.py): a running ``academy up`` with the local backend, module scoped.
- ``learner`` (tests/hub/conftest.py): a fresh native account, logged in, with an API token.
- ``slurm_cluster`` (tests/slurm/conftest.py): the one-node Slurm started by tests/slurm_cluster.py.

Hooks: each test's report is attached to its item (``item.rep_call``) so fixtures can
dump logs of real components when the test failed.  For ``make test``'s parallel run
(pytest-xdist) a worker takes whole modules, so a module's hub starts once, and every Slurm test
(``tests/slurm/`` and the lesson test against ``real_slurm``) shares one scope, run first: the
one-node cluster, its reservation and its queue are one machine's, and the Slurm tests assume
they have it to themselves.
"""
from __future__ import annotations

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _slurm_scope(nodeid: str) -> bool:
    return nodeid.startswith("tests/slurm/") or "real_slurm" in nodeid


def pytest_collection_modifyitems(config, items):
    # The Slurm tests are the longest chain that must run one after the other: start them first.
    items.sort(key=lambda item: not _slurm_scope(item.nodeid))


@pytest.hookimpl(tryfirst=True)  # ahead of xdist's own, which would pick its built-in scheduler
def pytest_xdist_make_scheduler(config, log):
    """Whole modules per worker, and every Slurm test in one scope (see the module docstring)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleAndSlurmScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "slurm" if _slurm_scope(nodeid) else nodeid.split("::", 1)[0]

    return ModuleAndSlurmScheduling(config, log)
