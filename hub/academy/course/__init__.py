"""The graded course: nbgrader's course layout, gradebook and preprocessors, driven through nbgrader's
Python API, with a permission-checked exchange, sandboxed student code and parallel autograding.

The pipeline steps live here, one module each: layout (paths), roster (hub group), exchange
(release/submit/collect/feedback folders), release, autograde (the step that drives the grading
engine), hidden (hidden tests kept out of what students receive), feedback, reports (per-submission
outcomes), export, status, cli.  The grading engine (jobs, workers, the local pool and the Slurm
array, the sandboxed kernel and its limits, the single gradebook writer, cleanup) is the sub-package
:mod:`academy.course.grading`.
"""
