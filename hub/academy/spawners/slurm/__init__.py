"""The Slurm backend: each learner's JupyterLab as a batch job (``spawner``) and the parts it is made of."""
