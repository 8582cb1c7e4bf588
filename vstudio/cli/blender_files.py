"""What the Blender add-on asks about one file: its repository state and what it uses.

Kept here, behind ``vstudio blender state`` and ``vstudio blender submit``, so that the
add-on (running in Blender's own Python, without vstudio's dependencies) gets everything
about the open file from one CLI call over the same HTTP API the other commands use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput, NotFound


def uses_of(path: Path) -> tuple[list[Path], list[str]]:
    """Every file ``path`` uses, recursively (libraries are followed), and the missing ones."""
    from vstudio.render.scanners import has_scanner, scan_file

    found: dict[str, Path] = {}
    missing: list[str] = []
    todo = [path.resolve()]
    seen: set[Path] = set()
    while todo:
        current = todo.pop()
        if current in seen or not has_scanner(current):
            continue
        seen.add(current)
        for use in scan_file(current).uses:
            p = Path(use.path)
            if not (use.exists or p.exists()):
                missing.append(use.path)
                continue
            if p.is_dir() or str(p) in found or p == path.resolve():
                continue
            found[str(p)] = p
            todo.append(p)
    return list(found.values()), sorted(set(missing))


def _status_of(rel: str, st: Any, entries: dict[str, Any]) -> str:
    for name, paths in (("modified", st.modified), ("added", st.added),
                        ("deleted", st.deleted), ("conflicted", st.conflicts)):
        if rel in paths:
            return name
    return "normal" if rel in entries else "unversioned"


def _summary(d: dict[str, Any]) -> str:
    """The words an artist reads in the panel header, most urgent first."""
    lock = d["lock"]
    if d["status"] == "conflicted":
        return "conflicted"
    if lock and lock["owner"] != d["user"]:
        return f"locked by {lock['owner']}"
    if d["out_of_date"]:
        return "out of date"
    if d["status"] in ("modified", "added", "unversioned"):
        what = {"modified": "modified", "added": "not committed yet",
                "unversioned": "not committed yet"}[d["status"]]
        return f"{what}, locked by me" if lock else what
    if lock:
        return "locked by me"
    if d["needs_lock"]:
        return "needs lock"
    return "up to date"


def file_state(path: Path, token: str | None = None) -> dict[str, Any]:
    """The repository state of one file in a working copy, for the add-on's panel."""
    from vstudio.cli.repos import open_wc
    from vstudio.repo.paths import matches_any

    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise NotFound(f"{path} does not exist (save the file first)")
    wc = open_wc(str(path.parent), token)
    try:
        rel = wc.rel(str(path))
        st = wc.status("")
        head = wc.backend.head()
        base = wc.index.entries.get(rel)
        remote = wc.backend.tree(head).get(rel) if head else None
        locks = wc.backend.locks()
        lk = locks.get(rel)
        d: dict[str, Any] = {
            "file": rel, "root": str(wc.root), "project": wc.meta.get("project"),
            "server": wc.meta.get("server"), "user": wc.backend.user, "rev": wc.index.rev,
            "head": head, "status": _status_of(rel, st, wc.index.entries),
            "out_of_date": (base[0] if base else None) != (remote.oid if remote else None)
            and remote is not None,
            "needs_lock": matches_any(rel, wc.backend.lock_rules()),
            "lock": {"owner": lk.owner, "time": lk.time, "message": lk.message} if lk else None,
            # every lock in the project, so the artist sees who holds what without asking
            "locks": [{"path": x.path, "owner": x.owner, "since": x.time, "message": x.message}
                      for x in sorted(locks.values(), key=lambda x: x.path)],
            "changed_uses": [], "missing": []}
        uses, d["missing"] = uses_of(path)
        for u in uses:
            try:
                urel = wc.rel(str(u))
            except BadInput:
                continue  # outside the working copy: not ours to commit
            ust = _status_of(urel, st, wc.index.entries)
            if ust in ("modified", "added", "unversioned"):
                d["changed_uses"].append({"path": urel, "status": ust})
        d["summary"] = _summary(d)
        return d
    finally:
        wc.backend.close()


def job_inputs(path: Path, committed: bool, upload: Any) -> tuple[str, list[dict[str, str]]]:
    """The .blend's path in the job and the inputs that carry it and what it uses.

    ``committed``: ``PROJECT@REV:path`` references to the working copy's base revision
    (refused when the file or a library has changes not committed). Else every file is
    uploaded through ``upload(path) -> {"oid": …, "grant": …}``. Paths are kept relative
    to the working copy (or to the file's folder) so the renderer finds libraries where
    the file expects them.
    """
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise NotFound(f"{path} does not exist (save the file first)")
    uses, missing = uses_of(path)
    if missing:
        raise NotFound(f"{path.name} uses missing files: {', '.join(missing[:3])}")
    if committed:
        return _committed_inputs(path, uses)
    base = _common_root(path, uses)
    inputs = [{"path": p.relative_to(base).as_posix(), **upload(p)} for p in [path, *uses]]
    return inputs[0]["path"], inputs


def _common_root(path: Path, uses: list[Path]) -> Path:
    from vstudio.repo.wcindex import find_root

    wc_root = find_root(str(path.parent))
    if wc_root and all(u.is_relative_to(wc_root) for u in uses):
        return Path(wc_root)
    return Path(os.path.commonpath([str(path.parent), *(str(u.parent) for u in uses)]))


def _committed_inputs(path: Path, uses: list[Path]) -> tuple[str, list[dict[str, str]]]:
    from vstudio.cli.repos import open_wc

    wc = open_wc(str(path.parent))
    try:
        st = wc.status("")
        inputs = []
        for p in [path, *uses]:
            rel = wc.rel(str(p))
            state = _status_of(rel, st, wc.index.entries)
            if state != "normal":
                raise BadInput(f"{rel} is {state}: commit it first, or submit the saved file")
            inputs.append({"path": rel, "ref": f"{wc.meta['project']}@{wc.index.rev}:{rel}"})
        return inputs[0]["path"], inputs
    finally:
        wc.backend.close()


def profile_params(path: Path, name: str) -> dict[str, Any]:
    """Job parameters from a ``vstudio.toml`` profile, as ``vstudio render`` sets them."""
    from vstudio.render.project import Project, find_root
    from vstudio.render.runner import task_for

    project = Project(find_root(path))
    prof = project.profile(project.check_profile(name), project.rel(path))
    params = task_for(path, "blender", None, prof, [])["params"]
    params.pop("file", None)
    return {**params, "chunk": prof.chunk}
