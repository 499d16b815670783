"""The curriculum regression runner: lint notebooks, execute them in parallel with papermill, report.

``academy curriculum test`` is the entry point (see ``cli``); ``run_notebooks`` is the
library call behind it. The parent process never imports torch or papermill: each
notebook runs in its own worker subprocess (``worker``) so a hung kernel can be killed.
"""
from academy.curriculum.results import NotebookResult, RunOptions, Status

__all__ = ["NotebookResult", "RunOptions", "Status", "run_notebooks"]


def run_notebooks(*args, **kwargs):  # noqa: D103 - thin lazy re-export keeps ``import academy.curriculum`` cheap
    from academy.curriculum.runner import run_notebooks as _run

    return _run(*args, **kwargs)
