"""Spawners: what both backends share (profile picker, options, start queue, More time) above ``local/`` and ``slurm/``."""
