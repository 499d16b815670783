"""``academy workshop create|list|show|participants|release`` (and ``warmstart|teardown|purge``, lifecycle_cli): the service's own actions, for scripts.

The CLI uses the service's hub API token from the state directory, so it needs the hub
running (``academy up``) and read access to the state directory; it acts as ``--as`` (default:
the first admin) and every action lands in the same audit log as the browser's.
"""
from __future__ import annotations

import argparse
import json
import sys

from academy import clitools
from academy.workshop import actions
from academy.workshop.forms import InvalidRequest, Problem, WorkshopRequest, parse_time, split_names


def _ctx(args) -> actions.Context:
    from academy.siteconfig import load_config

    cfg = load_config(args.config)
    if not actions.token_file(cfg).exists():
        raise clitools.Refused("no service token in the state directory; start the hub with `academy up` first")
    from academy.readyfile import running_url

    url = running_url(cfg)  # where the running `academy up` put the hub (`--port`), else the config's port
    return actions.make_context(cfg, api_url=url.rstrip("/") + "/hub/api" if url else None)


def _actor(args, ctx) -> str:
    return args.actor or ctx.cfg["auth"]["admin_users"][0]


def _print_creds(creds, as_json: bool, url: str) -> None:
    rows = [{"username": c.username, "password": c.password, "url": url} for c in creds]
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(f"{row['username']}\t{row['password']}")


def _items(values: list[str], kind: str, problems: list[Problem]):
    out = []
    for entry in values:
        name, _, at = entry.partition("@")
        out.append((name, parse_time(at, kind, problems) if at else None))
    return out


def cmd_create(args) -> int:
    ctx = _ctx(args)
    problems: list[Problem] = []
    start, end = parse_time(args.start, "start", problems), parse_time(args.end, "end", problems)
    lessons, assignments = _items(args.lesson, "lessons", problems), _items(args.assignment, "assignments", problems)
    if problems:
        raise InvalidRequest(problems)
    req = WorkshopRequest(slug=args.slug, title=args.title, start=start, end=end, profiles=args.profile,
                          reservation=args.reservation, trainer_group=args.trainer_group,
                          participant_group=args.participant_group, count=args.participants,
                          usernames=split_names(",".join(args.user)), lessons=lessons, assignments=assignments)
    import asyncio

    from academy.workshop.lifecycle import reservation_problems
    workshop, creds = actions.create_workshop(ctx, _actor(args, ctx), req, asyncio.run(reservation_problems(ctx, req)))
    print(f"created workshop {workshop.slug} ({len(workshop.participants)} participants)", file=sys.stderr)
    _print_creds(creds, args.json, ctx.public_url)
    return 0


def cmd_list(args) -> int:
    from academy.workshop.service import workshop_json
    from academy.workshop.models import Workshop
    from sqlalchemy import select

    ctx = _ctx(args)
    with ctx.sessions() as db:
        rows = [workshop_json(w) for w in db.scalars(select(Workshop).order_by(Workshop.start))]
    if args.json:
        print(json.dumps(rows))
    for w in [] if args.json else rows:
        print(f"{w['slug']}\t{w['start']}\t{w['end']}\t{len(w['participants'])} participants\t{w['title']}")
    return 0


def _workshop(ctx, slug):
    w = actions.get_workshop(ctx, slug)
    if w is None:
        raise InvalidRequest([Problem("slug", f"no workshop {slug!r}")])
    return w


def cmd_show(args) -> int:
    from academy.workshop.service import workshop_json

    print(json.dumps(workshop_json(_workshop(_ctx(args), args.slug)), indent=2))
    return 0


def cmd_participants(args) -> int:
    ctx = _ctx(args)
    w = _workshop(ctx, args.slug)
    actor = _actor(args, ctx)
    if args.remove:
        for name in args.remove:
            actions.remove_participant(ctx, actor, args.slug, name)
    if args.add or args.user or args.group:
        import asyncio

        from academy.workshop.lifecycle import room_problems
        names = split_names(",".join(args.user))
        creds = actions.add_participants(ctx, actor, args.slug, args.add, names, args.group or "",
                                         asyncio.run(room_problems(ctx, args.slug, args.add + len(names))))
        _print_creds(creds, args.json, ctx.public_url)
    elif not args.remove:
        for p in w.participants:
            print(p.username)
    return 0


def cmd_release(args) -> int:
    from academy.workshop.release import due, release_content

    ctx = _ctx(args)
    todo = [(args.slug, "lesson", n) for n in args.lesson] + [(args.slug, "assignment", n) for n in args.assignment]
    if args.due:
        todo += [item for item in due(ctx) if item[0] == args.slug]
    for slug, kind, name in todo:
        _workshop(ctx, slug)
        print(f"{kind} {name}: {release_content(ctx, _actor(args, ctx), slug, kind, name)}")
    return 0


# --- course work (the same functions as the workshop page's buttons) --------------------------------
def cmd_coursework(args) -> int:
    from academy.workshop import coursework

    ctx = _ctx(args)
    _workshop(ctx, args.slug)
    act = getattr(coursework, args.workshop_command)
    extra = {} if args.workshop_command == "export" else {"assignment": args.assignment}
    if args.workshop_command == "autograde":
        extra["jobs"] = args.jobs
    results = act(ctx, _actor(args, ctx), args.slug, echo=print, **extra)
    if args.workshop_command == "export":
        print(f"export in {coursework.export_dir(ctx, args.slug)}")
    missed = [f"{r.student} ({r.status})" for r in results if r.status in ("failed", "withheld")]
    return clitools.failed(args, f"{len(missed)} failed: {', '.join(missed)}") if missed else clitools.OK


def _run(func):
    def run(args) -> int:
        try:
            return func(args)
        except InvalidRequest as exc:
            for p in exc.problems:
                clitools.error(args, f"{p.field}: {p.message}")
            return clitools.refused(args, "nothing was created or changed")
        except actions.HubError as exc:
            return clitools.failed(args, str(exc))
    return run


def register(subparsers) -> None:
    p = subparsers.add_parser("workshop", help="create and run workshops (the same actions as /services/academy/)")
    p.add_argument("--as", dest="actor", help="hub user recorded in the audit log (default: the first admin)")
    sub = p.add_subparsers(dest="workshop_command", required=True)
    c = sub.add_parser("create", help="create a workshop, its groups and participants")
    c.add_argument("slug")
    c.add_argument("--title", required=True)
    c.add_argument("--start", required=True, help="YYYY-MM-DDTHH:MM, Europe/Amsterdam")
    c.add_argument("--end", required=True, help="YYYY-MM-DDTHH:MM, Europe/Amsterdam")
    clitools.list_option(c, "--profile", metavar="SLUG", help="profile slug participants may use")
    c.add_argument("--reservation", default="")
    c.add_argument("--trainer-group", default="")
    c.add_argument("--participant-group", default="")
    c.add_argument("--participants", type=clitools.non_negative_int, default=0, help="number of new <slug>-NN local accounts")
    clitools.list_option(c, "--user", metavar="USERNAME", help="existing hub user(s)")
    clitools.list_option(c, "--lesson", metavar="NAME[@TIME]", help="NAME or NAME@YYYY-MM-DDTHH:MM")
    clitools.list_option(c, "--assignment", metavar="NAME[@TIME]", help="NAME or NAME@YYYY-MM-DDTHH:MM")
    c.add_argument("--json", action="store_true", help="print the new credentials as JSON")
    c.set_defaults(func=_run(cmd_create))
    ls = sub.add_parser("list", help="list workshops")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_run(cmd_list))
    sh = sub.add_parser("show", help="one workshop as JSON")
    sh.add_argument("slug")
    sh.set_defaults(func=_run(cmd_show))
    pa = sub.add_parser("participants", help="list, add or remove participants")
    pa.add_argument("slug")
    pa.add_argument("--add", type=clitools.non_negative_int, default=0, help="number of new <slug>-NN local accounts")
    clitools.list_option(pa, "--user", metavar="USERNAME", help="existing hub user(s) to add")
    pa.add_argument("--group", help="add every member of this hub (SSO) group")
    clitools.list_option(pa, "--remove", metavar="USERNAME", help="participant(s) to remove")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(func=_run(cmd_participants))
    rl = sub.add_parser("release", help="release lessons or assignments of a workshop now")
    rl.add_argument("slug")
    clitools.list_option(rl, "--lesson", metavar="NAME", help="lesson to release now")
    clitools.list_option(rl, "--assignment", metavar="NAME", help="assignment to release now")
    rl.add_argument("--due", action="store_true", help="everything whose release time has come")
    rl.set_defaults(func=_run(cmd_release))
    for step, text in (("collect", "collect participants' submissions"), ("autograde", "autograde collected submissions"),
                       ("feedback", "generate and return feedback"), ("export", "grades CSVs and one report per participant")):
        cw = sub.add_parser(step, help=f"course work: {text} (the workshop's assignments and participants only)")
        cw.add_argument("slug")
        if step != "export":
            cw.add_argument("--assignment", help="one assignment of the workshop (default: every released one)")
        if step == "autograde":
            cw.add_argument("--jobs", type=clitools.positive_int, default=2, help="submissions graded at once")
        cw.set_defaults(func=_run(cmd_coursework))
    from academy.workshop import lifecycle_cli  # warmstart, teardown, purge
    lifecycle_cli.register(sub, _run)
