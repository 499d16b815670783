"""nbgrader's Execute step, with the kernel started inside the sandbox and its output capped.

:class:`SandboxKernelManager` is a jupyter_client kernel manager whose launch command is the
:class:`~academy.course.sandbox.SandboxPolicy` command around ``python -m ipykernel_launcher``.  It
ignores installed kernelspecs (only the names in ``allowed_kernels`` are accepted, all meaning the
grader's own Python), copies the notebook's directory into a private working copy owned by the
sandbox account, talks to the kernel over ``ipc`` sockets, interrupts it by message (``SIGINT`` from
outside cannot cross the sandbox's session), and kills it when the notebook's wall-time budget runs
out.  Files the kernel writes never flow back into the course: the working copy is deleted with the
kernel, so nothing a student's code writes (for example a copy of a hidden test) reaches feedback.

:class:`SandboxExecute` is nbgrader's own ``Execute`` preprocessor using that manager, plus a hard cap
on the bytes of output kept per notebook so an infinite print loop cannot exhaust the grader's memory
in the seconds before the per-cell timeout interrupts it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from jupyter_client.kernelspec import KernelSpec, NoSuchKernel
from nbformat.v4 import new_output
from traitlets import Integer, List, TraitError, Unicode, default, validate

from nbgrader.preprocessors import Execute

from academy.promptkernel import PromptKernelManager

from .sandbox import SandboxPolicy


class SandboxKernelManager(PromptKernelManager):
    """Start each kernel as the sandbox user inside bubblewrap, with a per-notebook wall-time budget."""

    allowed_kernels = List(
        Unicode(), default_value=["python3", "python"],
        help="Kernelspec names accepted for grading; each runs the grader's Python in the sandbox.",
    ).tag(config=True)
    notebook_time_limit = Integer(
        300, help="Wall-clock seconds one notebook's kernel may live before it is killed."
    ).tag(config=True)
    sandbox_user = Unicode(
        "", help="Run kernels as this account instead of SandboxPolicy.user (the student's own under Slurm)."
    ).tag(config=True)
    event_log = Unicode(
        "", help="JSON-lines file where sandbox events (wall-time kills) are appended for the worker's report."
    ).tag(config=True)
    kernel_log = Unicode(
        "", help="File receiving the kernel's own stdout/stderr (bwrap errors land here); empty discards it."
    ).tag(config=True)
    scratch_root = Unicode(
        "", help="Directory for the per-kernel sandbox folders (default: the system temp directory)."
    ).tag(config=True)

    @validate("notebook_time_limit")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError("SandboxKernelManager.notebook_time_limit must be positive")
        return proposal["value"]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self._box: str | None = None
        self._watchdog: threading.Timer | None = None
        self.policy = SandboxPolicy(parent=self)

    @property
    def kernel_spec(self) -> KernelSpec:  # type: ignore[override]
        if self.kernel_name not in self.allowed_kernels:
            raise NoSuchKernel(f"{self.kernel_name} (kernelspec not allowed for grading; allowed: "
                               f"{', '.join(self.allowed_kernels)})")
        if self._kernel_spec is None:
            self._kernel_spec = KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3 (sandboxed)", language="python", interrupt_mode="message",
            )
        return self._kernel_spec

    def _make_box(self, host_cwd: str | None) -> None:
        user = self.policy.resolve_user(self.sandbox_user or None)
        self._user = user
        self._box = tempfile.mkdtemp(prefix="academy-sbx-", dir=self.scratch_root or None)
        os.chmod(self._box, 0o711)  # traversable, not listable: the sandbox account only reaches its own dirs
        work, ipc = os.path.join(self._box, "work"), os.path.join(self._box, "ipc")
        for path in (work, ipc):
            os.mkdir(path, 0o700)
            os.chown(path, user.uid, user.gid)
        if host_cwd and os.path.isdir(host_cwd):
            for name in sorted(os.listdir(host_cwd)):
                src = os.path.join(host_cwd, name)
                # Only plain files: a link in a submission must not make the grader copy what it points to.
                if os.path.isfile(src) and not os.path.islink(src):
                    dst = os.path.join(work, name)
                    shutil.copyfile(src, dst)
                    os.chown(dst, user.uid, user.gid)
        self._work, self._ipc = work, ipc
        self.ip = os.path.join(ipc, "k")
        self.connection_file = os.path.join(ipc, "kernel.json")

    async def _async_pre_start_kernel(self, **kw):
        self._make_box(kw.get("cwd"))
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        inner = super().format_kernel_cmd(extra_arguments)
        os.chown(self.connection_file, self._user.uid, self._user.gid)
        env = {"NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
        return self.policy.command(inner, user=self._user, workdir=self._work, ipc_dir=self._ipc, env=env)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        kw.pop("env", None)  # the grader's environment must not reach the kernel; bwrap sets its own
        if self.kernel_log:
            with open(self.kernel_log, "ab") as log:
                kw["stdout"] = kw["stderr"] = log
                await super()._async_launch_kernel(kernel_cmd, **kw)
        else:
            kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
            await super()._async_launch_kernel(kernel_cmd, **kw)
        self._watchdog = threading.Timer(self.notebook_time_limit, self._wall_time_exceeded)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _wall_time_exceeded(self) -> None:
        self._record({"event": "notebook_time_limit", "seconds": self.notebook_time_limit})
        pgid = getattr(self.provisioner, "pgid", None)
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)  # bwrap --die-with-parent takes the whole sandbox with it
            except ProcessLookupError:
                pass

    def _record(self, event: dict) -> None:
        if self.event_log:
            event = dict(event, time=time.time())
            with open(self.event_log, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(event) + "\n")

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await super()._async_cleanup_resources(restart=restart)
        if self._box and not restart:
            shutil.rmtree(self._box, ignore_errors=True)
            self._box = None


class SandboxExecute(Execute):
    """nbgrader's Execute, run in the sandbox, keeping at most ``max_output_bytes`` of output per notebook."""

    max_output_bytes = Integer(
        4 * 1024**2, help="Output bytes kept per notebook; the rest is dropped with one truncation notice."
    ).tag(config=True)

    @validate("max_output_bytes")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError("SandboxExecute.max_output_bytes must be positive")
        return proposal["value"]

    @default("shutdown_kernel")
    def _default_shutdown(self):
        # The kernel is done once the last cell's output is in, and its sandbox is deleted with it; a
        # graceful shutdown would only add up to a second of polling per notebook.
        return "immediate"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self._kept = 0
        self._truncated = False

    def preprocess(self, nb, resources=None, km=None):
        self._kept, self._truncated = 0, False
        return super().preprocess(nb, resources, km=km)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(json.dumps(content, default=str))
        if self._kept + size <= self.max_output_bytes:
            self._kept += size
            return super().output(outs, msg, display_id, cell_index)
        if not self._truncated:
            self._truncated = True
            # stdout, not stderr: nbgrader scores a grade cell with any stderr output as failed.
            outs.append(new_output("stream", name="stdout", text=(
                f"\n[grader] output truncated: this notebook printed more than {self.max_output_bytes} bytes\n")))
        # Over the cap, errors and one bit of stderr per cell are still kept (shortened): they decide scores,
        # so flooding the output must never make a failing test look like a passing one.
        kind = msg["msg_type"]
        if kind == "error":
            short = dict(content, evalue=str(content.get("evalue", ""))[:1000],
                         traceback=list(content.get("traceback", []))[-20:])
            return super().output(outs, dict(msg, content=short), display_id, cell_index)
        if kind == "stream" and content.get("name") == "stderr" and not any(
                o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs):
            short = dict(content, text=str(content.get("text", ""))[:1000])
            return super().output(outs, dict(msg, content=short), display_id, cell_index)
        return None
