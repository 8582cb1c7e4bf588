"""Scopes of the render cache: whose cached render a ref is, named in the ref itself.

A cached render is ``render/<scope>/<key>`` (its manifest) and, while it renders,
``render-chunks/<scope>/<key>/<first>-<last>`` (its finished chunks). The scope says who
may read and write it:

    p.<project>   a file rendered in a working copy, checkout or mount of the project
                  of the server that keeps the cache: whoever may read the project reads
                  it, whoever may write it writes it
    u.<user>      plain files outside any project: that user only

The client names refs with ``manifest_ref``/``chunk_prefix`` (``scope_for`` picks the
scope of a folder); the server reads the scope back with ``of_name`` and checks the
caller's rights on it (``api.routes_refs``). The same render key in two scopes is two
entries: a render is shared only with those who may read what it was rendered from.
Refs written before scopes (``render/<key>``, ``render-chunks/<key>/...``) are no hits any
more: those files render again, never wrongly; over HTTP only an admin reaches them, and
``vstudio store gc`` deletes them (``drop_unscoped``) so their objects can be collected.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vstudio.errors import NotFound

if TYPE_CHECKING:
    from vstudio.store.api import ObjectStore

REF_PREFIX = "render/"
CHUNK_PREFIX = "render-chunks/"
PREFIXES = (REF_PREFIX, CHUNK_PREFIX)
PROJECT, USER = "p", "u"
# the catalog's rule for project and user names (``catalog.accounts.NAME_RE``)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Scope:
    kind: str  # PROJECT or USER
    name: str  # the project's or the user's name

    def __str__(self) -> str:
        return f"{self.kind}.{self.name}"


def parse(text: str) -> Scope | None:
    """``p.NAME`` or ``u.NAME`` as a ``Scope``, else None."""
    kind, dot, name = text.partition(".")
    if not dot or kind not in (PROJECT, USER) or not _NAME.match(name):
        return None
    return Scope(kind, name)


def project(name: str) -> str:
    return str(Scope(PROJECT, name))


def user(name: str) -> str:
    return str(Scope(USER, name))


def manifest_ref(scope: str, key: str) -> str:
    return f"{REF_PREFIX}{scope}/{key}"


def chunk_prefix(scope: str, key: str) -> str:
    return f"{CHUNK_PREFIX}{scope}/{key}/"


def is_cache(name: str) -> bool:
    """Whether a ref name (or a listing prefix) lies in the render cache."""
    return name.startswith(PREFIXES)


def of_name(name: str) -> Scope | None:
    """The scope a render cache ref name (or a listing prefix that names the scope whole,
    up to its ``/``) lies in; None when it names none (an unscoped, pre-scope ref)."""
    for prefix in PREFIXES:
        if name.startswith(prefix):
            first, slash, _ = name[len(prefix):].partition("/")
            return parse(first) if slash else None
    return None


def names_a_scope(prefix: str) -> bool:
    """Whether a listing prefix goes past the scope part (``render/p.film/...``)."""
    return any(prefix.startswith(p) and "/" in prefix[len(p):] for p in PREFIXES)


def listing_prefixes(prefix: str, scopes: Iterable[str]) -> list[str]:
    """What to list for a cache ``prefix`` that names no scope (``render/``, ``render/p.``)
    when only ``scopes`` may be read: each of their prefixes that ``prefix`` covers."""
    return [f"{base}{s}/" for base in PREFIXES for s in scopes
            if parse(s) is not None and f"{base}{s}/".startswith(prefix)]


def drop_unscoped(store: ObjectStore) -> list[str]:
    """Delete the render cache refs written before scopes (no hits any more, yet each
    keeps the renders it names from gc); their names. ``vstudio store gc`` runs this first."""
    gone = [r for p in PREFIXES for r in store.list_refs(p) if of_name(r) is None]
    for ref in gone:
        with contextlib.suppress(NotFound):  # deleted meanwhile
            store.delete_ref(ref)
    return gone


def scope_for(root: Path, store: Any) -> str:
    """The scope a render of the folder ``root`` records in ``store``: its project's when
    ``root`` lies in a working copy or a mount of a project of that store's server, else
    the user's own. A working copy or mount of another server's project (or of a studio
    folder) is plain files here: the same name there may be another project. So is a
    mount whose table entry names no server (made by an older version): in doubt, the
    user's scope, which only that user reads, never a project's, which its readers do."""
    from vstudio.mounttab import mount_source
    from vstudio.repo.backend import local_user
    from vstudio.repo.wc import NotAWorkingCopy, read_meta
    from vstudio.repo.wcindex import find_root
    from vstudio.store.api import ServedStore

    served = store if isinstance(store, ServedStore) else None  # a server checks rights
    wc = find_root(str(root))
    if wc is not None:
        try:
            meta = read_meta(Path(wc))
        except NotAWorkingCopy:
            meta = {}
        name = str(meta.get("project") or "")
        if parse(project(name)) and _ours(served, str(meta.get("server") or "")):
            return project(name)
    mount = mount_source(root)
    if mount is not None and parse(project(mount.project)) and _ours(served, mount.server):
        return project(mount.project)
    return user(served.me() if served else _tidy(local_user()))


def _ours(served: Any, server: str | None) -> bool:
    """Whether a project of ``server`` is a project of the cache's server. A local store
    checks no rights: any working copy's or mount's project names its scope there."""
    return served is None or (bool(server) and same_server(server or "", served.server_url))


def same_server(a: str, b: str) -> bool:
    """Whether two server addresses name one server (scheme, host and port; a path, a
    trailing slash, letter case and a default port do not count)."""
    from urllib.parse import urlsplit

    def norm(url: str) -> tuple[str, str, int | None] | None:
        try:
            parts = urlsplit(url.strip())
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        except ValueError:  # a port that is no number: names no server
            return None
        host = (parts.hostname or "").lower()
        return (parts.scheme.lower(), host, port) if host else None

    na = norm(a)
    return na is not None and na == norm(b)


def _tidy(name: str) -> str:
    """A login name as a scope name (a local store checks no rights: any fair name does)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63]
    return name if _NAME.match(name) else f"x{name}"[:64]
