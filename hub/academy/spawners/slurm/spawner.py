"""The Slurm backend: each learner's JupyterLab is a batch job, hardened on top of batchspawner.

What this adds to ``batchspawner.SlurmSpawner`` (the why of each is in its module): the profile
picker and strict ``user_options`` (``spawners.picker``/``spawners.options``; the script sees only the
vetted ``SpawnRequest``, ``script``); commands without a shell (``academy.slurm.commands``); one batched
``squeue`` for all servers, outages never taken for "job gone" (``poller``); the port-only
report endpoint (``port_api``); pending-job progress, fast failure with the log tail and a stored
reason when a job ends behind the hub's back (``messages``); the fair start queue
(``spawners.queue``) and "More time" through ``scontrol`` (``walltime``).
"""
from __future__ import annotations

import asyncio
import html
import os
import pwd
import time

from batchspawner import SlurmSpawner
from sqlalchemy import inspect
from traitlets import Dict, Float, Integer, List, Unicode, default

from academy.slurm import commands
from academy.slurm.states import UNREACHABLE_RE, Phase
from academy.spawners.options import SpawnRequest
from academy.spawners.picker import ProfilePickerMixin
from academy.spawners.queue import QueuedStartMixin
from academy.spawners.slurm import messages, port_api, walltime
from academy.spawners.slurm.availability import shared_availability
from academy.spawners.slurm.messages import JobFailed
from academy.spawners.slurm.poller import ALREADY_GONE, JobView, SlurmPoller, shared_poller
from academy.spawners.slurm.script import ScriptError, build_context, render

port_api.install()


class AcademySlurmSpawner(walltime.SlurmWalltimeMixin, QueuedStartMixin, ProfilePickerMixin, SlurmSpawner):
    """JupyterLab as a Slurm job, with the Academy's profiles, safety and visibility."""

    batch_script_file = Unicode(config=True, help="Path of the Jinja2 batch-script template (spawner_config/slurm.sh.j2).")
    python_env = Unicode(config=True, help="Absolute path of the shared Python environment on the compute nodes.")
    homes_dir = Unicode("", config=True, help="Parent of user homes on the shared filesystem; empty: the passwd home.")
    exec_prefix = Unicode(
        "runuser -u {username} --", config=True,
        help="How the hub runs commands as the learner (split with shlex, no shell), e.g. 'sudo -E -u {username}' "
             "with a sudoers rule for sbatch, scancel, mkdir and tail.",
    )
    query_interval = Float(5.0, config=True, help="Seconds between batched squeue queries covering every server.")
    startup_query_interval = Float(1.0, config=True, help="Query interval while some server is starting or stopping.")
    query_timeout = Float(30.0, config=True, help="Seconds before a Slurm command counts as 'controller unreachable'.")
    availability_cache_seconds = Float(10.0, config=True, help="How long free-GPU figures on the form are reused.")
    log_tail_lines = Integer(20, config=True, help="Lines of the job log shown when a job dies before starting.")
    stop_wait_seconds = Float(10.0, config=True, help="How long stop() waits for Slurm to confirm the job ended.")
    ending_grace = Float(60.0, config=True, help="Seconds a job may stay COMPLETING before its server counts as gone.")
    cancel_journal = Unicode("", config=True, help="File of scancels Slurm has not taken yet (outage); kept across restarts.")
    jobrc = Unicode(".academy/jobrc.sh", config=True,
                    help="File in the learner's home the job sources before JupyterLab (e.g. module load); empty: none.")
    slurm_env_keep = List(
        Unicode(), ["PATH", "SLURM_CONF"], config=True,
        help="Hub environment variables passed to the learner's sbatch/scancel (not exported into the job).",
    )
    node_hosts = Dict(
        Unicode(), config=True, help="Slurm node name -> address the proxy should use; unlisted nodes use their name.",
    )
    last_stop_message = Unicode("", help="Why the last job ended behind the hub's back; shown on the next visit.")

    @default("poll_interval")
    def _default_poll_interval(self):
        # JupyterHub's own per-server poll only reads our cache; the poller notices ends sooner.
        return 10.0

    @default("req_homedir")
    def _default_req_homedir(self):
        return self.home()

    @default("env_keep")
    def _default_env_keep(self):
        # The hub's PATH and virtualenv mean nothing on a compute node; the script sets its own.
        return ["LANG", "LC_ALL", "JUPYTERHUB_SINGLEUSER_APP"]

    _poller: SlurmPoller | None = None
    _ready: bool = False
    _stopping: bool = False

    @property
    def poller(self) -> SlurmPoller:
        if self._poller is None:
            self._poller = shared_poller(self.query_interval, self.startup_query_interval, self.query_timeout,
                                         self.cancel_journal or None)
        return self._poller

    # -- identity and paths ---------------------------------------------------------------------
    @property
    def unix_user(self) -> str:
        return commands.unix_name(self.req_username)

    def home(self) -> str:
        if self.homes_dir:
            return os.path.join(self.homes_dir, self.unix_user)
        try:
            return pwd.getpwnam(self.unix_user).pw_dir
        except KeyError:
            raise JobFailed(
                f"There is no Unix account {self.unix_user!r} on the hub's node; Slurm runs each server as its "
                "owner, so an administrator has to create it first."
            ) from None

    def log_dir(self) -> str:
        return os.path.join(self.home(), ".academy", "logs")

    def log_path(self, job_id: str) -> str:
        return os.path.join(self.log_dir(), f"slurm-{commands.job_id(job_id)}.log")

    def user_env(self, env):
        env["USER"] = self.unix_user
        env["HOME"] = self.home()
        env["SHELL"] = "/bin/bash"
        return env

    def slurm_env(self) -> dict[str, str]:
        """Environment for the learner's sbatch: the server's variables plus what Slurm itself needs."""
        keep = {k: os.environ[k] for k in self.slurm_env_keep if k in os.environ}
        return {**self.get_env(), **keep}

    # -- vetted request -> batch script ---------------------------------------------------------
    def apply_spawn_request(self, request: SpawnRequest) -> None:
        super().apply_spawn_request(request)
        p = request.profile
        # Kept in batchspawner's req_* names for anything that reads them; nothing user-typed gets in.
        self.req_partition = p.partition or ""
        self.req_nprocs = str(p.cpus)
        self.req_memory = p.memory
        self.req_runtime = f"{request.hours:02d}:00:00"
        self.req_gres = p.gpus.gres if p.gpus else ""
        self.req_ngpus = str(p.gpus.count) if p.gpus else ""
        self.req_reservation = p.reservation or ""
        self.req_qos = p.qos or ""
        self.req_account = p.account or ""

    def get_req_subvars(self):
        # batchspawner would merge user_options in at submit time; ours are only the vetted req_* traits.
        return {name[4:]: getattr(self, name) for name in self.trait_names() if name.startswith("req_")}

    def batch_script_text(self, request: SpawnRequest) -> str:
        ctx = build_context(
            username=self.unix_user,
            home=self.home(),
            job_name=f"academy-{self.unix_user}",
            profile=request.profile,
            hours=request.hours,
            python_env=self.python_env,
            command=[f"{self.python_env.rstrip('/')}/bin/batchspawner-singleuser",
                     f"{self.python_env.rstrip('/')}/bin/jupyterhub-singleuser", *self.get_args()],
            export=list(self.get_env()),
            log_dir=self.log_dir(),
            curriculum_source=self.curriculum_source, curriculum_target=self.curriculum_target, jobrc=self.jobrc,
        )
        return render(self.batch_script_file, ctx)

    async def run_command(self, cmd, input=None, env=None):
        """Every command of this spawner goes through here (and so through the replay tests)."""
        return await commands.run_command(cmd, input=input, env=env, timeout=self.query_timeout)

    def as_user(self, *argv: str) -> str:
        return commands.user_command(self.exec_prefix, self.unix_user, *argv)

    async def submit_batch_script(self) -> str:
        request = self.spawn_request
        if request is None:
            raise JobFailed("No vetted spawn request: choose a profile on the spawn page")
        try:
            script = self.batch_script_text(request)
        except ScriptError as exc:
            raise JobFailed(f"The batch script could not be prepared: {exc}") from None
        env = self.slurm_env()
        if not os.path.isdir(self.log_dir()):  # Slurm cannot create the --output directory itself
            made = await self.run_command(self.as_user("mkdir", "-p", "-m", "700", self.log_dir()), env=env)
            if not made.ok:
                raise JobFailed(f"Could not create {self.log_dir()} as {self.unix_user}: {made.message}")
        result = await self.run_command(self.as_user("sbatch", "--parsable"), input=script, env=env)
        if not result.ok:
            raise JobFailed(f"Slurm refused the job: {result.message}")
        self.job_id = commands.job_id(result.stdout.strip().splitlines()[-1].split(";")[0].strip())
        self.log.info("Submitted Slurm job %s for %s (profile %s, %d h)", self.job_id, self.unix_user,
                      request.profile.slug, request.hours)
        self._save_state()
        return self.job_id

    def _save_state(self) -> None:
        """Persist the job id at once, so a hub that dies mid-spawn still knows to cancel it."""
        orm_spawner = getattr(self, "orm_spawner", None)
        session = inspect(orm_spawner).session if orm_spawner is not None else None
        if session is not None:
            orm_spawner.state = self.get_state()
            session.commit()

    # -- start ----------------------------------------------------------------------------------
    def report_port(self, port: int) -> None:
        """Called by ``port_api`` with a validated port from the job."""
        self.port = port
        self._port_time = time.monotonic()
        self._port_event.set()

    async def start(self):
        self.last_stop_message = ""
        self._ready = False
        self.ip = self.traits()["ip"].default_value
        self.port = 0
        if self.server:
            self.server.port = 0
        self._port_event = asyncio.Event()
        self._port_time = 0.0
        poller = self.poller
        poller.hurry(self)
        try:
            submit = asyncio.ensure_future(self.submit_batch_script())
            try:
                job_id = await asyncio.shield(submit)
            except asyncio.CancelledError:
                # Start timed out during sbatch: cancel the job as soon as its id is known.
                submit.add_done_callback(lambda t: t.exception() or asyncio.ensure_future(self._cancel(t.result())))
                raise
            self._track(job_id)
            host = await self._wait_for_port(job_id)
            await self._wait_for_listen(job_id, host)
        finally:
            poller.relax(self)
        self._ready = True
        self.log.info("Slurm job %s for %s serves on %s:%s", self.job_id, self.unix_user, host, self.port)
        return host, self.port

    async def _wait_for_port(self, job_id: str) -> str:
        while True:
            view = self.poller.view(job_id)
            if view.phase is Phase.ENDED:
                raise await self._start_failure(view)
            if self._port_event.is_set():
                if view.phase is Phase.RUNNING and view.info and view.info.node and view.checked >= self._port_time:
                    return self.node_hosts.get(view.info.node, view.info.node)
                if view.checked >= self._port_time:  # asked since, but no node yet (outage): next round
                    await self.poller.wait_update(self.startup_query_interval * 2)
                else:
                    await self.poller.refresh(newer_than=self._port_time)
                continue
            port_wait = asyncio.ensure_future(self._port_event.wait())
            tick = asyncio.ensure_future(self.poller.wait_update(self.startup_query_interval * 2))
            await asyncio.wait([port_wait, tick], return_when=asyncio.FIRST_COMPLETED)
            for task in (port_wait, tick):
                task.cancel()

    async def _wait_for_listen(self, job_id: str, host: str) -> None:
        """Return once the server accepts connections, failing fast if the job ends first."""
        deadline = time.monotonic() + self.http_timeout
        while time.monotonic() < deadline:
            view = self.poller.view(job_id)
            if view.phase is Phase.ENDED:
                raise await self._start_failure(view)
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, self.port), 2)
                writer.close()
                return
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.05)
        raise JobFailed(f"JupyterLab in Slurm job {job_id} reported port {self.port} on {host} but did not accept "
                        f"connections within {self.http_timeout:.0f} s; see ~/.academy/logs/slurm-{job_id}.log")

    async def _start_failure(self, view: JobView) -> JobFailed:
        path = self.log_path(view.job_id)
        # Read as the learner, never as root: a symlink planted at that path must not expose hub files.
        tail = await self.run_command(self.as_user("tail", "-n", str(self.log_tail_lines), "--", path),
                                      env=self.slurm_env())
        lines = [line[:300] for line in tail.stdout.splitlines()] if tail.ok else []
        self.log.warning("Slurm job %s of %s ended before its server started: %s", view.job_id, self.unix_user,
                         view.info.state if view.info else view.note)
        self.clear_state()
        return JobFailed(messages.start_failed(view, path, bool(lines)), "\n".join(lines))

    async def progress(self):
        async for event in self.queue_progress():  # the hub's own start queue comes before Slurm's
            yield event
        last = None
        while True:
            view = self.poller.view(self.job_id) if self.job_id else None
            request = self.spawn_request
            pct, text = messages.progress(view, request.profile.partition if request else None,
                                          getattr(self, "_port_time", 0.0) > 0)
            if text != last:
                yield {"progress": pct, "message": text}
                last = text
                continue  # the state may have moved on while the consumer held us
            await self.poller.wait_update(self.startup_query_interval * 2)

    # -- poll, end, stop ------------------------------------------------------------------------
    def _job_ended(self, view: JobView) -> None:
        """Poller callback: a job ended behind the hub's back; tell JupyterHub now, not at its next poll."""
        if self._spawn_pending or self._stop_pending or self._stopping or self._check_pending or not self._ready:
            return  # start(), stop() and the hub's start-up check each handle the end themselves
        self.last_stop_message = messages.ended(view)
        asyncio.ensure_future(self.poll_and_notify())

    async def poll(self):
        job_id = self.job_id
        if not job_id:
            return 0
        poller = self.poller
        if not poller.is_tracked(job_id):
            self._track(job_id)
        if poller.view(job_id).checked < getattr(self, "_tracked_at", 0.0):
            await poller.refresh(newer_than=self._tracked_at)
            if self.job_id != job_id:  # a concurrent poll already handled this job's end
                return 1
        view = poller.view(job_id)
        stuck = view.phase is Phase.ENDING and time.monotonic() - view.since > self.ending_grace
        if view.phase is Phase.ENDED or stuck:
            if self._ready or self._check_pending:
                self.last_stop_message = messages.ended(view)
            self.clear_state()
            return 1
        if self._check_pending and not self._ready:
            # The hub restarted while this job was still starting: nobody waits for it any more.
            self.log.warning("Cancelling Slurm job %s: the hub restarted during its spawn", job_id)
            await self._cancel(job_id)
            self.last_stop_message = "The hub restarted while your server was starting; please start it again."
            self.clear_state()
            return 1
        return None

    async def _cancel(self, job_id: str) -> bool:
        """scancel as the learner; on a controller outage keep retrying in the background. True if accepted."""
        cmd = self.as_user("scancel", commands.job_id(job_id))
        result = await self.run_command(cmd, env=self.slurm_env())
        if result.ok or any(s in result.stderr for s in ALREADY_GONE):
            return True
        self.log.warning("scancel %s failed (%s); retrying until Slurm accepts it", job_id, result.message)
        self.poller.cancel_later(job_id, cmd)
        if not (result.timed_out or UNREACHABLE_RE.search(result.message)):
            self.log.error("Unexpected scancel error for job %s: %s", job_id, result.message)
        return False

    async def stop(self, now=False):
        job_id = self.job_id
        if not job_id or self.poller.view(job_id).phase in (Phase.ENDED, Phase.ENDING):
            return
        self.log.info("Stopping Slurm job %s of %s", job_id, self.unix_user)
        self._stopping = True
        poller = self.poller
        try:
            if not await self._cancel(job_id) or now:
                return
            poller.hurry(self)
            deadline = time.monotonic() + self.stop_wait_seconds
            # ENDING is enough: the cancel was accepted and Slurm is killing what is left.
            done = (Phase.ENDED, Phase.ENDING)
            while time.monotonic() < deadline and poller.view(job_id).phase not in done:
                await poller.refresh()
                if poller.view(job_id).phase not in done:
                    await asyncio.sleep(self.startup_query_interval)
        finally:
            poller.relax(self)
            self._stopping = False

    # -- state ----------------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        if self.last_stop_message:
            state["last_stop_message"] = self.last_stop_message
        if self._ready and self.job_id:
            state["ready"] = True
        return state

    def load_state(self, state):
        super().load_state(state)
        self.last_stop_message = state.get("last_stop_message", "")
        self._ready = bool(state.get("ready"))
        if self.job_id:
            # Track now, not at the first poll: after a hub restart every spawner is loaded before
            # any is polled, so their first check shares one query.
            self._track(self.job_id)

    def _track(self, job_id: str) -> None:
        self._tracked_at = time.monotonic()
        self.poller.track(job_id, on_end=self._job_ended)

    def clear_state(self):
        # last_stop_message survives on purpose: the learner reads it after the server is gone.
        if self.job_id:
            self.poller.untrack(self.job_id)
        super().clear_state()
        self._ready = False

    # -- form -----------------------------------------------------------------------------------
    async def profile_availability(self, profiles):
        return await shared_availability(self.availability_cache_seconds).for_profiles(profiles)

    async def _render_form(self, **link) -> str:
        form = await super()._render_form(**link)  # link: a one-click link's preselection (picker)
        if self.last_stop_message:
            notice = html.escape(self.last_stop_message)
            form = f'<p class="alert alert-warning academy-last-stop" role="alert">{notice}</p>\n{form}'
        return form
