"""The suite's own layout: module names pytest can import, benchmarks apart from the tests, markers and fixtures documented."""
from __future__ import annotations

import ast
import importlib.util
import re
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
BENCHMARKS = REPO / "benchmarks"


def _root_conftest():
    # By path: the module pytest registers as "conftest" is whichever folder's conftest it loaded last.
    spec = importlib.util.spec_from_file_location("academy_tests_root_conftest", TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conftest = _root_conftest()


def _sources(folder: Path):
    return [p for p in sorted(folder.rglob("*.py")) if "__pycache__" not in p.parts]


def test_no_two_test_modules_share_a_basename():
    """Are test module names unique across folders? (tests/ is on sys.path, so a second
    test_x.py elsewhere fails collection with "import file mismatch".)"""
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []


def _test_side_modules() -> set[str]:
    """Top-level names that resolve into tests/ when tests/ (or a folder of it) is on sys.path."""
    names = {"tests", "conftest"}
    for path in TESTS.rglob("*"):
        if "__pycache__" in path.parts:
            continue
        if path.suffix == ".py":
            names.add(path.stem)
        elif path.is_dir():
            names.add(path.name)
    return names


def benchmark_imports_of_tests(source: str) -> list[str]:
    """What in one benchmark's source reaches into tests/: an import of a module there, or tests/ put on sys.path."""
    found = []
    test_side = _test_side_modules()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in test_side]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in test_side:
                found.append(node.module)
        elif isinstance(node, ast.Call) and "importlib" in ast.unparse(node.func) or (
                isinstance(node, ast.Call) and ast.unparse(node.func) == "__import__"):
            found += [ast.unparse(node)] if any(
                isinstance(a, ast.Constant) and str(a.value).split(".")[0] in test_side for a in node.args) else []
        if isinstance(node, (ast.Call, ast.Assign, ast.AugAssign)) and "sys.path" in ast.unparse(node):
            if re.search(r"""['"]tests['"/]""", ast.unparse(node)):
                found.append(ast.unparse(node))
    return found


def test_the_layout_check_catches_each_way_of_importing_the_tests():
    """Would the check below notice a test module imported, tests/ put on sys.path, or a support module imported?"""
    assert benchmark_imports_of_tests("from support.hub import running_hub") == ["support.hub"]
    assert benchmark_imports_of_tests("import test_grading_isolation as hostile") == ["test_grading_isolation"]
    assert benchmark_imports_of_tests('sys.path.insert(0, str(REPO / "tests" / "course"))')
    assert benchmark_imports_of_tests('sys.path[:0] = [str(REPO / "tests")]')
    assert benchmark_imports_of_tests("from testbed.hub import HubProcess\nimport json") == []


def test_benchmarks_never_import_the_tests():
    """Does no benchmark import a module of tests/ or put tests/ on sys.path (what both need lives in testbed/)?"""
    offences = {p.name: found for p in _sources(BENCHMARKS) if (found := benchmark_imports_of_tests(p.read_text()))}
    assert offences == {}


def test_testbed_needs_no_pytest_and_no_tests():
    """Does testbed/ (shared with the benchmarks) stay free of pytest and of the test suite?"""
    for path in _sources(REPO / "testbed"):
        assert benchmark_imports_of_tests(path.read_text()) == [], path
        assert not re.search(r"^\s*(import|from) pytest", path.read_text(), re.M), path


def _fixtures() -> set[tuple[str, str]]:
    """(name, path relative to tests/) of every fixture defined in the suite."""
    found = set()
    for path in _sources(TESTS):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    "fixture" in ast.unparse(d) for d in node.decorator_list):
                found.add((node.name, path.relative_to(TESTS).as_posix()))
    return found


def test_root_conftest_lists_every_fixture():
    """Does the root conftest's docstring name every fixture of the suite, each with the file it is defined in?"""
    entries = re.split(r"\n- ", conftest.__doc__)
    missing = sorted(f"{name} ({where})" for name, where in _fixtures()
                     if not any(f"``{name}``" in e and where in e for e in entries))
    assert len(_fixtures()) > 40 and missing == [], "add these to tests/conftest.py's docstring: " + ", ".join(missing)


def test_every_marker_applied_by_folder_is_declared_and_every_folder_has_its_marker():
    """Are the folder markers and ``kernel`` declared in pyproject.toml, and does each test folder but unit/ get one?"""
    declared = set(re.findall(r'^\s+"(\w+):', (REPO / "pyproject.toml").read_text(), re.M))
    applied = {m for markers in conftest.FOLDER_MARKERS.values() for m in markers} | {"kernel"}
    assert applied <= declared
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    assert folders - set(conftest.FOLDER_MARKERS) == {"unit"}


def test_kernel_table_names_real_modules_and_tests():
    """Does every entry of ``KERNEL_TESTS`` name a test module, and tests or fixtures that exist in it?"""
    for module, which in conftest.KERNEL_TESTS.items():
        path = TESTS / module
        assert path.exists(), module
        if which != "*":
            defined = {n.name for n in ast.walk(ast.parse(path.read_text()))
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            assert which <= defined, (module, sorted(which - defined))
