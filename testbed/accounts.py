"""The one registry of Unix accounts a test or benchmark run created, and how each is removed.

Two kinds: a hub learner on the local backend, whose account the spawner made (``acad-<name>``, removed
with every hub a test started), and a real Unix user made for the Slurm suite (its jobs cancelled and its
home removed at the end of the session).
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from academy.accounts import LOCAL_UNIX_PREFIX


@dataclass(frozen=True)
class Account:
    """One Unix account this run created."""

    unix_name: str
    slurm_user: bool = False  # a Slurm suite user: cancel its jobs first, and remove its home too


class AccountRegistry:
    """What this run created, in order; ``append``/``extend`` take hub names of local-backend learners."""

    def __init__(self) -> None:
        self.accounts: list[Account] = []

    def append(self, hub_name: str) -> None:
        self.accounts.append(Account(f"{LOCAL_UNIX_PREFIX}{hub_name}"))

    def extend(self, hub_names: Iterable[str]) -> None:
        for name in hub_names:
            self.append(name)

    def add_unix_user(self, name: str) -> None:
        self.accounts.append(Account(name, slurm_user=True))

    def remove(self, *, slurm_users: bool) -> None:
        """Delete the accounts of one kind (the other kind stays registered)."""
        mine = [a for a in self.accounts if a.slurm_user == slurm_users]
        for account in mine:
            if account.slurm_user:
                from testbed.slurm_cluster import Cluster

                subprocess.run(["scancel", f"--user={account.unix_name}"], env=Cluster().env(),
                               capture_output=True, text=True, timeout=60)
                subprocess.run(["userdel", "--remove", account.unix_name], capture_output=True)
            else:
                subprocess.run(["userdel", account.unix_name], capture_output=True)
        self.accounts = [a for a in self.accounts if a not in mine]


CREATED = AccountRegistry()


def remove_accounts() -> None:
    """Delete the Unix accounts the local backend created for this run's learners."""
    CREATED.remove(slurm_users=False)


def remove_users() -> None:
    """Delete the Unix users this run made for Slurm (their jobs first), homes included."""
    CREATED.remove(slurm_users=True)
