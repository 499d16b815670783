"""Project templates and `academy project`: manifests, the one name check, creation without overwriting."""
from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from academy.curriculum import lint
from academy.home import sync_curriculum
from academy.project import skeleton
from academy.project.templates import (
    MANIFEST, ProjectError, ProjectExists, check_name, create_project, find_template, list_templates, load_template,
    templates_dir,
)

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {"transformer-finetune", "image-classifier", "tabular-model", "batch-job"}
OFFLINE_MODULES = {"__future__", "argparse", "json", "pickle", "time", "dataclasses", "pathlib", "numpy", "torch", "pandas",
                   "sklearn"}
BAD_NAMES = ["../x", "a/b", "/etc", ".hidden", "..", ".", "a;b", "$(id)", "`id`", "a b", "a&b", "x|y", "-rf",
             "a\\b", "ü", "x" * 65, "", "name\n", "a*"]


def test_the_templates_folder_holds_the_four_promised_templates():
    """Does notebooks/templates/ hold at least the four templates the issue names, each with a valid manifest?"""
    assert templates_dir() == REPO / "notebooks" / "templates"
    templates = {t.slug: t for t in list_templates()}
    assert REQUIRED <= set(templates)
    for t in templates.values():
        assert t.title and t.description and (t.path / t.notebook).is_file()


@pytest.mark.parametrize("slug", sorted(REQUIRED))
def test_each_template_has_readme_notebook_env_data_and_a_batch_script_running_the_same_code(slug):
    """Has the template a README, a clean notebook on the skeleton, an environment file, data/ and a job.sh that runs train.py, which the notebook imports?"""
    t = find_template(slug)
    folder = t.path
    assert (folder / "README.md").is_file() and "sbatch job.sh" in (folder / "README.md").read_text()
    assert (folder / "requirements.txt").is_file() or (folder / "environment.yml").is_file()
    assert (folder / "data").is_dir() and any((folder / "data").iterdir())
    job = folder / "job.sh"
    assert job.stat().st_mode & stat.S_IXUSR
    script = job.read_text()
    assert script.startswith("#!/bin/bash") and "#SBATCH" in script and "train.py" in script
    # Nothing site-specific switched on: account and partition are the user's to fill in.
    assert "##SBATCH --account=" in script and "\n#SBATCH --account" not in script and "\n#SBATCH --partition" not in script
    assert skeleton.problems(folder / t.notebook) == []
    code = "\n".join(lint.source(c) for c in lint.load(folder / t.notebook)["cells"] if c["cell_type"] == "code")
    assert "import train" in code and "train." in code
    # No downloads at run time: the shared code imports nothing that fetches (urllib, requests, hub or dataset loaders).
    tree = ast.parse((folder / "train.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= OFFLINE_MODULES, imported - OFFLINE_MODULES
    assert "from_pretrained" not in (folder / "train.py").read_text()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_with_path_or_shell_characters_is_refused_with_a_reason(name, tmp_path):
    """Is a project name with path or shell characters, a leading dot or too long refused, and is nothing created?"""
    with pytest.raises(ProjectError) as info:
        create_project("batch-job", name, tmp_path)
    assert str(info.value) and "project name" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ProjectError, match="template name"):
        create_project(name, "fine", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_good_names_pass_the_check():
    """Are ordinary folder names accepted unchanged?"""
    for name in ["churn", "my-project_2", "A1", "x" * 64]:
        assert check_name(name) == name


def test_creating_a_project_copies_the_template_without_its_manifest(tmp_path):
    """Does `create_project` make <home>/<name> with every template file (job.sh still executable) and no manifest?"""
    dest = create_project("tabular-model", "churn", tmp_path)
    assert dest == tmp_path / "churn"
    source = find_template("tabular-model").path
    expected = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()
                and "__pycache__" not in p.parts and p.name != MANIFEST and "results" not in p.parts}
    got = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert got == expected and not (dest / MANIFEST).exists()
    assert (dest / "job.sh").stat().st_mode & stat.S_IXUSR
    assert (dest / "data" / "customers.csv").read_bytes() == (source / "data" / "customers.csv").read_bytes()


def test_an_existing_folder_file_or_link_is_never_overwritten(tmp_path):
    """Is a name already taken (folder with work in it, a file, a dangling symlink) refused and left exactly as it was?"""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "train.py").write_text("my own code")
    (tmp_path / "notes").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    for name in ["work", "notes", "link"]:
        with pytest.raises(ProjectExists, match="already exists"):
            create_project("batch-job", name, tmp_path)
    assert (tmp_path / "work" / "train.py").read_text() == "my own code" and os.listdir(tmp_path / "work") == ["train.py"]
    assert (tmp_path / "notes").read_text() == "mine"
    assert not (tmp_path / "elsewhere").exists()


def test_an_unknown_template_names_the_known_ones(tmp_path):
    """Does asking for a template that does not exist say which exist, and create nothing?"""
    with pytest.raises(ProjectError, match="known: .*batch-job"):
        create_project("gpt-5", "x", tmp_path)
    assert list(tmp_path.iterdir()) == []


def _template(root: Path, text: str) -> Path:
    folder = root / "demo"
    folder.mkdir(parents=True)
    (folder / "project.ipynb").write_text("{}")
    (folder / MANIFEST).write_text(text)
    return folder


@pytest.mark.parametrize("text, named", [
    ("title: T\ndescription: D\nnotebook: project.ipynb\ncolour: red\n", "unknown key 'colour'"),
    ("title: T\nnotebook: project.ipynb\n", "'description'"),
    ("title: ''\ndescription: D\nnotebook: project.ipynb\n", "'title'"),
    ("title: T\ndescription: D\nnotebook: ../../etc/passwd\n", "'notebook'"),
    ("- a list\n", "must be a mapping"),
])
def test_an_invalid_manifest_is_refused_naming_the_key(tmp_path, text, named):
    """Is a manifest with an unknown, missing or empty key, or a notebook outside the template, refused by name?"""
    folder = _template(tmp_path, text)
    with pytest.raises(ProjectError, match=named):
        load_template(folder)


def test_the_skeleton_check_can_fail():
    """Does the template skeleton check report a notebook without its learning check, or with graded exercises?"""
    nb = lint.load(find_template("batch-job").path / "project.ipynb")
    nb["cells"] = [c for c in nb["cells"] if "learning-check" not in c.get("metadata", {}).get("tags", [])]
    nb["cells"].append({"cell_type": "code", "id": "zz", "metadata": {}, "source": "x.check(1)", "outputs": [], "execution_count": 3})
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"skeleton-{os.getpid()}.ipynb"
    path.write_text(json.dumps(nb))
    try:
        found = skeleton.problems(path)
    finally:
        path.unlink()
    assert any("learning-check" in p for p in found)
    assert any(".check(" in p for p in found)
    assert any("execution_count" in p for p in found)


def test_the_curriculum_delivery_leaves_the_templates_out(tmp_path):
    """Does a home's curriculum copy leave templates/ out (projects are made on request, not delivered)?"""
    report = sync_curriculum(REPO / "notebooks", tmp_path / "ai-factory-academy")
    assert report.copied and not any(p.startswith("templates/") for p in report.copied)


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "academy", "project", *args], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(home)}, timeout=60)


def test_cli_creates_lists_and_refuses_with_exit_2(tmp_path):
    """Does `academy project new` create ~/NAME, refuse a bad or taken name with exit 2 and a reason, and `list` show templates?"""
    listed = _cli("list", "--json", home=tmp_path)
    assert listed.returncode == 0 and REQUIRED <= {t["slug"] for t in json.loads(listed.stdout)}
    made = _cli("new", "image-classifier", "shapes", home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "shapes" / "project.ipynb").is_file() and "shapes" in made.stdout
    again = _cli("new", "batch-job", "shapes", home=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr.splitlines()[-1]
    assert (tmp_path / "shapes" / "train.py").read_text() == (find_template("image-classifier").path / "train.py").read_text()
    bad = _cli("new", "batch-job", "../escape", home=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("academy project new: project name '../escape'")
    assert not (tmp_path.parent / "escape").exists() and sorted(os.listdir(tmp_path)) == ["shapes"]
