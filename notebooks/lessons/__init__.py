"""Per-lesson support code: formative checks and widget callbacks, one module per notebook (e.g. ``n01_numpy``)."""
