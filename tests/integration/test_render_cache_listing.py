"""Listing the render cache over HTTP (issue 12): ``GET /api/store/refs?prefix=render/``
answers, per role, the entries of the scopes the caller may read, and asks the store only
for those scopes' prefixes, never for the whole cache (which grows with every project).

The server is the real application in this process over a real studio (SQLite and a
local-folder store); the store's backend is wrapped only to record the prefixes listed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vstudio.api.app import create_app
from vstudio.catalog import accounts
from vstudio.studio import Studio

K = "ab" * 32
LEGACY = "cd" * 32
REFS = [
    f"render/p.film/{K}", f"render/p.open/{K}", f"render/p.secret/{K}",
    f"render/u.rita/{K}", f"render/u.eve/{K}", f"render/{LEGACY}",
    f"render-chunks/p.film/{K}/1-1", f"render-chunks/u.eve/{K}/1-1",
    f"render-chunks/{LEGACY}/1-1", "projects/film/revs/0000000001",
]
MANY = 40  # projects nobody of the test may read: listing must not reach them


class Served:
    def __init__(self, client: TestClient, tokens: dict[str, str], listed: list[str]) -> None:
        self.client, self.tokens, self.listed = client, tokens, listed

    def refs(self, who: str, prefix: str) -> Any:
        r = self.client.get("/api/store/refs", params={"prefix": prefix},
                            headers={"Authorization": f"Bearer {self.tokens[who]}"})
        return r.json()["refs"] if r.status_code == 200 else r.status_code


@pytest.fixture
def served(studio_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    studio = Studio.open(studio_dir)
    e = studio.engine
    tokens = {"admin": accounts.add_user(e, "boss", "admin")[1]}
    for name, role in (("ana", "artist"), ("rita", "artist"), ("vic", "viewer"),
                       ("eve", "artist"), ("node", "worker")):
        tokens[name] = accounts.add_user(e, name, role)[1]
    for p in ("film", "open", "secret", *(f"other{i:02}" for i in range(MANY))):
        accounts.create_project(e, p)
    accounts.set_right(e, "film", "ana", "write", True)
    accounts.set_right(e, "film", "rita", "read", True)
    accounts.set_right(e, "film", "vic", "read", True)
    accounts.set_right(e, "secret", "ana", "read", True)  # "open" has no right set: all read
    for i in range(MANY):
        accounts.set_right(e, f"other{i:02}", "boss", "read", True)
        studio.store.put_ref(f"render/p.other{i:02}/{K}", b"x")
    for ref in REFS:
        studio.store.put_ref(ref, b"x")
    listed: list[str] = []
    store: Any = studio.store  # the local store the studio opened
    backend = store.backend
    real_list = backend.list

    def recording(prefix: str = "") -> Any:
        if prefix.startswith("refs/"):
            listed.append(prefix)
        return real_list(prefix)

    monkeypatch.setattr(backend, "list", recording)
    with TestClient(create_app(studio)) as client:  # closes the studio on the way out
        yield Served(client, tokens, listed)


def test_render_cache_listing_answers_per_role(served: Served) -> None:
    f, o, s = (f"render/p.{p}/{K}" for p in ("film", "open", "secret"))
    rita, eve = f"render/u.rita/{K}", f"render/u.eve/{K}"
    admin = served.refs("admin", "render/")
    assert {f, o, s, rita, eve, f"render/{LEGACY}"} <= set(admin)
    assert len(admin) == 6 + MANY
    assert served.refs("ana", "render/") == [f, o, s]  # write on film, read on secret
    assert served.refs("rita", "render/") == [f, o, rita]  # read on film, and her own
    assert served.refs("vic", "render/") == [f, o]  # a viewer reads film
    assert served.refs("eve", "render/") == [o, eve]  # no right on film
    assert served.refs("node", "render/") == 403  # workers list nothing
    assert served.refs("rita", "render-chunks/") == [f"render-chunks/p.film/{K}/1-1"]
    assert served.refs("eve", "render-chunks/") == [f"render-chunks/u.eve/{K}/1-1"]
    assert served.refs("rita", "render/p.") == [f, o]
    assert served.refs("rita", "render/p.f") == [f]
    assert served.refs("eve", "render/u.") == [eve]
    assert served.refs("eve", "render/p.film/") == 403  # a named scope needs its right
    assert served.refs("eve", "projects/") == 403  # other refs are an admin's


def test_render_cache_listing_reaches_only_readable_prefixes(served: Served) -> None:
    assert served.refs("rita", "render/") == [f"render/p.film/{K}", f"render/p.open/{K}",
                                              f"render/u.rita/{K}"]
    assert sorted(served.listed) == ["refs/render/p.film/", "refs/render/p.open/",
                                     "refs/render/u.rita/"]
    served.listed.clear()
    assert served.refs("eve", "render-chunks/") == [f"render-chunks/u.eve/{K}/1-1"]
    assert sorted(served.listed) == ["refs/render-chunks/p.open/", "refs/render-chunks/u.eve/"]
    served.listed.clear()
    served.refs("admin", "render/")  # an admin reads the whole cache: one listing
    assert served.listed == ["refs/render/"]
