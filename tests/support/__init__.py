"""The test suite's support package (tests only; pytest puts ``tests/`` on sys.path, so ``from support.hub import …``).

- ``skip``: ``need()``: skip when a real component is missing, fail under CI=true.
- ``process``: ``exited()``: has a process ended?
- ``hub``: ``running_hub()`` and ``proxy_available()`` over testbed's ``HubProcess``.
- ``workshop``: the workshop service's forms, a trainer account, participants' accounts.
- ``lab``: a learner's terminals and kernels over their websockets, through the proxy.
- ``course``: course layouts in tmp dirs, placed submissions, gradebook rows, the CLI as another user.
- ``slurm``: a hub with the slurm backend, real Unix learners, and looks into real jobs.
- ``notebooks``: the curriculum's notebook list and synthetic notebooks on its skeleton.
- ``lessons``: fixtures and check helpers of the lesson-module tests.
- ``gpus``: a stand-in for NVML that reads GPU figures from a JSON file (this machine has no GPU).
- ``teardown_child``: a workshop teardown in its own process, for a test to kill mid-way.

What the benchmarks use too lives in ``testbed/`` (the hub process, the one-node Slurm, the generated
courses, the account registry), never here: ``benchmarks/`` must not import the tests.
"""
