"""``vstudio catalog rebuild``: recreate the repository's catalog rows from the bucket.

Reads the refs ``projects/<name>/revs/<n>`` (commit JSON), ``projects/<name>/tags`` and
``projects/<name>/lock-rules``. Projects missing from the catalog are created. Locks are
not in the bucket (they are short-lived) and are kept as they are.
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


def rebuild(studio: Studio) -> dict[str, Any]:
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
                    d["message"]), d.get("changed", []))
            try:
                tags = json.loads(store.get_ref(f"projects/{name}/tags"))
                for tag, rev in tags.items():
                    rs.set_tag(conn, project.id, tag, int(rev))
            except NotFound:
                pass
            with contextlib.suppress(NotFound):
                rs.add_lock_rules(conn, project.id,
                                  json.loads(store.get_ref(f"projects/{name}/lock-rules")))
        report["projects"][name] = len(commits)
    return report
