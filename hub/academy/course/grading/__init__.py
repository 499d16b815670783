"""The grading engine: how collected submissions are graded, apart from the course steps that use it.

The step that drives it is :mod:`academy.course.autograde` (``academy course autograde``, and the
workshop service's final grading).  The flow of one run:

1. **Jobs** (:mod:`~academy.course.grading.jobs`): the step turns each collected submission into a
   :class:`~academy.course.grading.jobs.JobSpec` (its own job folder, a snapshot of the gradebook, the
   sandbox settings); the records are plain JSON, so the parent never imports nbgrader's converters.
2. **Backend**: either the local pool (:mod:`~academy.course.grading.pool`: N long-lived workers
   forked from a forkserver that preloads :mod:`~academy.course.grading.worker` and
   :mod:`~academy.course.grading.warm`, one deadline per job) or a Slurm job array
   (:mod:`~academy.course.grading.slurm`: task ``i`` runs ``python -m academy.course.grading.worker
   task-<i>.json``).
3. **Worker** (:mod:`~academy.course.grading.worker`): copies the submission (flattening notebooks
   nested too deep for ``json``, :mod:`~academy.course.grading.depth`) and runs nbgrader's unmodified
   ``Autograde`` converter on that private copy, with :mod:`~academy.course.grading.cells` (cells
   nbgrader cannot place) first among its sanitising steps; only ``Execute`` is swapped.
4. **Sandboxed kernel** (:mod:`~academy.course.grading.kernel`): that ``Execute`` starts each kernel
   through the :mod:`~academy.course.grading.sandbox` policy (account, rlimits, bubblewrap view), whose
   first step is :mod:`~academy.course.grading.confine` (join the cgroup, shed the grader); each kernel
   gets its own cgroup (:mod:`~academy.course.grading.limits`, which also holds the one submission
   size limit) and a tamper check around every test cell (:mod:`~academy.course.grading.integrity`).
5. **Merge** (:mod:`~academy.course.grading.merge`): as each job ends the parent, the only writer,
   copies its results into the real gradebook in one transaction, or records the defined failure.

:mod:`~academy.course.grading.cleanup` removes each job's sandbox folders and cgroups as its result
is taken and the whole run in the parent's ``finally``, and lists what a killed grader left behind
(``academy doctor``, ``academy course cleanup``).

Hidden tests (:mod:`academy.course.hidden`) are not part of the engine: they are kept out of what
students receive, at release and in feedback; grading runs them like any other test.
"""
