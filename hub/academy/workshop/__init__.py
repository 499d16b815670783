"""Workshops as first-class objects: the model, the trainer service at /services/academy/ and its CLI.

``models`` holds the state (SQLAlchemy), ``forms`` checks what a trainer asks for, ``actions``
does it (the browser and ``academy workshop`` call the same functions), ``hubclient`` talks to
the hub's REST API and ``service`` is the tornado application the hub runs. The engines it
drives: ``reservation`` (is the Slurm reservation fit for the workshop), ``warmstart``
(participants' servers started before the doors open) and ``teardown`` with ``homearchive``
(the resumable end of a workshop, and the purge after its retention).
"""
