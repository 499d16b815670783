"""Spawners: a shared profile picker, the local-process backend and the Slurm backend."""
