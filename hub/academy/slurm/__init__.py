"""Slurm for the whole academy: the shell-free command runner, job states, batch-script templates and waiting.

The spawner (:mod:`academy.spawners.slurm`), the workshop (reservations, teardown) and the course's
grading array all reach Slurm through :mod:`academy.slurm.commands`, so every command has a timeout,
no shell, and one place where tests replay it.
"""
