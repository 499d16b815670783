"""The pure parts of one-click links: reading a link, keeping only a safe ``next``, building links (academy link)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from academy.cli import main
from academy.link import make_link
from academy.spawners.links import build_link, check_lesson_path, is_link, parse_link, safe_next
from academy.spawners.options import OptionsError, parse_user_options
from academy.profiles import load_profiles

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "spawner_config" / "profiles.yaml"
USER, HUB = "/user/ann/", "/hub/"


def test_a_link_reads_its_options_and_next():
    """Does a link give its options to the form's parser and its next apart?"""
    q = {"opt-profile": ["cpu"], "opt-hours": ["3"], "next": ["/user/ann/lab/tree/a.ipynb"]}
    assert is_link(q) and not is_link({"next": ["/x"]})
    link = parse_link(q)
    assert link.options == {"profile": "cpu", "hours": "3"} and link.next == "/user/ann/lab/tree/a.ipynb"
    request = parse_user_options(link.options, load_profiles(PROFILES), set())
    assert (request.profile.slug, request.hours) == ("cpu", 3)


@pytest.mark.parametrize("query, words", [
    ({"opt-profile": ["cpu", "h100-4"]}, "given 2 times"),
    ({"opt-profile": ["cpu"], "next": ["/user/ann/", "/user/bob/"]}, "given 2 times"),
    ({"opt-profile": ["cpu"], "profile": ["h100-4"]}, "given twice"),
])
def test_a_repeated_key_is_refused_before_the_form_parser(query, words):
    """Is a key given twice (also as opt-KEY and KEY) refused with a message that names it?"""
    with pytest.raises(OptionsError, match=words):
        parse_link(query)


@pytest.mark.parametrize("query, words", [
    ({"opt-profile": ["cpu"], "opt-partition": ["gpu"]}, r"unknown option\(s\): partition"),
    ({"opt-profile": ["cpu"], "cmd": ["id"]}, r"unknown option\(s\): cmd"),  # JupyterHub would ignore it
    ({"opt-": ["x"]}, r"unknown option\(s\): "),
])
def test_unknown_keys_reach_the_forms_parser_and_are_refused_by_name(query, words):
    """Does an unknown opt- key, or a bare key next to opt- keys, get the form's "unknown option" error?"""
    assert is_link(query)
    with pytest.raises(OptionsError, match=words):
        parse_user_options(parse_link(query).options, load_profiles(PROFILES), set())


def test_legacy_bare_keys_are_options_too_and_next_is_not():
    """Are JupyterHub's older bare keys read as options (it would start from them), and next/display_name not?"""
    assert parse_link({"profile": ["cpu"], "hours": ["1"], "display_name": ["x"]}).options == {"profile": "cpu", "hours": "1"}
    assert not is_link({"next": ["/user/ann/"], "display_name": ["x"]})


@pytest.mark.parametrize("options, words", [
    ({"profile": "nope"}, "unknown profile 'nope'"),
    ({"profile": "cpu", "hours": "99"}, "allows 1 to 8 hours, not 99"),
    ({"profile": "cpu", "hours": "0"}, "allows 1 to 8 hours"),
    ({"profile": "cpu", "hours": "2;reboot"}, "whole number"),
    ({"profile": "cpu$(id)", "hours": "2"}, "unknown profile"),
    ({"profile": "h100-4", "hours": "2"}, "limited to the groups"),
])
def test_crafted_link_values_get_the_forms_own_errors(options, words):
    """Do a link's values meet the spawn form's strict checks, with its messages?"""
    with pytest.raises(OptionsError, match=words):
        parse_user_options(parse_link({f"opt-{k}": [v] for k, v in options.items()}).options,
                           load_profiles(PROFILES), {"students"})


@pytest.mark.parametrize("given, kept", [
    ("/user/ann/lab/tree/lessons/01.ipynb", "/user/ann/lab/tree/lessons/01.ipynb"),
    ("/hub/user-redirect/lab/tree/a%20b.ipynb", "/user/ann/lab/tree/a%20b.ipynb"),
    ("/hub/user/ann/lab/tree/a.ipynb", "/user/ann/lab/tree/a.ipynb"),  # JupyterHub's own "not running" page
    ("/hub/user/bob/lab", ""),
    ("/user/ann/lab?reset", "/user/ann/lab?reset"),
    ("/user/bob/lab/tree/x.ipynb", ""),                  # another learner's server
    ("/user/annie/lab", ""),                              # a name that only starts like hers
    ("https://evil.example/user/ann/lab", ""),            # off-site
    ("//evil.example/user/ann/lab", ""),
    ("///evil.example/user/ann/", ""),
    ("/user/ann/../bob/lab", ""),                         # a browser resolves dot segments
    ("/user/ann/%2e%2e/bob/lab", ""),
    ("/user/ann/%252e%252e/bob/lab", ""),
    ("/hub/user-redirect/../../user/bob/lab", ""),
    ("/user/ann/lab\\..\\..\\bob", ""),
    ("/user/ann//evil.example", ""),
    ("/user/ann/lab/tree/x\n", ""),
    ("/hub/admin", ""),
    ("javascript:alert(1)", ""),
    ("", ""),
])
def test_only_a_path_on_the_users_own_server_is_kept_as_next(given, kept):
    """Is next kept only when it leads to the learner's own server, and dropped for anything else?"""
    assert safe_next(given, USER, HUB) == kept


def test_built_links_round_trip_through_the_link_reader():
    """Does a built link carry exactly the options and a next that resolves to the opener's own server?"""
    url = build_link("https://academy.example.org/", "mig-slice", 2, "lessons/01 intro.ipynb")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "academy.example.org", "/hub/spawn")
    link = parse_link(parse_qs(parts.query))
    assert link.options == {"profile": "mig-slice", "hours": "2"}
    assert safe_next(link.next, USER, HUB) == "/user/ann/lab/tree/lessons/01%20intro.ipynb"


def test_a_template_link_opens_new_project_with_that_template_on_the_openers_server():
    """Does a template link carry the profile and hours and a next that lands on the opener's own JupyterLab with the
    template named, and does the builder refuse a template that does not exist or is a path?"""
    url = make_link(PROFILES, "cpu", "2", hub_url="https://academy.example.org", template="tabular-model")
    link = parse_link(parse_qs(urlsplit(url).query))
    assert link.options == {"profile": "cpu", "hours": "2"}
    assert safe_next(link.next, USER, HUB) == "/user/ann/lab?academy-template=tabular-model"
    for bad, words in [("no-such-template", "no template"), ("../x", "not a path"), ("a;id", "template")]:
        with pytest.raises(OptionsError, match=words):
            make_link(PROFILES, "cpu", "2", template=bad)


@pytest.mark.parametrize("path", ["../etc/passwd", "/etc/passwd", "a/../../b", "a/./b", "a;rm -rf ~", "$(id)", "", "a\nb"])
def test_the_link_builder_refuses_paths_outside_the_home(path):
    """Is a path with dot segments, an absolute path or shell characters refused by the builder?"""
    with pytest.raises(OptionsError, match="path:"):
        check_lesson_path(path)


def test_make_link_checks_like_the_form():
    """Does the builder refuse what the form would refuse (profile, hours, hub address)?"""
    assert make_link(PROFILES, "cpu", "2", "lessons/01.ipynb").startswith("/hub/spawn?opt-profile=cpu&opt-hours=2&")
    for args, words in [(("gpu-x", "2", "a.ipynb"), "unknown profile"), (("cpu", "9", "a.ipynb"), "1 to 8"),
                        (("cpu", "2", "a.ipynb", "ftp://x"), "--hub-url")]:
        with pytest.raises(OptionsError, match=words):
            make_link(PROFILES, *args)


def test_academy_link_prints_the_link_or_exits_2(capsys):
    """Does `academy link` print one link on stdout, and refuse bad input with exit code 2 and one stderr line?"""
    assert main(["link", "--profile", "cpu", "--hours", "2", "--path", "lessons/01.ipynb",
                 "--hub-url", "https://academy.example.org"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == ("https://academy.example.org/hub/spawn?opt-profile=cpu&opt-hours=2"
                   "&next=%2Fhub%2Fuser-redirect%2Flab%2Ftree%2Flessons%2F01.ipynb")
    assert main(["link", "--profile", "cpu", "--hours", "12", "--path", "x.ipynb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("academy link: hours:") and "1 to 8" in err
    with pytest.raises(SystemExit) as exc:
        main(["link", "--profile", "cpu"])
    assert exc.value.code == 2
