"""``vstudio status`` without click, rich or SQLAlchemy: start-up time is most of its cost.

Handles ``status [--json] [PATH...]`` in a working copy; declines (returns None) anything
else, e.g. ``--show-updates``, so the full command answers it.
"""

from __future__ import annotations

import os
import sys


def main(args: list[str]) -> int | None:
    as_json = False
    targets: list[str] = []
    for a in args:
        if a == "--json":
            as_json = True
        elif a.startswith("-"):
            return None
        else:
            targets.append(a)
    from vstudio.repo import wcindex, wcstatus

    root = wcindex.find_root(os.getcwd())
    if root is None:
        return None
    try:
        index = wcindex.Index.load(root)
    except (OSError, ValueError, EOFError, KeyError, TypeError):
        return None
    unders = []
    for t in targets or [""]:
        rel = os.path.relpath(os.path.abspath(t), root) if t else ""
        if rel == ".":
            rel = ""
        if rel.startswith(".."):
            sys.stderr.write(f"error: {t} is outside the working copy {root}\n")
            return 1
        unders.append(rel.replace(os.sep, "/"))
    out_json: list[dict[str, object]] = []
    user: str | None = None
    refreshed = False
    for under in unders:
        res = wcstatus.status(root, index, under)
        refreshed = refreshed or res.refreshed
        prefix = under + "/" if under else ""
        locks = [p for p in index.locks if not under or p == under or p.startswith(prefix)]
        if as_json:
            if user is None:
                import json

                with open(os.path.join(root, wcindex.META, "wc.json")) as f:
                    user = str(json.load(f).get("user") or "")
            out_json.extend(wcstatus.status_json(res, locks, user))
        else:
            sys.stdout.write(wcstatus.format_lines(res.lines(locks)))
    if as_json:
        import json

        sys.stdout.write(json.dumps(out_json, indent=2) + "\n")
    if refreshed:
        try:  # noqa: SIM105 - contextlib would cost an import on the fast path
            index.save(root)
        except OSError:
            pass  # a read-only working copy still answers
    return 0
