"""Formative checks, one module per lesson (e.g. ``n01_numpy``); never graded tests."""
