"""``academy.project``: new projects from templates (``academy project new``, the Launcher's "New project").

A template is a folder of data in ``notebooks/templates/<slug>/`` with a manifest
(``template.yaml``): :mod:`academy.project.templates` reads and validates templates, names and
creates project folders; :mod:`academy.project.skeleton` checks a template notebook's shape;
:mod:`academy.project.cli` is the command line. The Launcher calls the same code through the
server extension (:mod:`academy.labtools.projects`), as the learner.
"""
