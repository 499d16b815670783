"""A stand-in for NVML, for tests only: GPU readings from a JSON file the test writes.

This machine (and CI) has no GPU, and GPU utilisation, memory and energy cannot be produced for real
without one. The server extension loads this class only when a test configures
``AcademyLabTools.gpu_source_class = "support.gpus.StandInGpus"``; production uses NVML
(``academy.labtools.gpus.NvmlSource``). The file is named by ``$ACADEMY_STANDIN_GPUS`` or, for a
learner's server, ``~/.standin-gpus.json``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from academy.labtools.gpus import GpuReading


class StandInGpus:
    def __init__(self) -> None:
        self.path = Path(os.environ.get("ACADEMY_STANDIN_GPUS") or Path.home() / ".standin-gpus.json")

    def readings(self) -> list[GpuReading]:
        rows = json.loads(self.path.read_text())
        return [GpuReading(index=i, mig=row.pop("mig", False), **row) for i, row in enumerate(rows)]
