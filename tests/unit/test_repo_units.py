"""Unit tests of the repository's pure parts: paths, trees, svndiff, the stat index."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest

from vstudio.errors import BadInput
from vstudio.repo import paths as P
from vstudio.repo import svndiff, trees
from vstudio.repo import wcindex as W
from vstudio.repo.api import Entry


@pytest.mark.parametrize("raw,want", [("a/b.txt", "a/b.txt"), ("./a//b/", "a/b"),
                                      ("shots/s 01/é.blend", "shots/s 01/é.blend")])
def test_normalise_accepts(raw: str, want: str) -> None:
    assert P.normalise(raw) == want


@pytest.mark.parametrize("raw", ["", "/etc/passwd", "../x", "a/../../b", "a\\b", "C:/x",
                                 ".vstudio/index", "a\nb", "a\x00b", ".", "x" * 1200])
def test_normalise_refuses(raw: str) -> None:
    with pytest.raises(P.BadPath):
        P.normalise(raw)


def test_case_collisions() -> None:
    P.check_case_collisions(["a/b.txt"], ["a"], ["a/c.txt"])
    with pytest.raises(P.BadPath, match="only by case"):
        P.check_case_collisions(["a/b.txt"], ["a"], ["A/c.txt"])
    with pytest.raises(P.BadPath):
        P.check_case_collisions([], [], ["x.txt", "X.txt"])


class MemStore:
    """The part of the store protocol that trees use, in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, data: bytes) -> str:
        oid = trees.oid_of(data)
        self.objects[oid] = data
        return oid

    def get_bytes(self, oid: str) -> bytes:
        return self.objects[oid]


def _e(path: str, n: int = 1) -> Entry:
    return Entry(path, trees.oid_of(str(n).encode()), n, 0o644, 0.0)


def test_tree_build_reuses_untouched_folders() -> None:
    store = MemStore()
    files = {p: _e(p) for p in ("a/1.txt", "a/2.txt", "b/c/3.txt", "top.txt")}
    root, _flat = trees.build_tree(store, {}, {}, files)  # type: ignore[arg-type]
    got, folders = trees.load_tree(store, root)  # type: ignore[arg-type]
    assert got == files and set(folders) == {"", "a", "b", "b/c"}
    before = len(store.objects)
    root2, _ = trees.build_tree(store, got, folders,  # type: ignore[arg-type]
                                {"a/1.txt": _e("a/1.txt", 2)})
    assert len(store.objects) == before + 2  # only 'a' and the root are new
    got2, folders2 = trees.load_tree(store, root2)  # type: ignore[arg-type]
    assert folders2["b"] == folders["b"] and got2["a/1.txt"].size == 2
    # Removing the last file of a folder removes the folder; a file may then take its name.
    root3, _ = trees.build_tree(store, got2, folders2,  # type: ignore[arg-type]
                                {"b/c/3.txt": None, "b": _e("b")})
    got3, folders3 = trees.load_tree(store, root3)  # type: ignore[arg-type]
    assert "b" in got3 and "b/c" not in folders3 and "b" not in folders3
    with pytest.raises(P.BadPath, match="both a file and a folder"):
        trees.build_tree(store, got3, folders3, {"b/x.txt": _e("b/x.txt")})  # type: ignore
    empty, _ = trees.build_tree(store, got3, folders3,  # type: ignore[arg-type]
                                {p: None for p in got3})
    assert empty == trees.EMPTY_OID
    assert trees.load_tree(store, empty)[0] == {}  # type: ignore[arg-type]


def _varint(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _window(src_off: int, src_len: int, tlen: int, ins: bytes, new: bytes) -> bytes:
    return b"".join([_varint(src_off), _varint(src_len), _varint(tlen), _varint(len(ins)),
                     _varint(len(new)), ins, new])


def _apply(delta: bytes, base: bytes) -> bytes:
    out = io.BytesIO()
    svndiff.apply(io.BytesIO(delta), lambda o, n: base[o:o + n], out.write)
    return out.getvalue()


def test_svndiff_versions() -> None:
    base = b"0123456789"
    # copy 4 from source at 2, 3 new bytes, copy 6 from target at 4 (overlapping)
    ins = bytes([0x00 | 4, 2, 0x80 | 3, 0x40 | 6, 4])
    want = b"2345" + b"abc" + b"abcabc"
    w0 = _window(0, 10, len(want), ins, b"abc")
    assert _apply(b"SVN\x00" + w0, base) == want
    big_new = b"xyz" * 100  # compresses: stored zlib'd in version 1
    ins1 = bytes([0x80, *_varint(300)])
    packed = _varint(300) + zlib.compress(big_new)
    w1 = _window(0, 0, 300, _varint(len(ins1)) + ins1, packed)
    assert _apply(b"SVN\x01" + w1, base) == big_new
    # version 2: lz4 block: 3 literals then a match of 9 at offset 3
    lz4 = bytes([0x35]) + b"xyz" + bytes([3, 0])
    ins2 = bytes([0x80 | 12])
    w2 = _window(0, 0, 12, _varint(len(ins2)) + ins2, _varint(12) + lz4)
    assert _apply(b"SVN\x02" + w2, base) == b"xyz" * 4
    with pytest.raises(BadInput):
        _apply(b"SVN\x00" + w0[:-2], base)
    with pytest.raises(BadInput):
        _apply(b"NOPE", base)


def test_svndiff_head_from_the_first_window() -> None:
    """How a text made from nothing starts, from the first bytes of its delta: enough
    windows are decoded, a window cut short ends the head, a delta needing a base gives
    nothing (its head is not known without the base)."""
    text = b"BLENDER-v304" + bytes(range(200))
    first, second = text[:100], text[100:]
    w1 = _window(0, 0, 100, bytes([0x80, 100]), first)
    w2 = _window(0, 0, len(second), bytes([0x80, *_varint(len(second))]), second)
    delta = b"SVN\x00" + w1 + w2
    assert svndiff.head(delta, 12) == b"BLENDER-v304"
    assert svndiff.head(delta, 150) == text[:150]
    assert svndiff.head(delta[:len(delta) - 5], 150) == first  # the second window is cut
    from_base = b"SVN\x00" + _window(0, 4, 4, bytes([0x00 | 4, 0]), b"")
    assert svndiff.head(from_base, 12) == b""
    assert svndiff.head(b"junk", 12) == b""


def test_index_roundtrip_and_ignore(tmp_path: Path) -> None:
    (tmp_path / W.META).mkdir()
    idx = W.Index(rev=3, entries={"a.txt": ("ab" * 32, 5, 123, 0o755)},
                  conflicts={"a.txt": "a.txt.r3"}, locks=["a.txt"], rules=["*.blend"])
    idx.save(str(tmp_path))
    back = W.Index.load(str(tmp_path))
    assert back.rev == 3 and back.entries == {"a.txt": ("ab" * 32, 5, 123, 0o755)}
    assert back.conflicts == {"a.txt": "a.txt.r3"} and back.locks == ["a.txt"]
    m = W.Matcher(["*.blend1", "Thumbs.db", "render/*.png", "cache?"])
    assert m("x/y.blend1", "y.blend1") and m("Thumbs.db", "Thumbs.db")
    assert m("render/f.png", "f.png") and m("cache1", "cache1")
    assert not m("x/render/f.png", "f.png") and not m("a.blend", "a.blend")
