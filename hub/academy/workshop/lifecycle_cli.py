"""``academy workshop warmstart|teardown|purge``: the lifecycle buttons of the service, for scripts.

The same ``lifecycle`` functions as the service's pages and scheduler, with the same database,
step store and audit log; a teardown the service began (or a killed run left) is resumed, never
run twice at once (``lifecycle.claim``).
"""
from __future__ import annotations

import asyncio
import json

from academy import clitools
from academy.workshop import lifecycle


def cmd_warmstart(args) -> int:
    from academy.workshop.cli import _actor, _ctx, _workshop

    ctx = _ctx(args)
    _workshop(ctx, args.slug)
    if not args.status:
        asyncio.run(lifecycle.warm_start(ctx, _actor(args, ctx), args.slug, args.retry or None))
    rows = [{"username": e.participant, "state": e.state, "reason": e.reason, "attempts": e.attempts}
            for e in lifecycle.warm_entries(ctx, args.slug)]
    if args.json:
        print(json.dumps(rows))
    for row in [] if args.json else rows:
        print(f"{row['username']}\t{row['state']}\t{row['reason']}")
    failed = [r["username"] for r in rows if r["state"] == "failed" and (not args.retry or r["username"] in args.retry)]
    return clitools.failed(args, f"{len(failed)} server(s) did not start: {', '.join(failed)}") if failed else clitools.OK


def _report(args, outcome: lifecycle.Outcome, what: str, slug: str) -> int:
    if outcome.already:
        print(f"{slug}: {what} had finished already")
    elif outcome.complete:
        print(f"{slug}: {what} complete")
    else:
        for failure in outcome.failures:
            clitools.error(args, f"{slug}: {failure}")
        return clitools.failed(args, f"{slug}: {what} incomplete; run it again after fixing the above")
    return clitools.OK


def cmd_teardown(args) -> int:
    from academy.workshop.cli import _actor, _ctx, _workshop

    ctx = _ctx(args)
    _workshop(ctx, args.slug)
    return _report(args, asyncio.run(lifecycle.teardown(ctx, _actor(args, ctx), args.slug)), "teardown", args.slug)


def cmd_purge(args) -> int:
    from academy.workshop.cli import _actor, _ctx, _workshop

    ctx = _ctx(args)
    _workshop(ctx, args.slug)
    return _report(args, asyncio.run(lifecycle.purge(ctx, _actor(args, ctx), args.slug)), "purge", args.slug)


def register(sub, wrap) -> None:
    """Add the subcommands to ``academy workshop``; ``wrap`` turns refusals into clear exit codes."""
    w = sub.add_parser("warmstart", help="start the participants' own servers now (or retry failed ones)")
    w.add_argument("slug")
    clitools.list_option(w, "--retry", metavar="USERNAME", help="only this participant")
    w.add_argument("--status", action="store_true", help="show the warm start's progress; start nothing")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=wrap(cmd_warmstart))
    t = sub.add_parser("teardown", help="tear the workshop down now (resumes an interrupted teardown)")
    t.add_argument("slug")
    t.set_defaults(func=wrap(cmd_teardown))
    p = sub.add_parser("purge", help="after the retention: delete the workshop's accounts, homes and archives")
    p.add_argument("slug")
    p.set_defaults(func=wrap(cmd_purge))
