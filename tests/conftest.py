"""Suite-wide hooks, and the list of every fixture of the suite (as JupyterHub's conftest has).

Helpers live in ``tests/support/`` (tests only: ``from support.hub import running_hub``) and in
``testbed/`` (the real hub process, the one-node Slurm and the generated courses, which the benchmarks
use too: ``from testbed.hub import make_learner``). Paths below are relative to ``tests/``; "module"
and "session" are the fixture's scope, none given means one per test.

Fixtures shared through conftest.py files and tests/support:

- ``hub`` (hub/conftest.py, module): a running ``academy up`` with the local backend and native login.
- ``learner`` (hub/conftest.py): a fresh native account on ``hub``, logged in, with its password and API token.
- ``_dump_hub_log_on_failure`` (hub/conftest.py, autouse): prints the end of the hub's log when a test using ``hub`` failed.
- ``grader_account`` (course/conftest.py, session): the unprivileged ``academy-grader`` account the sandbox
  runs student code as (root with bubblewrap, prlimit, setpriv and useradd, or the test skips).
- ``tiny`` (course/conftest.py): a released copy of the generated tiny assignment (testbed/tiny_course.py), as a course layout.
- ``slurm_cluster`` (slurm/conftest.py, session): the one-node cluster of testbed/slurm_cluster.py, started or
  reused, with ``SLURM_CONF`` exported and the workshop reservation in place; its test users removed at the end.
- ``slurm_hub`` (slurm/conftest.py, module): a hub with the slurm backend, testbed/slurm_profiles.yaml, 1 s
  polling and a ``workshop`` group, with a pool of learners.
- ``learner`` (slurm/conftest.py): a fresh account of ``slurm_hub`` that is also a real Unix user.
- ``_dump_logs_on_failure`` (slurm/conftest.py, autouse): prints the hub's log and slurmctld's on failure.
- ``progress`` (support/lessons.py, autouse where imported): ``ACADEMY_PROGRESS_FILE`` in the test's tmp dir.
- ``one_torch_thread`` (support/lessons.py, autouse where imported): torch on one thread during the test.

Fixtures of one test module:

- ``hub`` (module), a hub with that module's site config: browser/test_announcements_browser.py, browser/test_browser.py,
  browser/test_assignments_panel_browser.py, browser/test_help_flow.py, browser/test_lab_tools.py,
  browser/test_projects_browser.py, hub/test_projects_api.py (a small profile),
  browser/test_lab_walltime.py (a short walltime hour), browser/test_spawn_links_browser.py, browser/test_workshop_browser.py,
  browser/test_team_folders_browser.py (root, one team folder),
  course/test_course_roster.py, hub/test_lab_session.py (its own profiles), hub/test_local_limits.py and
  hub/test_session_tools.py (cgroups needed), hub/test_workshop_lifecycle.py (root),
  hub/test_workshop_dashboard.py (root, a small profile), hub/test_team_folders.py (root, one team folder); slurm/test_slurm_walltime.py
  (slurm backend, 10 s walltime re-check).
- ``browser`` (module): Debian's Chromium through Playwright: browser/test_browser.py, slurm/test_slurm_walltime.py.
- ``chromium`` (hub/test_workshop_coursework.py, hub/test_workshop_dashboard.py, module): the same launch of Chromium, for
  that module's hub.
- ``learner`` (hub/test_local_limits.py, module): one learner for the whole module.
- ``load_hub`` (hub/test_load_test_mode.py, module): a hub in load-test mode.
- ``queued_hub`` (hub/test_spawn_queue.py, module): a hub that starts one server at a time.
- ``course_hub`` (hub/test_workshop_coursework.py, module): a hub whose workshops grade the tiny course.
- ``graded`` (module): hub/test_workshop_coursework.py (a workshop whose participants submitted and were graded),
  course/test_grading_fairness.py (odd, oversized and failing submissions graded once).
- ``private_site`` (hub/test_course_privacy.py, module): a hub whose `course:` section holds the tiny course and the built-in one.
- ``private_graded`` (hub/test_course_privacy.py, module): a learner submitted with only the server's course variables; graded.
- ``room`` (hub/test_workshop_dashboard.py, module): a workshop, its trainer, another workshop's trainer, and three
  participants whose servers run, with their servers' tokens.
- ``essay_hub`` (hub/test_workshop_written_answer.py, module): a hub whose course has a written answer.
- ``work`` (hub/test_doctor.py): a traversable scratch folder, removed afterwards.
- ``server`` (hub/test_lean_start.py): a real Jupyter server with the learners' config, as the spawner starts it.
- ``site`` (hub/test_up_refusals.py): an existing installation whose state must survive every refused start.
- ``restart_hub`` (slurm/test_slurm_resilience.py, module): a Slurm hub the tests restart.
- ``team_hub`` (slurm/test_slurm_team_folders.py, module): a Slurm hub with one team folder on a shared tmp root.
- ``panel_slurm_hub`` (slurm/test_slurm_assignments_panel.py, module): a Slurm hub whose `course:` section holds a tiny
  course of this run, its exchange on a shared tmp root.
- ``site_groups_hub`` (slurm/test_slurm_team_folders.py, module): the same with the site's own Unix group
  (``manage_unix_groups`` off).
- ``four`` (slurm/test_slurm_resilience.py, module): four learners of ``restart_hub`` with running servers.
- ``budget_hub`` (slurm/test_slurm_budgets.py, module): a Slurm hub with ``slurm.accounting`` on and four teams'
  budgets (accounts made by ``academy budgets sync``, one left missing on purpose).
- ``course`` (module): course/test_assignments.py (the real course released in a tmp course directory),
  course/test_exchange.py (a world-readable tiny course and exchange, set up and released through the CLI),
  browser/test_assignments_panel_browser.py (a tiny course of this run under the default exchange root).
- ``learners`` (course/test_nbexchange.py, module): two real Unix learners with no fetched work or submission cache.
- ``courses`` (course/test_nbexchange.py, module): two tiny courses released into one exchange, one learner in both.
- ``course_group`` (course/test_course_roster.py, module): two students and a trainer in one hub group.
- ``students`` (course/test_exchange.py, module): two real Unix students.
- ``submitted`` (course/test_exchange.py, module): both students fetched, answered and submitted; root collected.
- ``batch`` (course/test_grading_isolation.py, module): the hostile batch graded once with ``--jobs 2``.
- ``a1_graded`` (course/test_pipeline.py, module): a1's golden submissions graded by stock nbgrader and by ours.
- ``data_course_graded`` (course/test_grading_whole_assignment.py, module): the data course (sub-folders, custom
  source_directory) graded by stock nbgrader and by `academy course autograde`, then `course feedback`.
- ``hostile`` (course/test_sandbox_hostile.py, module): the hostile submissions graded once.
- ``tree`` (curriculum/test_foreign.py, module): a trainer's notebook repository (testbed/foreign_notebooks.py).
- ``outcome`` (module): curriculum/test_foreign.py (that tree through the CLI once), curriculum/test_runner.py
  (the synthetic notebooks of ``suite`` run once).
- ``suite`` (curriculum/test_runner.py, module): a notebooks/ folder with one passing and five broken notebooks.
- ``progress`` (curriculum/test_learn.py): the progress log's path, in the test's tmp dir.
- ``progress_file`` (curriculum/test_lessons_00_06.py, autouse): the progress log in the test's tmp dir.
- ``faq`` (curriculum/test_lessons_07_09.py, module): lesson 09's FAQ data set.
- ``shared`` (hub/test_trainer_share.py, module): a learner's running server, its token, a trainer group with one
  trainer, and another workshop's trainer group.
- ``standin`` (unit/test_learner_link.py): a local tornado app standing in for the Academy service's events API
  (helper A's part of issue #10) and the hub's sharing endpoints, with the server identity that points at it.
- ``listener`` (unit/test_doctor_papercuts.py, unit/test_slurm_spawner.py): a process or TCP port listening
  on a free port.
- ``source`` (unit/test_home.py): a curriculum folder to copy into a home.
- ``budgeted`` (unit/test_budgeted_spawner.py): makes a ``BudgetedSlurmSpawner`` for a user in given hub groups,
  with a fresh budget reader.
- ``budget_standin`` (unit/test_budget_api.py): a local tornado app standing in for the hub's
  ``/hub/api/academy/budget``, counting calls, and the server identity that asks it.
- ``missing`` (unit/test_cli_voice.py): the path of a site config that does not exist.
- ``site`` (unit/test_config_path.py): a site YAML named by ``ACADEMY_CONFIG``, with no run facts set.
- ``slurm`` (unit/test_course_slurm_backend.py): the course's Slurm commands replayed through the runner.
- ``auth`` (unit/test_login_lockout.py): the native authenticator on an in-memory database.
- ``replay``, ``make_spawner`` (unit/test_slurm_spawner.py): scripted Slurm command output, and a spawner that runs it.
- ``db`` (unit/test_workshop_binding.py, unit/test_workshop_events.py): a workshop database in the test's tmp dir.
- ``ctx`` (unit/test_workshop_lifecycle_parts.py): a workshop service context on a tmp database.
- ``wctx`` (unit/test_announcements_privacy.py): a workshop service context on a tmp database with three workshops.

Markers come from the folder (``FOLDER_MARKERS``), so no test can forget its own; ``kernel`` marks the
tests that start a real Jupyter kernel outside a hub (``KERNEL_TESTS``). ``make test-fast`` runs what
carries none of hub, slurm, browser and kernel.

Hooks: each test's report is attached to its item (``item.rep_call``) so fixtures can
dump logs of real components when the test failed.  For ``make test``'s parallel run
(pytest-xdist) a worker takes whole modules, so a module's hub starts once, and every Slurm test
(``tests/slurm/`` and the lesson test against ``real_slurm``) shares one scope, run first: the
one-node cluster, its reservation and its queue are one machine's, and the Slurm tests assume
they have it to themselves.
"""
from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

#: Every test under a folder of tests/ gets these markers.
FOLDER_MARKERS = {
    "hub": ("hub",),
    "browser": ("browser",),
    "slurm": ("slurm",),
    "course": ("grading",),
    "curriculum": ("curriculum",),
}

#: Tests that start a real Jupyter kernel outside a hub (nbclient, papermill, nbgrader, the curriculum
#: runner), by module: "*" for all of it, else the names of the tests, or of fixtures whose users all start one.
KERNEL_TESTS: dict[str, str | set[str]] = {
    "unit/test_promptkernel.py": "*",
    "curriculum/test_track.py": "*",
    "curriculum/test_templates_track.py": "*",
    "curriculum/test_runner.py": {"outcome", "test_cli_failure_exit_junit_and_kept_notebook",
                                  "test_cli_passes_parameters_and_exits_zero", "test_sigterm_kills_every_kernel",
                                  "test_schedule_starts_longest_first",
                                  "test_the_house_working_copy_lacks_the_lesson_code_as_a_home_does"},
    "curriculum/test_foreign.py": {"outcome", "test_require_clean_and_kernel_override",
                                   "test_lint_on_request_and_unknown_kernel_flag", "test_builtin_curriculum_keeps_its_full_lint",
                                   "test_timeout_between_cells_blames_the_runner",
                                   "test_interrupt_still_writes_junit_of_what_finished",
                                   "test_same_layout_twice_and_kept_names_stay_inside"},
    "curriculum/test_learn.py": {"test_rerunning_the_parameters_cell_keeps_device_usable",
                                 "test_buttons_and_metrics_in_a_real_kernel",
                                 "test_solution_called_in_a_kernel_shows_rendered_markdown",
                                 "test_rerunning_a_notebooks_parameters_cell_keeps_device_usable"},
    "course/test_assignments.py": {"test_autograde_awards_the_golden_score", "test_endless_loop_costs_only_its_own_question",
                                   "test_released_notebook_hides_solutions_and_hidden_tests"},
    "course/test_pipeline.py": {"test_a1_feedback_has_no_hidden_tests", "test_cli_runs_the_whole_pipeline",
                                "test_gradebook_stays_consistent_on_regrade", "test_parallel_autograde_equals_serial_nbgrader",
                                "test_cli_exits_1_when_a_submission_fails_to_grade",
                                "test_parallel_autograde_gives_golden_scores", "test_release_refuses_a_leaky_notebook"},
    "course/test_course_roster.py": "*",
    "course/test_course_setup_accounts.py": "*",
    "course/test_exchange.py": "*",
    "course/test_nbexchange.py": "*",
    "course/test_grading_fairness.py": "*",
    "course/test_grading_isolation.py": "*",
    "course/test_grading_whole_assignment.py": {"data_course_graded"},
    "course/test_grading_leftovers.py": "*",
    "course/test_pool.py": "*",
    "course/test_sandbox_hostile.py": "*",
}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


def _slurm_scope(nodeid: str) -> bool:
    return nodeid.startswith("tests/slurm/") or "real_slurm" in nodeid


def _starts_a_kernel(module: str, item) -> bool:
    which = KERNEL_TESTS.get(module, ())
    return which == "*" or getattr(item, "originalname", item.name) in which or bool(set(which) & set(item.fixturenames))


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            module = item.path.resolve().relative_to(TESTS).as_posix()
        except ValueError:  # not under tests/
            continue
        for name in FOLDER_MARKERS.get(module.split("/", 1)[0], ()):
            item.add_marker(name)
        if _starts_a_kernel(module, item):
            item.add_marker("kernel")
    # The Slurm tests are the longest chain that must run one after the other: start them first.
    items.sort(key=lambda item: not _slurm_scope(item.nodeid))


@pytest.hookimpl(tryfirst=True)  # ahead of xdist's own, which would pick its built-in scheduler
def pytest_xdist_make_scheduler(config, log):
    """Whole modules per worker, and every Slurm test in one scope (see the module docstring)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleAndSlurmScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "slurm" if _slurm_scope(nodeid) else nodeid.split("::", 1)[0]

    return ModuleAndSlurmScheduling(config, log)
