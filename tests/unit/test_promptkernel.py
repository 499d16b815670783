"""The batch runners' kernel manager (academy.promptkernel) with real kernels: nothing lost by not waiting."""
from __future__ import annotations

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from support.process import exited

from academy.promptkernel import PromptKernelClient, PromptKernelManager


def _run(cells: list[str]) -> tuple[nbformat.NotebookNode, PromptKernelManager]:
    """Run cells as the batch runners do: nbclient owns (starts and kills) a PromptKernelManager kernel."""
    nb = new_notebook(cells=[new_code_cell(src) for src in cells])
    client = NotebookClient(nb, kernel_name="python3", timeout=60, kernel_manager_class=PromptKernelManager,
                            shutdown_kernel="immediate")
    seen = {}
    client.on_notebook_start = lambda **_: seen.setdefault("km", client.km)
    client.execute()
    return nb, seen["km"]


def test_first_cell_gets_exactly_its_own_output():
    """Without the wait for IOPub silence, does every run's first cell still get all of its output and nothing else?"""
    for _ in range(5):
        nb, km = _run(["print('first')", "import sys; print('second', file=sys.stderr); 6 * 7"])
        assert isinstance(km, PromptKernelManager) and km.client_factory is PromptKernelClient
        first, second = nb.cells
        assert [(o.output_type, o.get("text")) for o in first.outputs] == [("stream", "first\n")]
        assert first.execution_count == 1
        # A busy kernel may flush one print in two stream messages ("second", then "\n"): count text, not messages.
        streams = [o for o in second.outputs if o.output_type == "stream"]
        assert "".join(o.text for o in streams) == "second\n" and {o.name for o in streams} == {"stderr"}
        results = [o for o in second.outputs if o.output_type != "stream"]
        assert [o.output_type for o in results] == ["execute_result"] and results[0].data["text/plain"] == "42"
        assert second.outputs[-1] is results[0], "the stream came before the result"


def test_immediate_shutdown_leaves_no_kernel_behind():
    """Is the kernel process gone once the notebook has run?"""
    nb, km = _run(["import os; print(os.getpid())"])
    pid = int(nb.cells[0].outputs[0].text)
    assert exited(pid), f"kernel {pid} still running"
