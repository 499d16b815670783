#!/bin/bash
# Tabular model: run train.py as a Slurm batch job.
#
#   sbatch job.sh                 submit from this folder (the job works in the folder you submit from)
#   sbatch job.sh --smoke         arguments after job.sh go to train.py
#   squeue --me                   follow it; its log is slurm-JOBID.out, its result results/job-JOBID.json
#
# Before the first real run, edit for your site (README.md says where to find the values):
#   --account    the Slurm account your company's GPU-hours are booked on
#   --partition  the partition with the GPUs you want
#   --gpus       how many GPUs (leave it switched off for a CPU-only run)
# A line starting with "##SBATCH" is switched off: remove one '#' to switch it on.
# Options given to sbatch on the command line override these lines.
#SBATCH --job-name=tabular-model
#SBATCH --time=00:20:00
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --output=slurm-%j.out
##SBATCH --account=YOUR_ACCOUNT
##SBATCH --partition=YOUR_GPU_PARTITION
##SBATCH --gpus=1
set -euo pipefail
# Slurm runs a copy of this script from its spool folder: go back to where it was submitted.
cd "${SLURM_SUBMIT_DIR:-.}"
# The Python that runs train.py: set PYTHON (e.g. your own environment's) or activate one here.
PYTHON="${PYTHON:-python3}"
echo "job ${SLURM_JOB_ID:-local} on $(hostname): $PYTHON train.py $*"
exec "$PYTHON" train.py --out "results/job-${SLURM_JOB_ID:-local}.json" "$@"
