"""``academy project``: list the project templates and create a project folder in your home from one."""
from __future__ import annotations

import argparse
from pathlib import Path

from academy import clitools


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("project", help="start your own project from a template (in your home)")
    actions = parser.add_subparsers(dest="project_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="the templates: name, title and what each does")
    listing.add_argument("--json", action="store_true", help="machine-readable list")
    listing.set_defaults(func=cmd_list)
    new = actions.add_parser("new", help="create ~/NAME from TEMPLATE (never overwrites anything)")
    new.add_argument("template", metavar="TEMPLATE", help="a template name from `academy project list`")
    new.add_argument("name", metavar="NAME", help="the new folder's name: letters, digits, '-' and '_'")
    new.add_argument("--home", type=Path, default=None, help="where to create it (default: your home folder)")
    new.set_defaults(func=cmd_new)


def cmd_list(args: argparse.Namespace) -> int:
    import json

    from academy.project.templates import ProjectError, list_templates

    try:
        templates = list_templates()
    except ProjectError as exc:
        raise clitools.Refused(str(exc)) from None
    if args.json:
        print(json.dumps([t.as_json() for t in templates], indent=2))
        return clitools.OK
    width = max((len(t.slug) for t in templates), default=0)
    for t in templates:
        print(f"{t.slug:<{width}}  {t.title}\n{'':<{width}}  {t.description}")
    return clitools.OK


def cmd_new(args: argparse.Namespace) -> int:
    from academy.project.templates import ProjectError, create_project

    try:
        dest = create_project(args.template, args.name, args.home)
    except ProjectError as exc:
        raise clitools.Refused(str(exc)) from None
    print(f"created {dest} from template {args.template}: open its README.md, then the notebook")
    return clitools.OK
