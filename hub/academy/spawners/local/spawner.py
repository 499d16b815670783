"""The embedded default backend: each user's JupyterLab is a local process with its own home.

No Slurm and no admin-made accounts are needed. When the hub runs as root, every hub
user gets an automatically created, password-less Unix account (``acad-<name>``) that
owns its home under the state directory, so learner code never runs as root and
learners cannot read each other's files or server tokens. When the hub runs as an
ordinary user (a trainer's laptop), servers run as that user.  As root, each server also runs
in a cgroup with its profile's memory and cores (:mod:`academy.spawners.local.cgroups`).
The hours chosen on the form are enforced as Slurm would: the hub stops the server at its end
(``ACADEMY_WALLTIME_END`` tells the server when), and More time moves that end. Servers
listen on ports of the hub's own range (:mod:`academy.spawners.local.ports`), and the process
is forked off the hub's event loop.
"""
from __future__ import annotations

import asyncio
import os
import pwd
import shlex
import subprocess
import sys
import time
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Float, Integer, Unicode, validate

from academy.accounts import LOCAL_UNIX_PREFIX
from academy import localusers
from academy.home import sync_as_user, sync_curriculum
from academy.spawners.local import cgroups, ports
from academy.spawners.options import SpawnRequest
from academy.spawners.picker import ProfilePickerMixin
from academy.spawners.queue import QueuedStartMixin, StartPhases
from academy.spawners import walltime_api
from academy.spawners.walltime import WalltimeMixin

walltime_api.install()


class AcademyLocalSpawner(WalltimeMixin, QueuedStartMixin, ProfilePickerMixin, LocalProcessSpawner):
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
    start_cpu_weight = Integer(
        8,
        config=True,
        help="While a server starts, its cgroup's claim on busy cores is this many times a running "
             "server's (1: no boost), so a class starting at once is not starved by running kernels.",
    ).tag(min=1)
    server_ports = Unicode(
        "20000-29999",
        config=True,
        help="FIRST-LAST: the ports servers listen on, one per running server, chosen by the hub. Keep "
             "it outside net.ipv4.ip_local_port_range, where kernels' own sockets could take a starting "
             "server's port before it binds it.",
    )
    account_prefix = Unicode(
        LOCAL_UNIX_PREFIX,
        config=True,
        help="Prefix of the Unix accounts created for hub users when the hub runs as root.",
    )

    walltime_hour_seconds = Float(
        3600.0,
        config=True,
        help="Seconds one walltime hour lasts. For tests only (a small value speeds sessions up); "
             "production keeps 3600.",
    )
    last_stop_message = Unicode("", help="Why the last server ended (walltime), for the hub's pages.")

    @validate("start_cpu_weight")
    def _check_weight(self, proposal):
        if proposal["value"] < 1:
            raise ValueError("start_cpu_weight must be at least 1 (1: no boost)")
        return proposal["value"]

    @validate("server_ports")
    def _check_ports(self, proposal):
        first, last = ports.parse_range(proposal["value"])
        if ports.overlaps_ephemeral(first, last):
            self.log.warning("server_ports %s overlaps the kernel's ephemeral ports %s: a kernel may take a "
                             "starting server's port", proposal["value"], ports.ephemeral_range())
        return proposal["value"]

    @validate("walltime_hour_seconds")
    def _check_hour(self, proposal):
        if not proposal["value"] > 0:
            raise ValueError("walltime_hour_seconds must be positive")
        return proposal["value"]

    @property
    def _port_owner(self) -> str:
        return f"{self.user.name}/{self.name}"

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
        machine = cgroups.this_machine()
        # A limit beyond the machine's memory is no limit: the kernel would OOM others first. Cores
        # beyond the machine's would hold nothing back and show the learner a CPU_LIMIT they never get.
        self._limits = cgroups.capped(wanted, machine.memory_bytes, machine.cpus)
        if self._limits != wanted:
            self.log.info("%s for %s: %s", request.profile.slug, self.user.name,
                          cgroups.shortfall(request.profile.memory, request.profile.cpus, machine))
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

    def profile_notes(self, profiles) -> dict[str, str]:
        """Under each profile the machine cannot honour: what it asks, what this machine has, capped."""
        machine = cgroups.this_machine()
        return {p.slug: note for p in profiles if (note := cgroups.shortfall(p.memory, p.cpus, machine))}

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
            group.weigh(self.start_cpu_weight)
        except OSError as exc:  # a learner without limits beats a learner without a server
            self.log.error("No cgroup limits for %s: %s", self.unix_account, exc)
            return
        self._group = group

    async def start(self):
        phases = StartPhases()
        self.last_stop_message = ""
        self._ended_at_walltime = False
        if self.walltime_hour_seconds != 3600:
            self.log.warning("Test setting: one walltime hour lasts %.0f s for %s", self.walltime_hour_seconds,
                             self.user.name)
        try:
            # useradd and the curriculum copy block for a while; the hub's event loop must not.
            await phases.time("home", asyncio.to_thread(self._prepare_home))
            await phases.time("curriculum", asyncio.to_thread(self._deliver_curriculum))
            await phases.time("limits", self._limit_resources())
            # Set before the process starts: get_env hands the end time to the server.
            self._walltime_start = time.time()
            self.port = ports.pool_for(self.server_ports).take(self._port_owner)
            ip, port = await phases.time("process", self._launch())
        except BaseException:
            self.release_start_slot()
            ports.pool_for(self.server_ports).give_back(self._port_owner)
            raise
        self._schedule_end()
        # A local start spends its CPU until the server answers, so the slot is held until then.
        self.hold_slot_until_answering(f"http://{ip}:{port}", phases, then=self._started)
        return ip, port

    async def _launch(self) -> tuple[str, int]:
        """``LocalProcessSpawner.start``, with ``Popen`` in a worker thread.

        ``Popen`` returns only when the child has run ``preexec_fn`` (cgroup, setuid) and exec'd; while a
        class's kernels keep the cores busy that took long enough to be among the hub's event-loop
        stalls (the stall watch caught ``_execute_child``). Everything that reads the hub's state is
        computed here on the loop, as JupyterHub does; only the fork and exec wait go to the thread.
        """
        env = self.get_env()
        cmd = [*self.cmd, *self.get_args()]
        if self.shell_cmd:
            cmd = [*self.shell_cmd, " ".join(shlex.quote(s) for s in cmd)]
        self.log.info("Spawning %s", " ".join(shlex.quote(s) for s in cmd))
        kwargs = {"preexec_fn": self.make_preexec_fn(self.user.name), "start_new_session": True,
                  **self.popen_kwargs, "env": env}
        self.proc = await asyncio.to_thread(subprocess.Popen, cmd, **kwargs)
        self.pid = self.proc.pid
        return (self.ip or "127.0.0.1", self.port)

    def _started(self) -> None:
        """The server answers (or gave up): its group competes for the cores as an equal again."""
        group = self._group
        if group is not None and self.start_cpu_weight != 1:
            try:
                group.weigh(1)
            except OSError as exc:  # the group is gone: the server stopped meanwhile
                self.log.debug("CPU weight of %s not reset: %s", self.unix_account, exc)

    # -- walltime, enforced as Slurm would --------------------------------------------------------
    _walltime_start: float = 0.0
    _end_timer: asyncio.TimerHandle | None = None
    _ended_at_walltime: bool = False

    def walltime_end(self) -> float | None:
        hours = self.current_hours()
        return self._walltime_start + hours * self.walltime_hour_seconds if self._walltime_start and hours else None

    def _schedule_end(self) -> None:
        if self._end_timer is not None:
            self._end_timer.cancel()
        end = self.walltime_end()
        if end is not None:
            # poll() notices the end; poll_and_notify tells the hub at once, not at its next poll.
            self._end_timer = asyncio.get_running_loop().call_later(
                max(0.0, end - time.time()) + 0.5, lambda: asyncio.ensure_future(self.poll_and_notify()))

    async def apply_walltime(self, total_hours: int) -> float | None:
        self.walltime_hours = total_hours
        self._schedule_end()
        return self.walltime_end()

    async def poll(self):
        end = self.walltime_end()
        if end is not None and self.pid and time.time() >= end and not self._ended_at_walltime:
            self._ended_at_walltime = True  # stop() polls too: end it once
            self.log.info("Walltime of %s ended: stopping the server", self.user.name)
            self.last_stop_message = (
                f"Your previous server reached the end of its walltime ({self.current_hours()} h) at "
                f"{time.strftime('%H:%M', time.localtime(end))} and was stopped. Notebooks open in JupyterLab "
                "were saved 5 minutes and 1 minute before the end. Your files are kept; start a new server "
                "when you are ready.")
            await self.stop()
            return 0
        return await super().poll()

    def get_state(self):
        state = super().get_state()
        if self.last_stop_message:
            state["last_stop_message"] = self.last_stop_message
        return state

    def load_state(self, state):
        super().load_state(state)
        self.last_stop_message = state.get("last_stop_message", "")

    async def wait_for_death(self, timeout=10):
        """Poll our own child every ``death_interval`` until it exits (True) or ``timeout`` passes (False).

        JupyterHub's back-off grows to seconds between polls; when Ctrl-C stops every server at
        once, the hub then sat for seconds after the last one had already gone.  Polling is a
        ``waitpid`` on our own child, so a steady tenth of a second costs nothing.
        """
        deadline = time.monotonic() + timeout
        while True:
            if await self.poll() is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(self.death_interval)

    async def stop(self, now=False):
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        await super().stop(now=now)
        ports.pool_for(self.server_ports).give_back(self._port_owner)
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
        end = self.walltime_end()
        if end is not None:
            env["ACADEMY_WALLTIME_END"] = str(int(end))
        return env

    def move_certs(self, paths):
        return paths
