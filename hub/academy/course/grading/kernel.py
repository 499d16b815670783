"""nbgrader's Execute step, with the kernel started inside the sandbox and its output capped.

:class:`SandboxKernelManager` is a jupyter_client kernel manager whose launch command is the
:class:`~academy.course.grading.sandbox.SandboxPolicy` command around ``python -m ipykernel_launcher``.  It
ignores installed kernelspecs (only the names in ``allowed_kernels`` are accepted, all meaning the
grader's own Python), copies the notebook's directory (sub-folders too, never links) into a private
working copy owned by the sandbox account, talks to the kernel over ``ipc`` sockets, interrupts it by
message (``SIGINT`` from outside cannot cross the sandbox's session), and kills it when the notebook's
wall-time budget runs out.  Files the kernel writes never flow back into the course: the working copy
is deleted with the kernel, so nothing a student's code writes (for example a copy of a hidden test)
reaches feedback.

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
from traitlets import Bool, Integer, List, TraitError, Unicode, default, validate

from jupyter_core.utils import run_sync
from nbgrader.preprocessors import Execute

from academy.promptkernel import PromptKernelManager

from academy.course.grading import integrity
from academy.course.grading.confine import SAFE_PATH
from academy.course.grading.limits import SubmissionGroup
from academy.course.grading.sandbox import SandboxPolicy, copy_workdir


#: Bytes of a kernel's own stdout/stderr kept in the job's kernel log (bwrap errors fit easily).
KERNEL_LOG_BYTES = 64 * 1024


def _drain(fd: int, path: str) -> None:
    """Copy the first KERNEL_LOG_BYTES of a kernel's stdout/stderr to its log, discard the rest until EOF."""
    kept = 0
    with os.fdopen(fd, "rb", buffering=0) as pipe, open(path, "ab") as log:
        while chunk := pipe.read(65536):
            if kept < KERNEL_LOG_BYTES:
                log.write(chunk[:KERNEL_LOG_BYTES - kept])
                log.flush()
                kept += len(chunk)


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
    run_tag = Unicode(
        "", help="Tag of the grading run in the names of its cgroups, so the parent can sweep what a crash left."
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
        self._group: SubmissionGroup | None = None
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
            # The whole folder, as stock nbgrader's kernel sees it (data in sub-folders included).
            copy_workdir(host_cwd, work, user, self.policy.max_workdir_files, self.policy.scratch_size)
        self._work, self._ipc = work, ipc
        if self.policy.use_cgroups and SubmissionGroup.available():
            self._group = SubmissionGroup(self.run_tag)
            self._group.apply_submission(self.policy.memory_limit, self.policy.max_processes, self.policy.cpus)
        self.ip = os.path.join(ipc, "k")
        self.connection_file = os.path.join(ipc, "kernel.json")

    async def _async_pre_start_kernel(self, **kw):
        self._make_box(kw.get("cwd"))
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        inner = super().format_kernel_cmd(extra_arguments)
        os.chown(self.connection_file, self._user.uid, self._user.gid)
        env = {"NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
        procs = self._group.procs_files() if self._group else None
        return self.policy.command(inner, user=self._user, workdir=self._work, ipc_dir=self._ipc, env=env,
                                   cgroup_procs=procs)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        # Not even the sandbox's init process may hold the grader's environment (tokens, database URLs):
        # confine.py starts from this and execs with PATH alone; bwrap then sets the kernel's own.
        kw["env"] = {"PATH": SAFE_PATH}
        if self.kernel_log:
            # A pipe, not the log file itself: the kernel keeps its stdout/stderr descriptors, and student
            # code must not hold a writable descriptor of a grader file (it could fill the grader's disk).
            read_end, write_end = os.pipe()
            kw["stdout"] = kw["stderr"] = write_end
            try:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                os.close(write_end)
            threading.Thread(target=_drain, args=(read_end, self.kernel_log), daemon=True).start()
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
        if restart:
            return
        self.release_sandbox()

    def release_sandbox(self) -> None:
        """Kill what is left of the sandbox, record its usage and delete its folder; safe to call twice."""
        if self._group is not None:
            group, self._group = self._group, None
            try:
                self._record(group.end_with_usage().to_event())
            except OSError:
                pass
        if self._box:
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

    max_errors = Integer(
        50, help="Error outputs kept per notebook beyond the first of each cell (tracebacks are shortened too)."
    ).tag(config=True)
    max_traceback_lines = Integer(20, help="Traceback entries kept per error (the last ones).").tag(config=True)
    max_error_chars = Integer(2000, help="Characters kept per traceback entry and per error message.").tag(
        config=True)
    check_integrity = Bool(
        True, help="Check and restore what tests rely on before and after each test cell; flag changes."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)
        self._kept = 0
        self._truncated = False
        self._errors = 0
        self._set_up = False

    def preprocess(self, nb, resources=None, km=None):
        self._kept, self._truncated, self._errors, self._set_up = 0, False, 0, False
        return super().preprocess(nb, resources, km=km)

    def preprocess_cell(self, cell, resources, index):
        meta = cell.metadata.get("nbgrader", {})
        is_test = cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")
        if not (self.check_integrity and cell.cell_type == "code"):
            return super().preprocess_cell(cell, resources, index)
        if not self._set_up:  # before the first code cell: no student code has run yet
            self._set_up = True
            run_sync(self._silent)(integrity.SETUP)
        if is_test:
            self._flag(meta.get("grade_id", f"cell {index}"), "before",
                       integrity.parse(run_sync(self._silent)(integrity.CHECK, integrity.RESULT_EXPR)))
        cell, resources = super().preprocess_cell(cell, resources, index)
        if is_test:
            changes = integrity.parse(run_sync(self._silent)(integrity.CHECK, integrity.RESULT_EXPR))
            if changes:
                self._flag(meta.get("grade_id", f"cell {index}"), "during", changes)
                # Its own run changed what it relies on: its verdict cannot be trusted, so it fails.
                cell.outputs.append(new_output("error", ename="IntegrityError", evalue=(
                    "this test cell's run changed what tests rely on: " + "; ".join(changes))[:1000],
                    traceback=["IntegrityError: the test environment was changed while this test ran"]))
        return cell, resources

    async def _silent(self, code: str, expression: str | None = None):
        exprs = {"r": expression} if expression else {}
        try:
            msg_id = self.kc.execute(code, silent=True, store_history=False, user_expressions=exprs)
            return await self.async_wait_for_reply(msg_id)
        except Exception:  # noqa: BLE001 - a dead or hung kernel: the cell itself will report it
            return None

    def _flag(self, grade_id: str, when: str, changes: list[str]) -> None:
        if changes and isinstance(self.km, SandboxKernelManager):
            self.km._record({"event": "tampering", "cell": grade_id, "when": when, "changes": changes})

    def _shorten_error(self, content: dict) -> dict:
        n = self.max_error_chars
        return dict(content, ename=str(content.get("ename", ""))[:200], evalue=str(content.get("evalue", ""))[:n],
                    traceback=[str(t)[:n] for t in list(content.get("traceback", []))[-self.max_traceback_lines:]])

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        kind = msg["msg_type"]
        if kind == "error":  # errors are always shortened and counted: their number and size are capped too
            has_error = any(o.get("output_type") == "error" for o in outs)
            if has_error and self._errors >= self.max_errors:
                return None
            self._errors += 1
            if "No space left on device" in str(content.get("evalue", "")) and isinstance(self.km, SandboxKernelManager):
                self.km._record({"event": "scratch_full", "limit": self.km.policy.scratch_size})
            msg = dict(msg, content=self._shorten_error(content))
            content = msg["content"]
        size = len(json.dumps(content, default=str))
        if self._kept + size <= self.max_output_bytes:
            self._kept += size
            return super().output(outs, msg, display_id, cell_index)
        if not self._truncated:
            self._truncated = True
            # stdout, not stderr: nbgrader scores a grade cell with any stderr output as failed.
            outs.append(new_output("stream", name="stdout", text=(
                f"\n[grader] output truncated: this notebook printed more than {self.max_output_bytes} bytes\n")))
        # Over the cap, one error and one bit of stderr per cell are still kept (shortened): they decide
        # scores, so flooding the output must never make a failing test look like a passing one.
        if kind == "error" and not any(o.get("output_type") == "error" for o in outs):
            return super().output(outs, msg, display_id, cell_index)
        if kind == "stream" and content.get("name") == "stderr" and not any(
                o.get("output_type") == "stream" and o.get("name") == "stderr" for o in outs):
            short = dict(content, text=str(content.get("text", ""))[:1000])
            return super().output(outs, dict(msg, content=short), display_id, cell_index)
        return None
