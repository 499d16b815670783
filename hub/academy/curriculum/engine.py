"""papermill for regression runs: one notebook executed with nbclient-level cost per cell, as Jupyter would run it.

Kept from papermill: parameter injection and its output format (``metadata.papermill``,
the ``injected-parameters`` cell). Changed for a regression run:

* no save of the whole output notebook after every cell (``request_save_on_cell_execute``),
  no autosave and no progress bar: a long notebook is no longer quadratically slower;
  the notebook is written once at the end, or on SIGTERM from the runner at a timeout,
  so the cell that was running is still known;
* the injected parameters run without entering the kernel's history, so execution counts
  are the notebook's own (1 for its first code cell, as in JupyterLab);
* an error in a cell tagged ``raises-exception`` is expected (as in nbmake, Jupyter Book
  and nbclient itself); ``skip-execution`` cells are skipped by nbclient.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from nbclient.util import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.execute import prepare_notebook_metadata, remove_error_markers
from papermill.iorw import load_notebook_node, write_ipynb
from papermill.parameterize import parameterize_notebook

ENGINE_NAME = "academy-regression"
INJECTED_TAG = "injected-parameters"
RAISES_TAG = "raises-exception"
SNAPSHOT_EXIT = 143  # the worker's exit code after writing its snapshot on SIGTERM
_running: dict[str, Any] = {}  # the notebook in execution and where it goes, for the SIGTERM snapshot


class RegressionClient(PapermillNotebookClient):
    """papermill's client, with the injected-parameters cell kept out of the execution counts."""

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        injected = INJECTED_TAG in cell.metadata.get("tags", [])
        cell = await super().async_execute_cell(cell, cell_index, execution_count, not injected and store_history)
        if injected:
            cell.execution_count = None  # it never entered the history; a number here would repeat the next cell's
        return cell

    # nbclient binds the synchronous wrapper to its own coroutine; rebind it to ours.
    execute_cell = run_sync(async_execute_cell)


class RegressionEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`RegressionClient`, saving nothing per cell."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=False, log_output=False, autosave_cell_every=0, **kwargs):
        # output_path=None: papermill's manager then never writes the notebook cell by cell.
        return super().execute_notebook(nb, kernel_name, None, False, log_output, 0, **kwargs)

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
        _running["nb"] = nb_man.nb
        kwargs.pop("input_path", None)
        return RegressionClient(
            nb_man, kernel_name=kernel_name, startup_timeout=start_timeout, log_output=log_output, **kwargs
        ).execute()


papermill_engines.register(ENGINE_NAME, RegressionEngine)


def has_parameters_cell(nb: Any) -> bool:
    return any(c.get("cell_type") == "code" and "parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells)


def first_error(nb: Any) -> PapermillExecutionError | None:
    """The first unexpected error output, as papermill reports it; ``raises-exception`` cells may fail."""
    for index, cell in enumerate(nb.cells):
        if RAISES_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            if output.get("ename") == "SystemExit" and output.get("evalue") in ("", "0"):
                continue
            return PapermillExecutionError(
                cell_index=index, exec_count=cell.get("execution_count"), source=cell.source,
                ename=output.ename, evalue=output.evalue, traceback=output.traceback,
            )  # fmt: skip
    return None


def _snapshot_on_sigterm(output_path: str) -> None:
    """At a timeout the runner sends SIGTERM: write what ran so far (the running cell is marked), then go."""

    def handler(signum, frame) -> None:
        nb = _running.get("nb")
        try:
            if nb is not None:
                tmp = Path(output_path).with_suffix(".partial.ipynb")
                write_ipynb(nb, str(tmp))
                os.replace(tmp, output_path)
        finally:
            os._exit(SNAPSHOT_EXIT)

    signal.signal(signal.SIGTERM, handler)


def execute(
    input_path: str,
    output_path: str,
    *,
    parameters: dict[str, Any] | None,
    cwd: str,
    kernel_name: str | None,
    start_timeout: float,
    **client_kwargs: Any,
) -> Any:
    """Run one notebook; raise ``PapermillExecutionError`` for the first unexpected cell error.

    Parameters are injected only into a notebook with a ``parameters`` cell: one without
    never asked for them. The output notebook is always written, also on failure.
    """
    _snapshot_on_sigterm(output_path)
    nb = load_notebook_node(input_path)
    kernelspec = nb.metadata.get("kernelspec", {})
    kernel = kernel_name or kernelspec.get("name") or "python3"
    if parameters and has_parameters_cell(nb):
        language = kernelspec.get("language") or nb.metadata.get("language_info", {}).get("name") or "python"
        nb = parameterize_notebook(nb, parameters, kernel_name=kernel, language=language, engine_name=ENGINE_NAME)
    nb = remove_error_markers(prepare_notebook_metadata(nb, input_path, output_path))
    old_cwd = os.getcwd()
    os.chdir(cwd)
    try:
        nb = papermill_engines.execute_notebook_with_engine(
            ENGINE_NAME, nb, kernel_name=kernel, input_path=input_path, start_timeout=start_timeout, **client_kwargs
        )
    finally:
        os.chdir(old_cwd)
        if _running.get("nb") is not None:
            write_ipynb(_running["nb"], output_path)
    error = first_error(nb)
    if error is not None:
        raise error
    return nb
