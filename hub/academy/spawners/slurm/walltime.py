"""More time on Slurm: the hub (not the learner) raises the job's TimeLimit with ``scontrol update``.

Slurm lets a job's owner lower its limit but only an operator raise it, so the command runs as
the hub, through the same shell-free runner as every other Slurm command. The server inside the
job re-reads its end from ``squeue`` right after (``academy.lab.clock``).
"""
from __future__ import annotations

from academy.slurm import commands
from academy.spawners import walltime_api
from academy.spawners.walltime import WalltimeMixin, WalltimeRefused

walltime_api.install()


class SlurmWalltimeMixin(WalltimeMixin):
    """Mixed into ``AcademySlurmSpawner`` before the profile picker."""

    async def apply_walltime(self, total_hours: int) -> float | None:
        job = commands.job_id(self.job_id)
        result = await self.run_command(
            commands.hub_command("scontrol", "update", f"JobId={job}", f"TimeLimit={total_hours * 60}"))
        if not result.ok:
            raise WalltimeRefused(502, f"Slurm did not extend job {job}: {result.message}")
        return None  # Slurm's own end time is what counts; the server asks squeue for it
