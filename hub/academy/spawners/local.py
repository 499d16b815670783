"""The embedded default backend: each user's JupyterLab is a local process with its own home.

No Slurm and no admin-made accounts are needed. When the hub runs as root, every hub
user gets an automatically created, password-less Unix account (``acad-<name>``) that
owns its home under the state directory, so learner code never runs as root and
learners cannot read each other's files or server tokens. When the hub runs as an
ordinary user (a trainer's laptop), servers run as that user.  As root, each server also runs
in a cgroup with its profile's memory and cores (:mod:`academy.spawners.cgroups`).
"""
from __future__ import annotations

import asyncio
import os
import pwd
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Unicode

from academy.accounts import LOCAL_UNIX_PREFIX
from academy import localusers
from academy.home import sync_as_user, sync_curriculum
from academy.spawners import cgroups
from academy.spawners.options import SpawnRequest
from academy.spawners.picker import ProfilePickerMixin
from academy.spawners.queue import QueuedStartMixin, StartPhases


class AcademyLocalSpawner(QueuedStartMixin, ProfilePickerMixin, LocalProcessSpawner):
    """Local processes behind the same profile picker as the Slurm backend."""

    homes_dir = Unicode(
        config=True,
        help="Parent of the per-user homes (default: <state_dir>/homes).",
    )
    enforce_limits = Bool(
        True,
        config=True,
        help="As root, run each server in a cgroup with its profile's memory and cores (off: no limits).",
    )
    account_prefix = Unicode(
        LOCAL_UNIX_PREFIX,
        config=True,
        help="Prefix of the Unix accounts created for hub users when the hub runs as root.",
    )

    @property
    def home_dir(self) -> str:
        return str(Path(self.homes_dir) / self.user.name)

    @property
    def unix_account(self) -> str:
        if self._hub_is_root():
            return f"{self.account_prefix}{self.user.name}"
        return pwd.getpwuid(os.getuid()).pw_name

    def _prepare_home(self) -> None:
        if self._hub_is_root():
            # The same account and home a workshop makes for its participants up front.
            localusers.prepare_home(self.user.name, self.homes_dir, self.account_prefix)
            return
        Path(self.homes_dir).mkdir(parents=True, exist_ok=True)
        Path(self.home_dir).mkdir(mode=0o700, exist_ok=True)

    def _deliver_curriculum(self) -> None:
        if not self.curriculum_source:
            return
        target = Path(self.home_dir) / self.curriculum_target
        if self._hub_is_root():
            report = sync_as_user(
                Path(self.curriculum_source), target,
                preexec_fn=set_user_setuid(self.unix_account),
                env={"PATH": "/usr/bin:/bin", "HOME": self.home_dir},
            )
        else:
            report = sync_curriculum(Path(self.curriculum_source), target)
        self.log.info(
            "Curriculum for %s: %d copied, %d updated, %d kept (user changes)",
            self.user.name, len(report.copied), len(report.updated), len(report.kept_user_changes),
        )

    _limits: cgroups.Limits | None = None
    _group: cgroups.UserGroup | None = None

    def apply_spawn_request(self, request: SpawnRequest) -> None:
        super().apply_spawn_request(request)
        wanted = cgroups.Limits(cgroups.parse_memory(request.profile.memory), float(request.profile.cpus))
        # A limit beyond the machine's memory is no limit: the kernel would OOM others first.
        self._limits = cgroups.capped(wanted, cgroups.machine_memory())
        if self._limits != wanted:
            self.log.info("%s asks %s memory; %s gets what this machine has, %s",
                          request.profile.slug, request.profile.memory, self.user.name, cgroups.gib(self._limits.memory_bytes))
        # Exported as MEM_LIMIT / CPU_LIMIT, which JupyterLab's resource display reads.
        self.mem_limit, self.cpu_limit = self._limits.memory_bytes, self._limits.cpus

    def limits_enforced(self) -> bool:
        return self.enforce_limits and cgroups.version() is not None

    def form_note_text(self) -> str:
        enforced = ("Cores and memory are enforced: your server and everything it starts stay within them."
                    if self.limits_enforced() else "Cores and memory are not enforced here.")
        machine = cgroups.machine_memory()
        if any(cgroups.parse_memory(p.memory) > machine for p in self.allowed_profiles()):
            enforced += f" This machine has {cgroups.gib(machine)} of memory: a profile asking for more gets {cgroups.gib(machine)}."
        return f"{self.form_note} {enforced}".strip()

    async def _limit_resources(self) -> None:
        self._group = None
        if self._limits is None or not self.limits_enforced():
            return
        group = cgroups.UserGroup(self.unix_account)
        # Whatever a crashed earlier server of this user left behind; off the event loop, as it may wait.
        leftovers = await asyncio.get_running_loop().run_in_executor(None, group.end)
        if leftovers:
            self.log.warning("Ended %d leftover process(es) of %s", len(leftovers), self.unix_account)
        try:
            group.apply(self._limits)
        except OSError as exc:  # a learner without limits beats a learner without a server
            self.log.error("No cgroup limits for %s: %s", self.unix_account, exc)
            return
        self._group = group

    async def start(self):
        phases = StartPhases()
        try:
            # useradd and the curriculum copy block for a while; the hub's event loop must not.
            await phases.time("home", asyncio.to_thread(self._prepare_home))
            await phases.time("curriculum", asyncio.to_thread(self._deliver_curriculum))
            await phases.time("limits", self._limit_resources())
            ip, port = await phases.time("process", super().start())
        except BaseException:
            self.release_start_slot()
            raise
        # A local start spends its CPU until the server answers, so the slot is held until then.
        self.hold_slot_until_answering(f"http://{ip}:{port}", phases)
        return ip, port

    async def stop(self, now=False):
        await super().stop(now=now)
        if self._group is not None:
            left = await asyncio.get_running_loop().run_in_executor(None, self._group.end)
            if left:
                self.log.info("Ended %d process(es) %s left running after their server", len(left), self.user.name)

    def make_preexec_fn(self, name):
        if self._hub_is_root():
            setuid = set_user_setuid(self.unix_account)
            group = self._group
            if group is None:
                return setuid

            def preexec():
                group.join()  # still root here: enter the limits first, then drop privileges
                setuid()

            return preexec
        home = self.home_dir

        def preexec():
            os.chdir(home)

        return preexec

    def user_env(self, env):
        env["USER"] = self.unix_account if self._hub_is_root() else self.user.name
        env["HOME"] = self.home_dir
        env["SHELL"] = "/bin/bash"
        return env

    def get_env(self):
        env = super().get_env()
        # The single-user server and kernels come from the hub's own environment.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
        return env

    def move_certs(self, paths):
        return paths
