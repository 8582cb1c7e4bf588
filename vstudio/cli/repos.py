"""Opening a project's repository by URL: a studio folder (embedded) or ``vstudio serve``.

The repository domain works on a ``WcBackend``; choosing between the embedded one
(catalog and store on this machine) and the HTTP client is the command line's job, so
the domain never imports the client.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from vstudio.repo import wcops
from vstudio.store.api import NO_PROGRESS, Progress

if TYPE_CHECKING:
    from vstudio.repo.backend import WcBackend
    from vstudio.repo.wc import WorkingCopy


def open_backend(meta: dict[str, object], token: str | None = None) -> WcBackend:
    """The repository ``meta`` (``wcops.parse_url``'s fields) names.

    Through a server, the token is ``token``, else ``$VSTUDIO_TOKEN``, else the one the
    working copy remembered.
    """
    project = str(meta["project"])
    if meta.get("kind") == "remote":
        from vstudio.client.repo import RemoteBackend

        tok = token or os.environ.get("VSTUDIO_TOKEN") or meta.get("token")
        return RemoteBackend(str(meta["server"]), str(tok) if tok else None, project)
    from vstudio.repo.backend import LocalBackend
    from vstudio.studio import Studio

    return LocalBackend(Studio.open(str(meta["studio"])), project)


def open_url(url: str, token: str | None = None) -> WcBackend:
    return open_backend(dict(wcops.parse_url(url)), token)


def open_wc(start: str | None = None, token: str | None = None) -> WorkingCopy:
    """The working copy holding ``start`` (default: the current folder), opened."""
    return wcops.open_wc(start, lambda meta: open_backend(meta, token))


def checkout(url: str, dest: str | None, rev: int | None, token: str | None = None,
             progress: Progress = NO_PROGRESS) -> WorkingCopy:
    meta: dict[str, object] = dict(wcops.parse_url(url))
    backend = open_backend(meta, token)
    if meta["kind"] == "remote" and token:
        meta["token"] = token  # remembered for the next commands in this working copy
    return wcops.checkout(meta, backend, dest, rev, progress)
