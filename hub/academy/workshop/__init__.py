"""Workshops as first-class objects: the model, the trainer service at /services/academy/ and its CLI.

``models`` holds the state (SQLAlchemy), ``forms`` checks what a trainer asks for, ``actions``
does it (the browser and ``academy workshop`` call the same functions), ``hubclient`` talks to
the hub's REST API and ``service`` is the tornado application the hub runs.
"""
