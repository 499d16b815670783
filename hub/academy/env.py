"""``academy env create|install|list|remove``: the command line of own environments (:mod:`academy.envs`)."""
from __future__ import annotations

import json
from dataclasses import asdict

from academy import clitools


def _cli(args) -> int:
    from academy.envs import EnvError, create, list_envs, pip_install, remove

    log = (lambda m: print(f"  $ {m}", flush=True)) if getattr(args, "verbose", False) else (lambda _m: None)
    try:
        if args.env_command == "create":
            print(f"Creating environment {args.name!r} on top of the shared one …", flush=True)
            env = create(args.name, args.packages, log=log)
            print(f"Ready: choose the kernel \"Python ({env.name})\" in JupyterLab (kernel {env.kernel}).\n"
                  f"Install more with `academy env install {env.name} PACKAGE` or `%pip install PACKAGE` in a notebook on it.")
        elif args.env_command == "install":
            pip_install(args.name, args.packages, log=log)
            print(f"Installed into {args.name}: {', '.join(args.packages)}")
        elif args.env_command == "list":
            envs = list_envs()
            if args.json:
                print(json.dumps([asdict(e) for e in envs], indent=1))
            elif not envs:
                print("No own environments yet: `academy env create NAME [PACKAGE …]`.")
            for e in envs if not args.json else []:
                print(f"{e.name}\tkernel {e.kernel}\t{len(e.packages)} package(s) of its own")
        elif args.env_command == "remove":
            remove(args.name)
            print(f"Removed environment {args.name!r} and its kernel.")
    except EnvError as exc:
        return clitools.refused(args, str(exc))
    return clitools.OK

def register(subparsers) -> None:
    p = subparsers.add_parser("env", help="own Python environments on top of the shared one, as Jupyter kernels")
    sub = p.add_subparsers(dest="env_command", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("create", help="create NAME (a venv seeing the shared packages) and its kernel")
    c.add_argument("name")
    c.add_argument("packages", nargs="*", help="requirements to install from the configured index")
    c.add_argument("-v", "--verbose", action="store_true", help="show the commands run")
    i = sub.add_parser("install", help="install packages into NAME from the configured index")
    i.add_argument("name")
    i.add_argument("packages", nargs="+")
    i.add_argument("-v", "--verbose", action="store_true", help="show the commands run")
    ls = sub.add_parser("list", help="list your environments")
    ls.add_argument("--json", action="store_true")
    r = sub.add_parser("remove", help="remove NAME and its kernel")
    r.add_argument("name")
    p.set_defaults(func=_cli)


