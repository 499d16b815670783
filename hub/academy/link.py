"""``academy link``: print a one-click link that opens a notebook, or a project template, on a chosen profile.

The link is ``HUB/hub/spawn?opt-profile=P&opt-hours=N&next=/hub/user-redirect/lab/tree/PATH`` (``--path``), or
``...&next=/hub/user-redirect/lab?academy-template=SLUG`` (``--template``: JupyterLab opens "New project" with
that template chosen); the values are checked here as the spawn form checks them, so a link that prints is a
link the form accepts (for a learner allowed the profile; see README "One-click links"). Without ``--hub-url`` the link is site-relative (``/hub/spawn?...``),
for a Markdown cell or page served by the same hub.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from academy import clitools


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "link", help="print a one-click link: open a notebook on a profile for some hours",
        description=__doc__.split("\n\n")[1], epilog=clitools.EXIT_POLICY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--profile", required=True, help="profile slug from the profiles file (e.g. mig-slice)")
    p.add_argument("--hours", required=True, help="hours, within the profile's maximum")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--path", help="notebook or folder relative to the learner's home, e.g. lessons/01.ipynb")
    target.add_argument("--template", help="a project template (`academy project list`): opens New project with it chosen")
    p.add_argument("--hub-url", default="", help="the hub's public address (https://academy.example.org); default: a site-relative link")
    p.set_defaults(func=_cli)


def make_link(profiles_file: Path, profile: str, hours: str, path: str = "", hub_url: str = "", template: str = "") -> str:
    """The link, or ``OptionsError`` with the spawn form's message for a bad profile, hours, path or template."""
    from academy.profiles import load_profiles
    from academy.spawners.links import build_link, check_lesson_path
    from academy.spawners.options import OptionsError, parse_hours

    by_slug = {p.slug: p for p in load_profiles(profiles_file)}
    chosen = by_slug.get(profile)
    if chosen is None:
        raise OptionsError(f"profile: unknown profile {profile[:40]!r}; choose one of: {', '.join(by_slug)}")
    vetted_hours = parse_hours(hours, chosen)
    if template:
        from academy.project.templates import ProjectError, find_template
        try:
            template = find_template(template).slug
        except ProjectError as exc:
            raise OptionsError(f"template: {exc}") from None
        clean = ""
    else:
        clean = check_lesson_path(path)
    if hub_url:
        parts = urlsplit(hub_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise OptionsError(f"--hub-url: {hub_url[:80]!r} must be an http(s) address like https://academy.example.org")
    return build_link(hub_url, chosen.slug, vetted_hours, clean, template)


def _cli(args: argparse.Namespace) -> int:
    from academy.siteconfig import load_config
    from academy.spawners.options import OptionsError

    cfg = load_config(args.config)
    try:
        print(make_link(Path(cfg["profiles_file"]), args.profile, args.hours, args.path or "", args.hub_url,
                        args.template or ""))
    except OptionsError as exc:
        return clitools.refused(args, str(exc))
    return clitools.OK
