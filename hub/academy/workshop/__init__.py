"""Workshops: the trainer-run lifecycle (model, reservation check, warm start, teardown)."""
