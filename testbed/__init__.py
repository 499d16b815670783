"""The testbed: real components that the tests (``tests/support``) and the benchmarks (``benchmarks/``) both run.

- ``hub``: ``academy up`` on free ports with its own YAML and state dir, read through ``--ready-file``; the one
  ``Learner`` record.
- ``accounts``: the one registry of Unix accounts a run created, and their removal.
- ``slurm_cluster``: the one-node Slurm cluster (munged, slurmctld, slurmd) under /tmp/academy-slurm, and
  ``slurm_profiles.yaml``, the profiles that fit it.
- ``tiny_course`` and ``course_golden``: a generated nbgrader assignment, and golden submissions of the real course.
- ``hostile_submissions``: a hostile student's submissions to the tiny course, next to honest ones.
- ``foreign_notebooks``: a trainer's own notebook repository, laid out as trainers do.

It lives outside ``tests/`` so that ``benchmarks/`` never imports the test suite, and outside the ``academy``
package because none of it belongs in a site's installation (fake GPUs, test accounts, fixed passwords).
Nothing here imports pytest.
"""
