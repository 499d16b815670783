"""nbgrader in a learner's server: the Assignments panel and Validate on the Academy's private exchange.

nbgrader's assignment_list extension loads this from ``JUPYTER_CONFIG_PATH``. The learner's server
knows only the exchange root (``ACADEMY_EXCHANGE_DIR``) and their courses (``ACADEMY_COURSE_IDS``),
never the course directory with its solutions; see academy.course.nbexchange.
"""
from academy.course.nbexchange import learner_config

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
learner_config(c)
