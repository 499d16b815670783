"""A kernel manager and client for batch runs: no idle waits around each kernel's start and stop.

jupyter_client's client waits until IOPub has been silent for 0.2 s before it calls a kernel ready,
and its manager polls every 0.1 s for a killed kernel to be gone.  Interactive use never notices;
a batch that starts one kernel per notebook (the curriculum runner, the autograder) spends those
waits doing nothing, hundreds of times.  nbclient matches every IOPub message to the request that
caused it and skips the rest, so start-up chatter cannot land in a cell's output: draining what has
already arrived is enough.
"""
from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's client, minus the 0.2 s of IOPub silence it waits for at the end of ``wait_for_ready``."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:  # IOPub must be connected too, or the first cell's output could be lost: retry
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0)
            except Empty:
                break


class PromptKernelManager(AsyncKernelManager):
    """An async kernel manager that hands out :class:`PromptKernelClient` and notices a killed kernel at once."""

    @default("client_class")
    def _default_client_class(self):
        return "academy.promptkernel.PromptKernelClient"

    @default("client_factory")
    def _default_client_factory(self):
        return PromptKernelClient

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # Upstream polls every 0.1 s for a killed kernel to go; it is gone within milliseconds.
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))
