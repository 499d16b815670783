"""nbgrader's exchange ``list`` plugin for the Formgrader: read our exchange without needing to write it.

nbgrader's default exchange refuses to list an exchange root its user cannot write; ours belongs to
root (students' folders are theirs, the course owner may only look). The Formgrader uses this class
(``ExchangeFactory.list``) so it shows released assignments as released, not as drafts. Releasing,
collecting and returning stay with the workshop service (``academy.course.exchange``).
"""
from __future__ import annotations

from nbgrader.exchange.default.list import ExchangeList
from nbgrader.utils import check_directory


class ReadOnlyList(ExchangeList):
    def ensure_root(self):
        if not check_directory(self.root, read=True, execute=True):
            self.fail(f"cannot read the exchange {self.root}")
