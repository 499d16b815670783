"""``academy.labtools``: the Jupyter server extension that tells a learner where their session runs.

It serves resources (memory and CPU against the job's or cgroup's limits, per-GPU figures from
NVML), notices for the learner (the culler's warning), kernel and GPU activity for the culler, and
own environments (:mod:`academy.envs`) to the Academy lab extension; routes in
:mod:`academy.labtools.handlers`, the workshop's announcements in :mod:`academy.labtools.announcements`,
and the Launcher's New project in :mod:`academy.labtools.projects`.  Enabled in ``hub/singleuser/jupyter_server_config.json``.
"""
from __future__ import annotations

import collections
import os

from tornado.ioloop import PeriodicCallback
from traitlets import Float, Int, Unicode
from traitlets.config import Configurable

from academy.labtools.gpus import GpuSampler, load_source
from academy.labtools.limits import CpuMeter

NO_GPU_NOTE = "no GPU in this profile"


class AcademyLabTools(Configurable):
    """Settings of the server extension (``c.AcademyLabTools.*`` in a Jupyter server config)."""

    gpu_source_class = Unicode(
        "nvml",
        config=True,
        help="Where GPU figures come from: 'nvml' (nvidia-ml-py), or 'module.Class' with a readings() method.",
    )
    gpu_sample_seconds = Float(
        10.0, config=True, help="Seconds between GPU readings (they also decide whether the GPU counts as busy)."
    )
    gpu_busy_percent = Float(
        10.0, config=True, help="A GPU at or above this utilisation counts as busy, which keeps the server from culling."
    )
    max_notices = Int(20, config=True, help="Notices kept for the learner; older ones drop out.")
    max_notice_length = Int(1000, config=True, help="Longest notice message accepted, in characters.")


class LabToolsState:
    """What the handlers share: config, GPU sampler, CPU meter, notices and env creation jobs."""

    def __init__(self, config_obj: AcademyLabTools, log) -> None:
        self.config_obj = config_obj
        self.log = log
        self.cpu = CpuMeter()
        self.notices: collections.deque = collections.deque(maxlen=config_obj.max_notices)
        self.env_jobs: dict[str, str] = {}
        self.sampler: GpuSampler | None = None
        self.gpu_problem: str | None = None
        # The spawner exports the profile's GPU count; "0" is a CPU profile, absent is "ask NVML".
        self.profile_gpus = os.environ.get("ACADEMY_GPUS")
        if self.profile_gpus == "0":
            return
        try:
            self.sampler = GpuSampler(load_source(config_obj.gpu_source_class), config_obj.gpu_busy_percent)
            self.sampler.sample()
        except Exception as exc:  # no driver, no library: the session simply has no GPU view
            self.gpu_problem = f"no GPU visible to this session ({exc.__class__.__name__}: {exc})"
            self.sampler = None

    def gpu_view(self) -> tuple[list[dict], str | None]:
        if self.profile_gpus == "0":
            return [], NO_GPU_NOTE
        if self.sampler is None:
            return [], self.gpu_problem
        self.sampler.sample()
        if not self.sampler.latest:
            return [], self.sampler.error or "no GPU visible to this session"
        mig = any(g.mig for g in self.sampler.latest)
        note = self.sampler.error or ("MIG slice: NVML reports its memory, not its utilisation or energy" if mig else None)
        return self.sampler.as_json(), note


def _jupyter_server_extension_points():
    return [{"module": "academy.labtools"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from academy.labtools.handlers import routes

    config_obj = AcademyLabTools(parent=serverapp)
    state = LabToolsState(config_obj, serverapp.log)
    web_app = serverapp.web_app
    web_app.settings["academy_labtools"] = state
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    from academy.labtools.announcements import routes as announcement_routes  # issue #10: workshop announcements
    web_app.add_handlers(".*$", announcement_routes(web_app.settings["base_url"]))
    from academy.labtools.projects import routes as project_routes  # issue #13: New project from a template
    web_app.add_handlers(".*$", project_routes(web_app.settings["base_url"]))
    from academy.labtools.teams import install as install_teams  # issue #13: team folders' disk use
    install_teams(web_app)
    from academy.labtools.budget import install as install_budget  # issue #13: GPU-hours used and left
    install_budget(web_app)
    if state.sampler is not None:
        state.poller = PeriodicCallback(state.sampler.sample, config_obj.gpu_sample_seconds * 1000)
        state.poller.start()
    serverapp.log.info("academy.labtools: resources, notices, activity and envs API loaded (GPU: %s)",
                       state.gpu_problem or (NO_GPU_NOTE if state.profile_gpus == "0" else config_obj.gpu_source_class))
