"""Worker subprocess: execute ONE notebook with papermill (``engine``) and write what happened as JSON.

Run as ``python -m academy.curriculum.worker SPEC.json`` by ``runner``; it lives in its
own process so the runner can kill it and its kernel when the notebook hangs. The spec
names the input and output notebooks, the working directory, the parameters and where
to write the result (``{"ok": bool, "error": {...} | null}``).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

from academy.batchimports import skip_iri_grammar

skip_iri_grammar()  # before papermill imports jsonschema: about 0.7 s per notebook otherwise


def _failure(ename: str, evalue: str, tb: list[str], cell_index: int | None = None, source: str | None = None) -> dict:
    return {
        "ok": False,
        "error": {"ename": ename, "evalue": evalue, "traceback": tb, "cell_index": cell_index, "source": source},
    }


def execute(spec: dict) -> dict:
    """Run the notebook the spec names; never raise, describe the failure instead."""
    try:
        from jupyter_client.kernelspec import NoSuchKernel
        from papermill.exceptions import PapermillExecutionError

        from academy.curriculum import engine
        from academy.promptkernel import PromptKernelManager
    except ImportError as exc:
        return _failure(type(exc).__name__, str(exc), traceback.format_exc().splitlines())
    poll_in_slices()
    try:
        engine.execute(
            spec["input"],
            spec["output"],
            parameters=spec.get("parameters") or None,
            cwd=spec["cwd"],
            kernel_name=spec.get("kernel"),
            start_timeout=spec.get("start_timeout", 60),
            # No idle waits around the kernel's start and stop; the runner cleans up the process tree.
            kernel_manager_class=PromptKernelManager,
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as exc:
        return _failure(exc.ename, exc.evalue, list(exc.traceback or []), exc.cell_index, exc.source)
    except NoSuchKernel as exc:
        return _failure("NoSuchKernel", f"kernel {exc.name!r} is not installed here; run with --kernel NAME to use another", [])
    except Exception as exc:  # a dead kernel must reach the report too
        return _failure(type(exc).__name__, str(exc), traceback.format_exc().splitlines())
    return {"ok": True, "error": None}


def poll_in_slices() -> None:
    """Wait for kernel messages in one-second slices instead of one unbounded zmq poll.

    Under load, papermill (nbclient) sometimes waited forever on a widget-explorer cell
    whose kernel was idle and still answering requests, i.e. the reply had been sent
    (cf. jupyter/nbclient#312). An unbounded asyncio zmq poll can miss its wake-up; a
    fresh poll checks the socket's pending events first, so slicing recovers within a
    second. Only this worker process is changed, through the channel's public get_msg.
    """
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "_academy_sliced", False):
        return

    async def get_msg(self, timeout: float | None = None) -> dict:
        if timeout is not None:
            return await original(self, timeout)
        while True:
            try:
                return await original(self, 1.0)
            except Empty:
                continue

    get_msg._academy_sliced = True  # type: ignore[attr-defined]
    AsyncZMQSocketChannel.get_msg = get_msg  # type: ignore[method-assign]


def _die_with_parent(parent: int) -> None:
    """Exit (taking the kernel along) if the runner disappears, e.g. a CI job killed with SIGKILL."""
    while os.getppid() == parent:
        time.sleep(1.0)
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            child.kill()
    finally:
        os._exit(3)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m academy.curriculum.worker SPEC.json", file=sys.stderr)
        return 2
    threading.Thread(target=_die_with_parent, args=(os.getppid(),), daemon=True).start()
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = execute(spec)
    tmp = Path(spec["result"]).with_suffix(".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, spec["result"])  # the runner must never read half a result
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
