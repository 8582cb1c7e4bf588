"""GC root providers: ids other parts keep only in the catalog survive 'store gc'."""

from __future__ import annotations

import contextlib
import importlib
import uuid

import pytest

from vstudio.store import maintenance, open_store, roots


def test_registered_providers_keep_objects_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"memory://{uuid.uuid4().hex}")
    kept = store.put_bytes(b"a render output the farm knows of" * 100)
    dropped = store.put_bytes(b"nobody knows me" * 100)
    for name in roots.PROVIDER_MODULES:  # imported first: they must not register into ours
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(name)
    monkeypatch.setattr(roots, "_PROVIDERS", [])
    roots.register_roots(lambda studio: [kept] if studio == "the studio" else [])
    live = set(roots.live_ids("the studio"))
    assert live == {kept}
    maintenance.gc(store, live, grace_seconds=0)
    assert store.has(kept) and not store.has(dropped)
