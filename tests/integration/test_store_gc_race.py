"""gc in one process while another (``vstudio serve``) has had the store open for long."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from vstudio.store import maintenance, objects, open_store

GC = ("import sys; from vstudio.store import maintenance, open_store; "
      "print(maintenance.gc(open_store(sys.argv[1], {}), [], float(sys.argv[2])))")


@pytest.fixture(params=["local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return f"file://{tmp_path / 'store'}"
    return str(request.getfixturevalue("s3_url"))


def _gc_elsewhere(url: str, grace: float) -> str:
    """``store gc`` as another process runs it (PYTHONPATH is inherited)."""
    done = subprocess.run([sys.executable, "-c", GC, url, str(grace)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_long_open_store_never_reuses_what_another_process_collected(
        store_url: str, tmp_path: Path) -> None:
    serve = open_store(store_url, {}, cache_dir=tmp_path / "serve")  # opened before the gc
    data = random.Random(1).randbytes(300_000)
    serve.put_bytes(data)  # nothing references it: the next gc deletes it
    assert "'packs_deleted': 1" in _gc_elsewhere(store_url, 0)
    with serve.writer() as w:  # the same file committed again, long after the open
        again = w.put_bytes(data)
    serve.put_ref("kept", again.encode())
    fresh = open_store(store_url, {}, cache_dir=tmp_path / "fresh")
    assert fresh.get_bytes(again) == data
    assert maintenance.check(fresh) == []


def test_long_open_store_learns_what_another_process_doomed(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "GC_RECHECK", 0.0)
    serve: objects.Store = open_store(store_url, {},  # type: ignore[assignment]
                                      cache_dir=tmp_path / "serve")
    data = random.Random(2).randbytes(200_000)
    oid = serve.put_bytes(data)
    _gc_elsewhere(store_url, 3600)  # marks it: nothing references it
    assert not serve.has(oid)  # so a client uploads it again instead of leaning on it
    assert serve.missing([bytes.fromhex(oid)]) == [bytes.fromhex(oid)]
    stored = maintenance.stats(serve)["stored_bytes"]
    with serve.writer() as w:  # with a neighbour: the pack differs from the doomed one
        assert w.put_bytes(data) == oid
        w.put_bytes(b"a neighbour")
    assert maintenance.stats(serve)["stored_bytes"] > stored + len(data)  # a fresh copy
    serve.put_ref("kept", oid.encode())
    _gc_elsewhere(store_url, 0)
    assert open_store(store_url, {}).get_bytes(oid) == data


def test_generations_replace_the_single_doomed_object_of_older_stores(tmp_path: Path) -> None:
    """A store whose last gc wrote ``gc/doomed`` (before generations) keeps its marks."""
    url = f"file://{tmp_path / 'store'}"
    store: objects.Store = open_store(url, {})  # type: ignore[assignment]
    oid = store.put_bytes(uuid.uuid4().bytes * 1000)
    maintenance.gc(store, [], grace_seconds=3600)
    (gen,) = maintenance.generations(store.backend)
    (tmp_path / "store" / gen).rename(tmp_path / "store" / maintenance.DOOMED)
    again: objects.Store = open_store(url, {})  # type: ignore[assignment]
    assert bytes.fromhex(oid) in again.doomed and not again.has(oid)
    maintenance.gc(again, [], grace_seconds=3600)
    assert maintenance.generations(again.backend) != [maintenance.DOOMED]
    assert len(maintenance.generations(again.backend)) == 1
