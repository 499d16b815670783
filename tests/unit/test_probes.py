"""academy.probes stays at the bottom of the package: importing it pulls in nothing else of academy."""
from __future__ import annotations

import json
import subprocess
import sys


def test_probes_imports_no_other_academy_module():
    """Does a fresh interpreter that imports academy.probes load no academy module but the package and probes?"""
    code = (
        "import json, sys\n"
        "import academy.probes\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'academy' or m.startswith('academy.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["academy", "academy.probes"]


def test_siteconfig_and_doctor_checks_no_longer_import_each_other():
    """Can siteconfig load without doctor_checks, and doctor_checks without siteconfig (the circle is gone)?"""
    code = (
        "import json, sys\n"
        "import academy.siteconfig\n"
        "first = 'academy.doctor_checks' in sys.modules\n"
        "for m in [m for m in sys.modules if m.startswith('academy.')]:\n"
        "    del sys.modules[m]\n"
        "import academy.doctor_checks\n"
        "print(json.dumps([first, 'academy.siteconfig' in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [False, False]
