"""Tamper detection: what the tests rely on is checked, and restored, right before and after each test cell.

A submission can patch what tests use (``numpy.allclose``, ``numpy.testing``, ``builtins``), or the
kernel's error reporting (``showtraceback``, post-run hooks that clear the error, AST transformers that
drop ``assert``), and so pass tests with wrong answers.  :class:`~academy.course.grading.kernel.SandboxExecute`
sends :data:`SETUP` silently before the first cell (before any student code has run): it records the
objects tests use.  Before each test cell it sends :data:`CHECK`, which compares them with that record,
puts the originals back and answers with the list of changes (as JSON in a user expression, so it
never appears among the cell's outputs); after each test cell the same check tells whether the cell's
own run changed them, in which case that cell's result cannot be trusted and it is marked failed.
Changes found are recorded as ``tampering`` events; the submission is graded (honest parts count) and
flagged for the trainer with what changed.

The checker lives in the student's process, so a submission written against this checker can still
defeat it (for example by finding its record through ``gc``); it then fails to answer, or answers
garbage, and that is flagged too.  The grader never trusts the kernel for the verdict on errors:
nbgrader already turns an ``error`` execute reply without error output into a failure.
"""
from __future__ import annotations

import json

#: Expression whose value (a JSON string) the grader reads from the execute reply.
RESULT_EXPR = "__import__('sys').modules['_academy_integrity'].result"

SETUP = r'''
def _academy_integrity_setup():
    import builtins, gc, json, sys, types
    ip = get_ipython()
    mods = {}
    try:
        import numpy, numpy.testing
        for name in ("numpy", "numpy.testing", "numpy.testing._private.utils", "numpy._core.numeric",
                     "numpy.core.numeric", "numpy._core.fromnumeric", "numpy.core.fromnumeric"):
            if name in sys.modules:
                mods[name] = sys.modules[name]
    except Exception:
        pass
    mods["builtins"] = builtins
    # builtins._ changes with every displayed result; the other underscore names are interpreter plumbing.
    # input: ipykernel installs a fresh forwarder for every execute request.
    keep, skip = ("__import__", "__build_class__"), ("input",)
    watched = {name: (m, {k: v for k, v in vars(m).items() if (not k.startswith("_") or k in keep)
                          and not (name == "builtins" and k in skip)})
               for name, m in mods.items()}
    codes = {}
    for name, (m, snap) in watched.items():
        if name == "builtins":
            continue
        for key, obj in snap.items():
            code = getattr(obj, "__code__", None)
            if code is not None:
                codes[(name, key)] = (obj, code, getattr(obj, "__defaults__", None))
    shell_names = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                   "run_ast_nodes", "run_code", "transform_cell", "transform_ast", "should_run_async",
                   "ex", "ev", "user_expressions", "_run_cell")
    cls_snap = {n: getattr(type(ip), n, None) for n in shell_names}
    missing = object()
    # ipykernel itself leaves a bound _showtraceback in the instance: what is there now is the reference.
    inst_snap = {n: vars(ip).get(n, missing) for n in shell_names}
    lists = {n: list(getattr(ip, n)) for n in ("ast_transformers", "input_transformers_post",
                                               "input_transformers_cleanup") if hasattr(ip, n)}
    callbacks = {k: list(v) for k, v in ip.events.callbacks.items()}
    attrs = {n: getattr(ip, n, None) for n in ("compile", "CustomTB", "InteractiveTB", "SyntaxTB",
                                               "displayhook", "display_pub", "custom_exceptions")}
    state = types.ModuleType("_academy_integrity")

    import os
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in {sys.prefix, sys.base_prefix})

    def installed(cb):
        # Hooks that libraries register (matplotlib's inline backend) have their code in the Python
        # installation; a hook defined in a notebook has its code in the kernel's temporary files.
        code = getattr(getattr(cb, "func", cb), "__code__", None)
        return code is not None and os.path.realpath(code.co_filename).startswith(roots)

    def check():
        changes = []
        for name, (m, snap) in watched.items():
            if sys.modules.get(name) is not m:
                sys.modules[name] = m
                changes.append(f"sys.modules[{name!r}] replaced")
            current = vars(m)
            for key, obj in snap.items():
                if current.get(key, changes) is not obj:
                    changes.append(f"{name}.{key} replaced" if key in current else f"{name}.{key} deleted")
                    setattr(m, key, obj)
        for (name, key), (obj, code, defaults) in codes.items():
            if obj.__code__ is not code or getattr(obj, "__defaults__", None) is not defaults:
                changes.append(f"{name}.{key}: code or defaults changed")
                obj.__code__ = code
                obj.__defaults__ = defaults
        for n, orig in cls_snap.items():
            if vars(ip).get(n, missing) is not inst_snap[n]:
                changes.append(f"shell.{n} overridden")
                if inst_snap[n] is missing:
                    delattr(ip, n)
                else:
                    vars(ip)[n] = inst_snap[n]
            if getattr(type(ip), n, None) is not orig:
                changes.append(f"InteractiveShell.{n} replaced")
                setattr(type(ip), n, orig)
        for n, orig in attrs.items():
            if getattr(ip, n, None) is not orig:
                changes.append(f"shell.{n} replaced")
                setattr(ip, n, orig)
        for n, orig in lists.items():
            cur = getattr(ip, n)
            if cur != orig:
                changes.append(f"shell.{n} changed")
                cur[:] = orig
        for event, cbs in ip.events.callbacks.items():
            for cb in list(cbs):
                if cb in callbacks.get(event, []) or installed(cb):
                    continue
                changes.append(f"{event} hook {getattr(cb, '__qualname__', type(cb).__name__)} registered")
                cbs.remove(cb)
        if sys.gettrace() is not None or sys.getprofile() is not None:
            changes.append("trace/profile function set")
            sys.settrace(None)
            sys.setprofile(None)
        state.result = json.dumps(changes)

    state.check = check
    state.result = "[]"
    sys.modules["_academy_integrity"] = state
_academy_integrity_setup()
del _academy_integrity_setup
'''

CHECK = "__import__('sys').modules['_academy_integrity'].check()"


def parse(reply: dict | None) -> list[str]:
    """The changes a CHECK reply lists; an unreadable or missing answer is itself a change."""
    if not reply:
        return ["integrity check got no answer"]
    content = reply.get("content", {})
    if content.get("status") != "ok":
        return [f"integrity check failed: {content.get('ename', '?')}"]
    value = content.get("user_expressions", {}).get("r", {})
    text = value.get("data", {}).get("text/plain", "") if value.get("status") == "ok" else ""
    try:
        import ast
        changes = json.loads(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError):
        return ["integrity check answer unreadable (the checker was tampered with)"]
    if not isinstance(changes, list):
        return ["integrity check answer unreadable (the checker was tampered with)"]
    return [str(c)[:200] for c in changes[:20]]
