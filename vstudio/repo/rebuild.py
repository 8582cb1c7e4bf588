"""``vstudio catalog rebuild``: recreate the repository's catalog rows from the bucket.

Reads the refs ``projects/<name>/revs/<n>`` (commit JSON), ``projects/<name>/tags`` and
``projects/<name>/lock-rules`` and ``projects/<name>/locks/<hash>`` (one per lock).
Projects missing from the catalog are created. Locks recorded in the bucket are restored
where the catalog has none on that path; locks the catalog holds already are kept.

The bucket holds no users, tokens, sessions, project rights, trust or settings, and no
farm state, so those cannot come back from it: the report says so (``not_restored``) and
how many users the catalog still has, so nobody takes a rebuilt catalog for a full one.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from vstudio.catalog import accounts
from vstudio.catalog import repo_store as rs
from vstudio.errors import CorruptObject, NotFound
from vstudio.repo.trees import oid_of

if TYPE_CHECKING:
    from vstudio.studio import Studio


def _commits(studio: Studio, project: str) -> list[dict[str, Any]]:
    out = []
    for name in studio.store.list_refs(f"projects/{project}/revs/"):
        raw = studio.store.get_ref(name)
        try:
            doc = json.loads(raw)
            rev = int(doc["rev"])
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptObject(f"ref {name} is not a commit: {e}") from None
        out.append(doc | {"rev": rev, "_oid": oid_of(raw)})
    out.sort(key=lambda d: d["rev"])
    # A crash between writing a ref and committing the catalog can leave a ref for a
    # revision that never became visible; it is the last one and its parent chain is
    # the only proof. Keep the unbroken run r1..rN.
    good = []
    for i, d in enumerate(out, start=1):
        if d["rev"] != i:
            break
        good.append(d)
    return good


def _locks(studio: Studio, project: str) -> list[rs.LockRow]:
    out: dict[str, rs.LockRow] = {}
    for name in studio.store.list_refs(f"projects/{project}/locks/"):
        try:
            doc = json.loads(studio.store.get_ref(name))
            lk = rs.LockRow(str(doc["path"]), str(doc["owner"]), float(doc["time"]),
                            str(doc.get("message") or ""))
        except NotFound:
            continue  # unlocked while we listed
        except (ValueError, KeyError, TypeError) as e:
            raise CorruptObject(f"ref {name} is not a lock: {e}") from None
        out[lk.path] = lk
    return sorted(out.values(), key=lambda lk: lk.path)


RESTORED = ("projects", "revisions with their changed paths and properties", "tags",
            "lock rules", "locks")
NOT_RESTORED = ("users", "tokens and sessions", "project rights (grant)",
                "project trust (recreated projects are untrusted) and settings",
                "farm jobs, tasks, workers and their logs")
REDO = ("kept where the catalog still has them; otherwise restore a database backup, or "
        "redo them: vstudio user add NAME --role ROLE, vstudio project grant, "
        "vstudio project trust, and submit the jobs again")


def rebuild(studio: Studio) -> dict[str, Any]:
    report = _rebuild_projects(studio)
    report.update(restored=list(RESTORED), not_restored=list(NOT_RESTORED), redo=REDO,
                  users=len(accounts.list_users(studio.engine)))
    return report


def _rebuild_projects(studio: Studio) -> dict[str, Any]:
    store = studio.store
    names = sorted({r.split("/")[1] for r in store.list_refs("projects/")
                    if r.count("/") >= 2})
    report: dict[str, Any] = {"projects": {}, "created": []}
    for name in names:
        try:
            project = accounts.get_project(studio.engine, name)
        except NotFound:
            project = accounts.create_project(studio.engine, name)
            report["created"].append(name)
        commits = _commits(studio, name)
        with studio.engine.begin() as conn:
            rs.delete_project_history(conn, project.id)
            for d in commits:
                rs.insert_revision(conn, project.id, rs.RevisionRow(
                    d["rev"], d["_oid"], d["tree"], d["author"], float(d["time"]),
                    d["message"]), d.get("changed", []), d.get("props"))
            try:
                tags = json.loads(store.get_ref(f"projects/{name}/tags"))
                for tag, rev in tags.items():
                    rs.set_tag(conn, project.id, tag, int(rev))
            except NotFound:
                pass
            with contextlib.suppress(NotFound):
                rs.add_lock_rules(conn, project.id,
                                  json.loads(store.get_ref(f"projects/{name}/lock-rules")))
            locks = _locks(studio, name)
            held = rs.locks_on(conn, project.id, [lk.path for lk in locks])
            for lk in locks:
                if lk.path not in held:
                    rs.take_lock(conn, project.id, lk)
        report["projects"][name] = len(commits)
        report.setdefault("locks", {})[name] = len(locks)
    return report
