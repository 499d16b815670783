"""The distribution's package list: pyproject.toml names every package, and the lessons install as ``academy_lessons``."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    """Is every folder of hub/academy with an __init__.py in pyproject's packages (a search cannot rename notebooks/lessons, so they are listed)?"""
    found = {".".join(p.parent.relative_to(ROOT / "hub").parts) for p in (ROOT / "hub" / "academy").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    listed = set(_setuptools()["packages"])
    assert sorted(found - listed) == [], "add these to [tool.setuptools] packages in pyproject.toml"
    assert "academy" in found and "academy.learn" in found


def test_listed_packages_exist_and_the_lessons_map_to_notebooks_lessons():
    """Does each listed package have its folder, with academy_lessons installed from notebooks/lessons/ and the rest from hub/?"""
    config = _setuptools()
    dirs = config["package-dir"]
    assert dirs == {"": "hub", "academy_lessons": "notebooks/lessons"}
    for package in config["packages"]:
        top, _, rest = package.partition(".")
        folder = ROOT / dirs[top] / rest.replace(".", "/") if top in dirs else ROOT / dirs[""] / package.replace(".", "/")
        assert (folder / "__init__.py").is_file(), f"{package}: no {folder.relative_to(ROOT)}/__init__.py"
    assert not (ROOT / "hub" / "academy" / "learn" / "lessons").exists(), "the lessons moved to notebooks/lessons/"


def test_the_installed_packages_are_this_checkout():
    """Do `academy` and `academy_lessons` import from this checkout's hub/ and notebooks/lessons/ (the editable install)?"""
    import academy
    import academy_lessons

    assert Path(academy.__file__).resolve() == ROOT / "hub" / "academy" / "__init__.py"
    assert Path(academy_lessons.__file__).resolve() == ROOT / "notebooks" / "lessons" / "__init__.py"
