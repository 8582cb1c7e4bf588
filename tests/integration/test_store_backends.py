"""One conformance suite for every backend: memory, local folder, S3 (moto_server)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from vstudio.errors import ObjectMissing
from vstudio.store.api import Backend
from vstudio.store.backends import open_backend


@pytest.fixture(params=["memory", "local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return open_backend(f"memory://{uuid.uuid4().hex}")
    if request.param == "local":
        return open_backend(f"file://{tmp_path / 'b'}")
    return open_backend(request.getfixturevalue("s3_url"))


def test_put_get_stat_list_delete(backend: Backend) -> None:
    backend.put("a/b/one", b"hello")
    backend.put("a/two", b"")
    assert backend.get("a/b/one") == b"hello"
    assert backend.get("a/two") == b""
    assert backend.stat("a/b/one").size == 5
    assert sorted(o.name for o in backend.list("a/")) == ["a/b/one", "a/two"]
    assert [o.name for o in backend.list("a/b")] == ["a/b/one"]
    assert list(backend.list("zzz/")) == []
    backend.put("a/b/one", b"replaced")
    assert backend.get("a/b/one") == b"replaced"
    backend.delete("a/b/one")
    backend.delete("a/b/one")  # deleting an absent name is not an error
    with pytest.raises(ObjectMissing):
        backend.get("a/b/one")
    with pytest.raises(ObjectMissing):
        backend.stat("a/b/one")
    with pytest.raises(ObjectMissing):
        backend.get_range("a/b/one", 0, 1)


def test_get_range(backend: Backend) -> None:
    data = bytes(range(256)) * 40
    backend.put("r", data)
    assert backend.get_range("r", 0, 10) == data[:10]
    assert backend.get_range("r", 1000, 500) == data[1000:1500]
    assert backend.get_range("r", len(data) - 3, 100) == data[-3:]


def test_create_is_exclusive(backend: Backend) -> None:
    assert backend.atomic_create
    assert backend.create("c", b"first") is True
    assert backend.create("c", b"second") is False
    assert backend.get("c") == b"first"


def test_concurrent_creates_have_one_winner(backend: Backend) -> None:
    wins: list[bool] = []

    def go(i: int) -> None:
        wins.append(backend.create("race", str(i).encode()))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_put_path(backend: Backend, tmp_path: Path) -> None:
    f = tmp_path / "src"
    f.write_bytes(b"x" * 100_000)
    backend.put_path("p/file", f)
    assert backend.get("p/file") == b"x" * 100_000
