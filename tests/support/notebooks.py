"""Test helpers for the curriculum: the expected notebook list, and small synthetic notebooks on the skeleton."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
# The curriculum as NOTEBOOKS.md lists it; the track test fails in CI if any is missing.
EXPECTED = [
    "00_welcome", "01_python_numpy", "02_pandas_data", "03_classical_ml", "04_nn_from_scratch",
    "05_pytorch_fundamentals", "06_gpu_computing", "07_cnn_vision", "08_tiny_gpt", "09_embeddings_retrieval",
    "10_evaluation", "11_responsible_ai", "12_notebook_to_batch_job",
]  # fmt: skip
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def skeleton(
    number: int,
    title: str = "Synthetic lesson",
    *,
    content: str = "value = 1 + 1",
    learning_check: str = "assert value == 2, f'value {value} should be 2'\nreport(value=value, smoke=smoke)",
    exercise_check: str = "ex.check(answer)",
) -> nbformat.NotebookNode:
    """A notebook with every required section; ``content`` and ``learning_check`` are the variable parts."""
    md, code = new_markdown_cell, new_code_cell
    cells = [
        md(f"# {number:02d} · {title}\nA tiny lesson for testing the runner."),
        md("## Overview\n1. Run a cell\n2. Pass a check"),
        md("## Prerequisites\n| Concept | Importance | Notes |\n|---|---|---|\n| Python | Necessary | basics |\n\n**Time to learn**: 1 minutes"),
        code('smoke = False      # True: tiny CI-sized run\ndevice = "auto"', metadata={"tags": ["parameters"]}),
        md("## Imports"),
        code(
            "from academy.learn import exercise, pick_device, report\n"
            "ex = exercise('synthetic', 'double', hint='Multiply by two.', solution='`x * 2`')(lambda a: None if a == 2 else (_ for _ in ()).throw(AssertionError('Expected 2.')))\n"
            "answer = 2"
        ),
        md("## Content"),
        code(content),
        md("## Exercises\nHint/Solution buttons appear under each check."),
        code(exercise_check),
        code(exercise_check),
        md("## Learning check\nThe value must be two."),
        code(learning_check, metadata={"tags": ["learning-check"]}),
        md("## Summary\n- done"),
        md("## What's next\nNothing."),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"c{number:02d}-{i:02d}"
    return new_notebook(cells=cells, metadata={"kernelspec": KERNELSPEC})


def write(directory: Path, name: str, nb: nbformat.NotebookNode) -> Path:
    path = directory / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path
