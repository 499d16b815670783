"""Own environments: strict names and package specs (what a hostile learner would try), and a real venv."""
from __future__ import annotations

import json
import subprocess

import pytest

from academy import envs


@pytest.mark.parametrize("name", ["../x", "a/b", "", "X", "-rf", "a" * 33, ".hidden", "a b", "a;rm", None, 5, "ä"])
def test_names_with_path_or_shell_characters_are_refused(name):
    """Is every name that could escape ~/.academy/envs or confuse a command refused with the field named?"""
    with pytest.raises(envs.EnvError, match="name"):
        envs.check_name(name)


@pytest.mark.parametrize("spec", [
    "--index-url=http://evil/simple", "-e .", "pkg @ https://evil/pkg.whl", "pkg; rm -rf ~", "$(id)",
    "pkg`id`", "", " ", "a" * 201, 3, "git+https://evil/x.git",
])
def test_package_specs_that_are_not_plain_requirements_are_refused(spec):
    """Are pip options, URLs, shell syntax and junk refused before pip ever runs?"""
    with pytest.raises(envs.EnvError, match="packages"):
        envs.check_packages([spec])


def test_plain_requirements_pass_normalised():
    """Do ordinary requirements with versions, extras and markers pass?"""
    assert envs.check_packages(["rich>=13", "Requests[socks]==2.31", "numpy; python_version>'3'"]) == [
        "rich>=13", "Requests[socks]==2.31", 'numpy; python_version > "3"']
    with pytest.raises(envs.EnvError):
        envs.check_packages(["x"] * 51)


def test_create_list_remove_a_real_env_that_sees_the_shared_packages(tmp_path):
    """Does create make a venv whose python imports shared packages, a kernel spec pointing at it, and remove undo both?"""
    env = envs.create("myenv", home=tmp_path)
    assert env.kernel == "academy-myenv"
    spec = json.loads((tmp_path / ".local/share/jupyter/kernels/academy-myenv/kernel.json").read_text())
    python = spec["argv"][0]
    assert python == str(tmp_path / ".academy/envs/myenv/bin/python")
    out = subprocess.run([python, "-c", "import sys, ipykernel, academy; print(sys.prefix)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / ".academy/envs/myenv")
    assert [e.name for e in envs.list_envs(tmp_path)] == ["myenv"]
    with pytest.raises(envs.EnvError, match="exists"):
        envs.create("myenv", home=tmp_path)
    envs.remove("myenv", home=tmp_path)
    assert envs.list_envs(tmp_path) == []
    assert not (tmp_path / ".local/share/jupyter/kernels/academy-myenv").exists()


def test_a_failed_create_leaves_nothing_behind(tmp_path):
    """When pip fails (a package that does not exist), are the half-made env and its kernel removed?"""
    with pytest.raises(envs.EnvError, match="failed"):
        envs.create("broken", ["academy-no-such-package-xyzzy-12"], home=tmp_path)
    assert not (tmp_path / ".academy/envs/broken").exists()
    assert not (tmp_path / ".local/share/jupyter/kernels/academy-broken").exists()
