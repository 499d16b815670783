"""nbgrader settings for the graded course "ai-factory-101": identity, where the assignments live, grading limits.

Loaded by ``academy course ...`` (which sets ``CourseDirectory.root`` to its runtime state directory) and by
plain ``nbgrader`` commands run from this folder. Everything nbgrader writes (release/, submitted/,
autograded/, feedback/, gradebook.db) goes under ``CourseDirectory.root``; only the assignments' source
notebooks are read from this repository.
"""
from pathlib import Path

c = get_config()  # noqa: F821 -- injected by traitlets' config-file loader, which also sets __file__

COURSE_DIR = Path(__file__).resolve().parent

# The exchange folder, the gradebook's course record and the hub's nbgrader service all key on this id,
# so it must stay the same for the lifetime of a cohort's gradebook.
c.CourseDirectory.course_id = "ai-factory-101"

# Absolute, so the authored notebooks are read straight from git whatever the root is; nbgrader joins an
# absolute step directory without prefixing the root. Runtime state therefore never lands in the repo.
c.CourseDirectory.source_directory = str(COURSE_DIR / "source")

# CourseDirectory.root is deliberately not set: it defaults to the working directory for hand-run nbgrader,
# and `academy course` overrides it with its state directory. Setting it here would pin every run to one place.

# Pinned to nbgrader's defaults so a site-wide /etc/jupyter/nbgrader_config.py cannot silently change what
# counts as a solution or a hidden test in these notebooks (tests/course/test_assignments.py relies on them).
c.ClearSolutions.begin_solution_delimeter = "BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "END SOLUTION"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ClearHiddenTests.begin_test_delimeter = "BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "END HIDDEN TESTS"

# Per cell, not per notebook: the heaviest graded cell (A3's training run) takes about a second on a
# laptop CPU, so 30 s leaves room for a loaded grading node yet stops an endless loop from stalling a
# whole autograde batch. nbgrader's Execute subclasses ExecutePreprocessor and so inherits this value.
c.ExecutePreprocessor.timeout = 30

# A cell that hits the timeout is interrupted and marked with an error (so it scores 0) instead of the
# kernel being killed, which lets the remaining cells, and their points, still be graded.
c.Execute.interrupt_on_timeout = True

# Feedback HTML and the gradebook view embed cell outputs. A student printing inside a training loop can
# produce megabytes; 200 lines is far more than any honest answer prints, and 60 traceback lines keep
# both the top (the student's call) and the bottom (the failing assert) of an error.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
