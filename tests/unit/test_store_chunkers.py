"""The chunker registry: plug-ins are used when right and never lose bytes when wrong."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vstudio.store import chunking, maintenance, open_store
from vstudio.store.chunking import Piece, Split


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    chunking._load_plugins()
    plugins: list[Any] = []
    monkeypatch.setattr(chunking, "_CHUNKERS", plugins)
    monkeypatch.setattr(chunking, "_TRANSFORMS", dict(chunking._TRANSFORMS))
    monkeypatch.setattr(chunking, "_DELTA_HOOKS", [])
    return plugins


class Lines:
    """Cuts text files at lines, with each line's first byte inline (a toy header)."""

    name = "lines"

    def detect(self, head: bytes) -> bool:
        return head.startswith(b"LINES")

    def split(self, path: Path) -> Iterator[Piece]:
        for line in path.read_bytes().splitlines(keepends=True):
            yield Piece(line[:1], inline=True)
            if line[1:]:
                yield Piece(line[1:])


class Liar(Lines):
    name = "liar"

    def split(self, path: Path) -> Iterator[Piece]:
        yield Piece(path.read_bytes()[:-1])  # drops the last byte


class Crasher(Lines):
    name = "crasher"

    def split(self, path: Path) -> Iterator[Piece]:
        yield Piece(b"x")
        raise RuntimeError("boom")


class Deflated(Lines):
    """Pieces of the *decoded* stream of a zlib file, re-encoded by a transform."""

    name = "deflated"

    def detect(self, head: bytes) -> bool:
        return head[:1] == b"\x78"

    def split(self, path: Path) -> Split:
        plain = zlib.decompress(path.read_bytes())
        split = Split([Piece(plain[i:i + 5000]) for i in range(0, len(plain), 5000)],
                      transform="test-zlib")
        split.params["level"] = 6
        return split


def _zlib_transform(params: dict[str, Any], source: Any) -> Any:
    def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
        yield zlib.compress(b"".join(chunks), params["level"])

    return encode


def test_plugins_are_used_checked_and_counted(registry: list[Any], tmp_path: Path) -> None:
    chunking.register_transform("test-zlib")(_zlib_transform)
    store = open_store(f"memory://{uuid.uuid4().hex}")
    cases = [  # (file name, bytes, the chunkers registered while it is put)
        ("lines", b"LINES\n" + b"".join(b"line %d of text\n" % i for i in range(3000)),
         [Lines, Deflated]),
        ("liar", b"LINES but the chunker lies", [Liar]),
        ("crasher", b"LINES and the chunker raises", [Crasher]),
        ("zlib", zlib.compress(b"some frames " * 20000, 6), [Lines, Deflated]),
    ]
    ids = {}
    for name, data, plugins in cases:
        registry.clear()
        for plugin in plugins:
            chunking.register_chunker(plugin)
        p = tmp_path / name
        p.write_bytes(data)
        ids[name] = store.put_file(p)
        assert store.get_bytes(ids[name]) == data
        assert store.read_range(ids[name], 7, 100) == data[7:107]
    stats = maintenance.stats(store)
    assert stats["chunkers"] == {"lines": 1, "fastcdc": 2, "deflated": 1}
    lines = store.recipe(ids["lines"])  # type: ignore[attr-defined]
    assert any(e.type == 2 for e in store.flat(lines.entries))  # type: ignore[attr-defined]
    assert store.recipe(ids["zlib"]).transform == "test-zlib"  # type: ignore[attr-defined]
    assert maintenance.check(store, read_data=True) == []


def test_delta_hook_gets_the_previous_id(registry: list[Any], tmp_path: Path) -> None:
    seen: list[str] = []

    def hook(path: Path, previous: str, source: Any) -> Split | None:
        seen.append(previous)
        base = source.get_bytes(previous)
        new = path.read_bytes()
        assert new.startswith(base)
        return Split([Piece(new[len(base):])], transform="test-append",
                     params={"base": previous})

    @chunking.register_transform("test-append")
    def append(params: dict[str, Any], source: Any) -> Any:
        def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
            yield source.get_bytes(params["base"])
            yield from chunks

        return encode

    chunking.register_delta(hook)
    store = open_store(f"memory://{uuid.uuid4().hex}")
    p = tmp_path / "f"
    p.write_bytes(b"A" * 100_000)
    first = store.put_file(p)
    p.write_bytes(b"A" * 100_000 + b"tail")
    second = store.put_file(p, previous=first)
    assert seen == [first]
    assert store.get_bytes(second) == b"A" * 100_000 + b"tail"
    # the base stays alive while the delta is referenced
    store.put_ref("keep", second.encode())
    maintenance.gc(store, [], grace_seconds=0)
    assert store.get_bytes(second).endswith(b"tail")


class LateParams(Deflated):
    """Fills its transform's params only once its pieces are consumed."""

    name = "late"

    def split(self, path: Path) -> Split:
        plain = zlib.decompress(path.read_bytes())
        split = Split([], transform="test-zlib")

        def pieces() -> Iterator[Piece]:
            for i in range(0, len(plain), 5000):
                yield Piece(plain[i:i + 5000])
            split.params["level"] = 6

        split.pieces = pieces()
        return split


class Short(Deflated):
    """Its transform reads only the first piece: extra pieces must not pass as good."""

    name = "short"

    def split(self, path: Path) -> Split:
        plain = zlib.decompress(path.read_bytes())
        return Split([Piece(plain), Piece(b"extra")], transform="test-first")


def test_rebuild_is_checked_as_pieces_stream(registry: list[Any], tmp_path: Path) -> None:
    chunking.register_transform("test-zlib")(_zlib_transform)

    @chunking.register_transform("test-first")
    def first(params: dict[str, Any], source: Any) -> Any:
        def encode(chunks: Iterator[bytes]) -> Iterator[bytes]:
            yield zlib.compress(next(chunks), 6)

        return encode

    store: Any = open_store(f"memory://{uuid.uuid4().hex}")
    reads: list[str] = []  # blobs opened (read back) by the store
    open_blob = store.packs.open_blob
    store.packs.open_blob = lambda pack, e, stored: reads.append(pack) or open_blob(pack, e, stored)
    data = zlib.compress(b"frames of text " * 30000, 6)
    p = tmp_path / "z"
    p.write_bytes(data)
    for plugin, chunker in ((Deflated, "deflated"), (LateParams, "late"), (Short, "fastcdc")):
        registry.clear()
        chunking.register_chunker(plugin)
        fresh: Any = open_store(f"memory://{uuid.uuid4().hex}")
        oid = fresh.put_file(p)
        assert fresh.get_bytes(oid) == data
        assert maintenance.stats(fresh)["chunkers"] == {chunker: 1}, plugin
    # A checked put reads nothing back (it hashed what streamed past).
    registry.clear()
    chunking.register_chunker(Deflated)
    oid = store.put_file(p)
    assert reads == []
    assert store.get_bytes(oid) == data and reads


def test_a_file_the_store_holds_is_not_split_again(registry: list[Any], tmp_path: Path) -> None:
    """Putting a file a plug-in splits, when the store holds it already (an import resumed,
    the same save committed twice), returns its id without splitting it again."""
    splits: list[Path] = []

    class Counted(Lines):
        def split(self, path: Path) -> Iterator[Piece]:
            splits.append(path)
            return super().split(path)

    chunking.register_chunker(Counted)
    store = open_store(f"memory://{uuid.uuid4().hex}")
    data = b"LINES\n" + b"".join(b"line %d of text\n" % i for i in range(3000))
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(data)
    b.write_bytes(data)
    with store.writer() as w:
        first = w.put_file(a)
        assert w.put_file(b) == first  # held by the open batch
    assert store.put_file(b) == first  # held by the store
    assert splits == [a]
    assert store.get_bytes(first) == data
    other = tmp_path / "c"
    other.write_bytes(data + b"one more line\n")
    assert store.get_bytes(store.put_file(other)) == data + b"one more line\n"
    assert splits == [a, other]
