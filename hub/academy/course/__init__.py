"""The graded course: nbgrader's course layout, gradebook and preprocessors, driven through nbgrader's
Python API, with a permission-checked exchange, sandboxed student code and parallel autograding.

Modules: layout (paths), roster (hub group), exchange (release/submit/collect/feedback folders),
release, sandbox (policy), confine (shed the grader before bwrap), limits (per-submission cgroups and
the size limit), integrity (tamper check around test cells), cells (cells nbgrader cannot place), depth
(deeply nested notebooks), cleanup (nothing left behind) and kernel (sandboxed Execute), jobs (job records), worker (grade one
submission), warm (the forkserver's warm-up), pool (local backend), slurm (job-array backend),
merge (single gradebook writer), autograde (orchestration), hidden (hidden tests kept out of
feedback), feedback, reports, export, status, cli.
"""
