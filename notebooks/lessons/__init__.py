"""The curriculum's lesson code, installed as ``academy_lessons``: checks, solutions and helpers, one module per notebook.

A notebook ``NN_slug.ipynb`` imports its module ``academy_lessons.nNN_slug`` as ``lesson``
(e.g. ``n01_python_numpy`` for ``01_python_numpy.ipynb``). This folder is never copied into a
learner's home (``academy.home.AUTHOR_ONLY``); the framework the modules build on is ``academy.learn``.
"""
