"""One course configuration: the site config's ``course:`` section, its precedence, several courses, and
what learner servers are told (academy.course.site, academy.course.protect)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from traitlets.config import Config

from academy import cli
from academy.course import protect
from academy.course.layout import LayoutError
from academy.course.site import ENV_COURSE_IDS, ENV_EXCHANGE_DIR, layout_for_site, learner_course, update_course
from academy.siteconfig import build_config
from academy.validation import ConfigError


def _course(folder: Path, course_id: str | None = None) -> Path:
    (folder / "source" / "a1").mkdir(parents=True)
    (folder / "source" / "a1" / "a1.ipynb").write_text("{}")
    text = "c = get_config()\n" + (f"c.CourseDirectory.course_id = {course_id!r}\n" if course_id else "")
    (folder / "nbgrader_config.py").write_text(text)
    return folder


def _cfg(tmp_path: Path, **course) -> dict:
    site = {"hub": {"state_dir": str(tmp_path / "hubstate")}, "course": course}
    return build_config(site, "test", root=tmp_path)


@pytest.mark.parametrize("course, message", [
    ({"courses": [{"id": "../etc", "directory": "c"}]}, "course.courses[0].id"),
    ({"courses": [{"id": "ok", "directory": "c"}, {"id": "a/b", "directory": "d"}]}, "course.courses[1].id"),
    ({"courses": [{"id": ".hidden", "directory": "c"}]}, "course.courses[0].id"),
    ({"courses": [{"id": "ok", "directory": "c", "colour": "red"}]}, "course.courses[0].colour: unknown key"),
    ({"courses": [{"id": "ok"}]}, "course.courses[0].directory: required key is missing"),
    ({"courses": []}, "course.courses"),
    ({"grader_user": "root"}, "course.grader_user"),
    ({"slurm": {"partition": "gpu --wrap=id"}}, "course.slurm.partition"),
    ({"limits": {"jobs": -1}}, "course.limits.jobs"),
    ({"exchange": "/x"}, "course.exchange: unknown key"),
])
def test_a_malformed_course_section_names_its_key_path(tmp_path, course, message):
    """Is every malformed `course:` key (a path character in an id, an injected Slurm option, root as grader) refused with its key path?"""
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, **course)
    assert message in str(err.value)


def test_the_default_course_is_the_built_in_one_with_its_state_under_the_hub_state_dir(tmp_path):
    """Without a course section, is the course the repository's course/, its state under hub.state_dir?"""
    cfg = build_config({"hub": {"state_dir": str(tmp_path / "hubstate")}}, "test")
    layout = layout_for_site(cfg, env={})
    assert layout.course_id == "ai-factory-101"
    assert layout.course_dir.name == "course" and (layout.course_dir / "nbgrader_config.py").exists()
    assert layout.state_dir == tmp_path / "hubstate" / "courses" / "ai-factory-101"
    assert layout.db_url == f"sqlite:///{layout.state_dir / 'gradebook.db'}"
    assert layout.exchange_dir == Path("/srv/academy/exchange")


def test_precedence_flag_then_environment_then_site_then_default(tmp_path):
    """Does a flag beat its ACADEMY_* variable, which beats the site config, which beats the default?"""
    _course(tmp_path / "c1", "one")
    cfg = _cfg(tmp_path, exchange_dir=str(tmp_path / "site-ex"),
               courses=[{"id": "one", "directory": "c1", "state_dir": str(tmp_path / "site-state"),
                         "gradebook_url": "sqlite:////site.db"}])
    site = layout_for_site(cfg, env={})
    assert (site.exchange_dir, site.state_dir, site.db_url) == (tmp_path / "site-ex", tmp_path / "site-state", "sqlite:////site.db")
    env = {"ACADEMY_EXCHANGE_DIR": str(tmp_path / "env-ex"), "ACADEMY_STATE_DIR": str(tmp_path / "env-state"),
           "ACADEMY_GRADEBOOK_URL": "sqlite:////env.db"}
    by_env = layout_for_site(cfg, env=env)
    assert (by_env.exchange_dir, by_env.state_dir, by_env.db_url) == (tmp_path / "env-ex", tmp_path / "env-state", "sqlite:////env.db")
    by_flag = layout_for_site(cfg, None, None, str(tmp_path / "f-state"), str(tmp_path / "f-ex"), "sqlite:////f.db", env=env)
    assert (by_flag.exchange_dir, by_flag.state_dir, by_flag.db_url) == (tmp_path / "f-ex", tmp_path / "f-state", "sqlite:////f.db")


def test_an_explicit_course_dir_is_a_course_of_its_own(tmp_path):
    """Does --course-dir (or ACADEMY_COURSE_DIR) take its id from its own config, with state under hub.state_dir?"""
    _course(tmp_path / "c1", "one")
    _course(tmp_path / "other", "tiny")
    cfg = _cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}])
    for layout in (layout_for_site(cfg, course_dir=str(tmp_path / "other"), env={}),
                   layout_for_site(cfg, env={"ACADEMY_COURSE_DIR": str(tmp_path / "other")})):
        assert layout.course_id == "tiny" and layout.state_dir == tmp_path / "hubstate" / "courses" / "tiny"
    with pytest.raises(LayoutError, match="does not match"):
        layout_for_site(cfg, "one", str(tmp_path / "other"), env={})


def test_several_courses_need_a_choice(tmp_path):
    """With two courses, is --course required, does it pick, and is an unknown id refused by name?"""
    _course(tmp_path / "c1", "one")
    _course(tmp_path / "c2", "two")
    cfg = _cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}, {"id": "two", "directory": "c2"}])
    with pytest.raises(LayoutError, match=r"several courses \(one, two\); pick one with --course"):
        layout_for_site(cfg, env={})
    two = layout_for_site(cfg, "two", env={})
    assert two.course_id == "two" and two.course_dir == tmp_path / "c2" and two.state_dir.name == "two"
    with pytest.raises(LayoutError, match="no course 'three'"):
        layout_for_site(cfg, "three", env={})


def test_a_course_file_with_another_id_is_refused(tmp_path):
    """Is a site course whose nbgrader_config.py sets a different course id refused (exchange and gradebook key on it)?"""
    _course(tmp_path / "c1", "not-one")
    cfg = _cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}])
    with pytest.raises(LayoutError, match="sets 'not-one'"):
        layout_for_site(cfg, env={})


def test_a_missing_course_directory_names_its_key(tmp_path):
    """Does a course directory that does not exist name course.courses[i].directory?"""
    cfg = _cfg(tmp_path, courses=[{"id": "one", "directory": "nowhere"}])
    with pytest.raises(LayoutError, match=r"course.courses\[0\].directory: .*nowhere does not exist"):
        layout_for_site(cfg, env={})


def test_site_limits_and_slurm_placement_reach_nbgrader_config(tmp_path):
    """Do the grading limits, grader account and Slurm partition/account/memory land in the generated nbgrader config?"""
    _course(tmp_path / "c1", "one")
    cfg = _cfg(tmp_path, grader_user="course-grader",
               limits={"cell_timeout": 12, "notebook_timeout": 99, "memory_mb": 512, "jobs": 3},
               slurm={"partition": "grading", "account": "ai101", "memory_mb": 2048},
               courses=[{"id": "one", "directory": "c1"}])
    config = layout_for_site(cfg, env={}).nbgrader_config()
    assert config.Execute.timeout == 12
    assert config.SandboxKernelManager.notebook_time_limit == 99
    assert config.SandboxPolicy.memory_limit == 512 * 1024 * 1024
    assert config.SandboxPolicy.user == "course-grader"
    assert config.SlurmBackend.memory_mb == 2048
    assert config.SlurmBackend.extra_options == ["--partition=grading", "--account=ai101"]
    assert config.CourseDirectory.course_id == "one"
    from academy.course.grading.slurm import SlurmBackend
    assert "#SBATCH --partition=grading" in SlurmBackend(config=config).render(str(tmp_path), 2, 1, 60)
    from academy.course.site import default_jobs
    assert default_jobs(cfg) == 3 and default_jobs(_cfg(tmp_path)) == (os.cpu_count() or 1)


def test_zero_limits_keep_the_course_files_own_values(tmp_path):
    """With limits left at 0, does the course's own nbgrader_config.py value stand?"""
    _course(tmp_path / "c1", "one")
    (tmp_path / "c1" / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'one'\nc.Execute.timeout = 7\n")
    config = layout_for_site(_cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}]), env={}).nbgrader_config()
    assert config.Execute.timeout == 7


def test_learner_servers_get_the_exchange_root_and_course_ids_only(tmp_path):
    """Does every learner server get ACADEMY_EXCHANGE_DIR and ACADEMY_COURSE_IDS, and never a course dir or gradebook URL?"""
    cfg = _cfg(tmp_path, exchange_dir="/shared/exchange",
               courses=[{"id": "one", "directory": "/srv/secret-one", "gradebook_url": "postgresql://db/one"},
                        {"id": "two", "directory": "/srv/secret-two"}])
    c = Config()
    c.Spawner.environment = {"ACADEMY_HELP_URL": "https://help"}
    update_course(c, cfg)
    env = c.Spawner.environment
    assert env[ENV_EXCHANGE_DIR] == "/shared/exchange" and env[ENV_COURSE_IDS] == "one,two"
    assert env["ACADEMY_HELP_URL"] == "https://help"
    assert not any("secret" in v or "postgresql" in v or str(tmp_path / "hubstate") in v for v in env.values())
    assert "ACADEMY_COURSE_DIR" not in env and "ACADEMY_GRADEBOOK_URL" not in env and "ACADEMY_STATE_DIR" not in env


def test_the_whole_configurer_passes_the_course_env_to_the_spawner(tmp_path):
    """Does apply_config (both backends) put the course env on Spawner.environment next to the lab's?"""
    from academy.configurer import apply_config
    for backend in ("local", "slurm"):
        cfg = build_config({"backend": backend, "hub": {"state_dir": str(tmp_path), "hub_port": 8081}}, "test")
        cfg["hub"]["proxy_cmd"] = "/bin/true"
        cfg["workshops"]["_port"] = 1
        env = apply_config(Config(), cfg).Spawner.environment
        assert env[ENV_COURSE_IDS] == "ai-factory-101" and env[ENV_EXCHANGE_DIR] == "/srv/academy/exchange"
        assert "ACADEMY_CURRICULUM" in env


def test_a_student_needs_only_the_exchange_and_course_ids():
    """Do a student's commands find their course from ACADEMY_EXCHANGE_DIR and ACADEMY_COURSE_IDS alone (no site config, no course dir)?"""
    def no_config():
        raise AssertionError("the site config was read")
    env = {ENV_EXCHANGE_DIR: "/shared/ex", ENV_COURSE_IDS: "one"}
    mine = learner_course(env=env, site=no_config)
    assert (mine.exchange_dir, mine.course_id) == (Path("/shared/ex"), "one")
    two = {ENV_EXCHANGE_DIR: "/shared/ex", ENV_COURSE_IDS: "one,two"}
    assert learner_course("two", env=two, site=no_config).course_id == "two"
    with pytest.raises(LayoutError, match=r"several courses \(one, two\)"):
        learner_course(env=two, site=no_config)
    assert learner_course("three", env=two, site=no_config).course_id == "three"  # only picks their own exchange folder
    with pytest.raises(LayoutError, match="invalid course id"):
        learner_course("../one", env=two, site=no_config)


def test_a_student_course_dir_only_picks_the_students_own_course_id(tmp_path):
    """Is ACADEMY_COURSE_DIR ignored once the hub named the course, while a --course-dir the student typed only picks
    the id (read as the student) and --course beats both?"""
    _course(tmp_path / "mine", "evil")
    env = {ENV_EXCHANGE_DIR: "/shared/ex", ENV_COURSE_IDS: "one", "ACADEMY_COURSE_DIR": str(tmp_path / "mine")}
    assert learner_course(None, None, env=env, site=dict).course_id == "one"
    assert learner_course(None, str(tmp_path / "mine"), env=env, site=dict).course_id == "evil"
    assert learner_course("one", str(tmp_path / "mine"), env=env, site=dict).course_id == "one"


def test_cli_with_two_courses_refuses_without_course(tmp_path, capsys):
    """Does `academy --config X course status` with two courses say to pick one with --course (exit 2)?"""
    _course(tmp_path / "c1", "one")
    _course(tmp_path / "c2", "two")
    config = tmp_path / "site.yaml"
    config.write_text(f"hub: {{state_dir: {tmp_path / 'hubstate'}}}\ncourse:\n  courses:\n"
                      f"    - {{id: one, directory: {tmp_path / 'c1'}}}\n    - {{id: two, directory: {tmp_path / 'c2'}}}\n")
    code = cli.main(["--config", str(config), "course", "status"])
    err = capsys.readouterr().err
    assert code == 2 and "academy course status: this site has several courses (one, two); pick one with --course ID" in err
    assert cli.main(["--config", str(config), "course", "--course", "two", "status"]) == 0
    assert "course two" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("course:\n  courses:\n    - {id: 'x/y', directory: c}\n")
    assert cli.main(["--config", str(bad), "course", "status"]) == 2
    assert "course.courses[0].id" in capsys.readouterr().err


def test_a_course_others_can_write_is_refused_and_readable_sources_are_reported(tmp_path):
    """Is a course directory other users can write refused, and do doctor's checks flag sources learners can read?"""
    _course(tmp_path / "c1", "one")
    cfg = _cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}])
    os.chmod(tmp_path / "c1", 0o777)
    assert "writable by other users" in protect.site_refusal(cfg)
    with pytest.raises(LayoutError, match="writable by other users"):
        protect.close_site_courses(cfg)
    [check] = protect.course_checks(cfg)
    assert not check.ok and "writable by other users" in check.detail
    os.chmod(tmp_path / "c1", 0o755)
    os.chmod(tmp_path / "c1" / "source", 0o755)
    assert protect.site_refusal(cfg) is None
    [check] = protect.course_checks(cfg)
    assert not check.ok and "learners can read the solutions and hidden tests" in check.detail
    if os.geteuid() == 0:
        assert "closed the course source" in protect.close_site_courses(cfg)[0]
        assert (tmp_path / "c1" / "source").stat().st_mode & 0o777 == 0o750
        [check] = protect.course_checks(cfg)
        assert check.ok and check.warning and "world-readable" in check.detail


def test_the_gradebook_is_closed_even_in_a_traversable_state_dir(tmp_path):
    """Does ensure() close a SQLite gradebook (and export/) that was created readable, in a state dir others may traverse?"""
    _course(tmp_path / "c1", "one")
    state = tmp_path / "state"
    state.mkdir(mode=0o711)
    os.chmod(state, 0o711)
    layout = layout_for_site(_cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}]), state_dir=str(state), env={})
    (state / "gradebook.db").write_text("")
    os.chmod(state / "gradebook.db", 0o644)
    (state / "export").mkdir(mode=0o755)
    layout.ensure()
    assert (state / "gradebook.db").stat().st_mode & 0o077 == 0
    assert (state / "export").stat().st_mode & 0o077 == 0
    assert layout.root.stat().st_mode & 0o777 == 0o700


def test_the_courses_folder_is_traversable_but_not_listable(tmp_path):
    """Is <hub.state_dir>/courses made 0711 (the Formgrader's account reaches its course; nobody lists the courses)?"""
    _course(tmp_path / "c1", "one")
    layout = layout_for_site(_cfg(tmp_path, courses=[{"id": "one", "directory": "c1"}]), env={})
    old = os.umask(0o077)
    try:
        layout.ensure()
    finally:
        os.umask(old)
    assert (tmp_path / "hubstate" / "courses").stat().st_mode & 0o777 == 0o711
    assert layout.state_dir.stat().st_mode & 0o777 == 0o700
