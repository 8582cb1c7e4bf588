"""Real .blend files made by Blender, stored by their blocks (local folder and S3)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import blendgen
from tests.conftest import S3Server
from tests.helpers import cli_json
from vstudio.store import maintenance, open_store


@dataclass
class Scenes:
    v1: Path  # a small scene with a packed texture, uncompressed
    v2: Path  # v1 reopened in a new session, one object moved, saved
    v3: Path  # v2 reopened, another object moved, saved
    c1: Path  # the same scene saved with "Compress" (zstd)
    c2: Path  # c1 reopened, one object moved, saved compressed
    linking: Path  # a file linking an object from v1
    folder: Path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Scenes:
    d = tmp_path_factory.mktemp("blend")
    v1 = blendgen.make_scene(d / "v1.blend", spheres=8, segments=32, rings=16, texture=64)
    v2 = blendgen.resave_moved(v1, d / "v2.blend")
    v3 = blendgen.resave_moved(v2, d / "v3.blend", obj="sphere_0005", offset=(0, 0, 2))
    c1 = blendgen.make_scene(d / "c1.blend", spheres=8, segments=32, rings=16, texture=64,
                             compress=True)
    c2 = blendgen.resave_moved(c1, d / "c2.blend")
    linking = blendgen.make_linking(d / "shot.blend", v1)
    return Scenes(v1, v2, v3, c1, c2, linking, d)


def stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def assert_same(store, oid: str, original: Path, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp / "out.bin"
    store.get_file(oid, out)
    assert out.read_bytes() == original.read_bytes()
    assert store.read_range(oid, 5, 40) == original.read_bytes()[5:45]


def test_edit_in_a_new_session_costs_kilobytes(scenes: Scenes, tmp_path: Path) -> None:
    assert scenes.v1.read_bytes()[:12] == b"BLENDER-v304"
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    one = store.put_file(scenes.v1)
    first = stored_bytes(root)
    two = store.put_file(scenes.v2)
    growth = stored_bytes(root) - first
    size = scenes.v2.stat().st_size
    # The two saves differ in scattered bytes all over the file (addresses)...
    a, b = scenes.v1.read_bytes(), scenes.v2.read_bytes()
    assert sum(x != y for x, y in zip(a, b, strict=False)) > 10_000
    # ...yet the second costs a few percent of the file (FastCDC re-stores most of it).
    print("blend growth", growth, "of", size)
    assert growth < 0.06 * size, (growth, size)
    assert growth < 45_000, growth
    assert maintenance.stats(store)["chunkers"] == {"blend": 2}
    assert_same(store, one, scenes.v1, tmp_path)
    assert_same(store, two, scenes.v2, tmp_path)
    # Between two sessions that both loaded the file, less changes than after the first.
    before = stored_bytes(root)
    three = store.put_file(scenes.v3)
    print("second edit growth", stored_bytes(root) - before)
    assert stored_bytes(root) - before < 40_000
    assert_same(store, three, scenes.v3, tmp_path)


def test_compressed_saves_on_s3_round_trip_byte_exact(scenes: Scenes, s3_server: S3Server,
                                                      tmp_path: Path) -> None:
    assert scenes.c1.read_bytes()[:4] == blendgen.ZSTD_MAGIC
    store = open_store(s3_server.url(s3_server.new_bucket()))
    one = store.put_file(scenes.c1)
    before = maintenance.stats(store)["stored_bytes"]
    two = store.put_file(scenes.c2)
    growth = maintenance.stats(store)["stored_bytes"] - before
    assert maintenance.stats(store)["chunkers"] == {"blend-zstd": 2}
    # Nearly every compressed frame changes between the saves; the block stream does not.
    assert growth < 0.25 * scenes.c2.stat().st_size, growth
    assert_same(store, one, scenes.c1, tmp_path)
    assert_same(store, two, scenes.c2, tmp_path)


def test_file_linking_a_library(scenes: Scenes, tmp_path: Path) -> None:
    data = scenes.linking.read_bytes()
    assert b"LI\0\0" in data and b"v1.blend" in data  # it really links the library
    store = open_store(f"file://{tmp_path / 'store'}")
    oid = store.put_file(scenes.linking)
    assert maintenance.stats(store)["chunkers"] == {"blend": 1}
    assert_same(store, oid, scenes.linking, tmp_path)


def _damaged(src: Path, dest: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "length":
        # The first block's length field (after the 12-byte header and the 4-byte code).
        data[16:20] = (len(data) * 2).to_bytes(4, "little")
    elif how == "garbage":
        mid = len(data) // 2
        data[mid:mid + 4096] = b"\xa5" * 4096
    elif how == "tail":
        data += b"extra bytes after ENDB"
    elif how == "zstd-truncated":
        data = data[:-100]
    elif how == "zstd-garbage":
        data[100:200] = b"\x00" * 100
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize(("source", "how"), [
    ("v1", "truncated"), ("v1", "length"), ("v1", "garbage"), ("v1", "tail"),
    ("c1", "zstd-truncated"), ("c1", "zstd-garbage"),
])
def test_damaged_blend_is_stored_byte_exact(scenes: Scenes, tmp_path: Path, source: str,
                                            how: str) -> None:
    bad = _damaged(getattr(scenes, source), tmp_path / f"bad-{how}.blend", how)
    store = open_store(f"file://{tmp_path / 'store'}")
    oid = store.put_file(bad)
    assert_same(store, oid, bad, tmp_path)
    chunkers = maintenance.stats(store)["chunkers"]
    if how in ("garbage", "zstd-garbage"):
        # Garbage inside a body is still a well-formed .blend, and a zstd frame that
        # decodes to other bytes no longer re-encodes (it is kept verbatim): either way
        # stored exactly, by blocks or by the fallback.
        assert set(chunkers) <= {"blend", "blend-zstd", "fastcdc"}
    else:
        assert chunkers == {"fastcdc": 1}, chunkers


def test_cli_put_stats_get(scenes: Scenes, studio_dir: Path, tmp_path: Path) -> None:
    files = [shutil.copy(scenes.v1, tmp_path / "a.blend"), shutil.copy(scenes.c2,
                                                                       tmp_path / "b.blend")]
    put = cli_json("store", "put", *map(str, files), "--studio", str(studio_dir))
    assert [Path(e["path"]).name for e in put] == ["a.blend", "b.blend"]
    stats = cli_json("store", "stats", "--studio", str(studio_dir))
    assert stats["chunkers"].get("blend") == 1 and stats["chunkers"].get("blend-zstd") == 1
    out = tmp_path / "back.blend"
    from tests.helpers import cli

    cli("store", "get", put[1]["id"], str(out), "--studio", str(studio_dir))
    assert out.read_bytes() == scenes.c2.read_bytes()


def test_other_zstd_files_use_the_fallback(tmp_path: Path) -> None:
    from vstudio.store import blendzstd

    lib = blendzstd.libzstd()
    payload = b"not a blend file, just text\n" * 5000
    plain = tmp_path / "notes.zst"
    plain.write_bytes(lib.compress(payload, 3))  # one frame, no seek table
    frame = lib.compress(payload, 3)
    seekable = tmp_path / "seekable.zst"  # Blender's container, other content
    seekable.write_bytes(frame + blendzstd.seek_trailer([(len(frame), len(payload))]))
    store = open_store(f"file://{tmp_path / 'store'}")
    ids = [store.put_file(plain), store.put_file(seekable)]
    assert maintenance.stats(store)["chunkers"] == {"fastcdc": 2}
    for oid, p in zip(ids, (plain, seekable), strict=True):
        assert_same(store, oid, p, tmp_path)


def _gzopen_wb1(src: Path, dest: Path) -> Path:
    """What Blender 2.80-2.93 wrote for "Compress": zlib gzopen(path, "wb1")."""
    import zlib

    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    dest.write_bytes(c.compress(src.read_bytes()) + c.flush())
    return dest


def test_gzip_saves_of_older_blenders(scenes: Scenes, tmp_path: Path) -> None:
    import gzip

    one, two = (_gzopen_wb1(p, tmp_path / f"{p.stem}.gz.blend") for p in (scenes.v1, scenes.v2))
    named = tmp_path / "named.blend"  # a gzip header with a file name: not Blender's
    with open(named, "wb") as f, gzip.GzipFile("x.blend", "wb", fileobj=f) as g:
        g.write(scenes.v1.read_bytes())
    other = tmp_path / "notes.gz"
    other.write_bytes(gzip.compress(b"plain text " * 10_000))
    root = tmp_path / "store"
    store = open_store(f"file://{root}")
    ids = [store.put_file(one)]
    before = stored_bytes(root)
    ids.append(store.put_file(two))
    assert stored_bytes(root) - before < 60_000
    assert maintenance.stats(store)["chunkers"] == {"blend-gzip": 2}
    ids += [store.put_file(named), store.put_file(other)]
    assert maintenance.stats(store)["chunkers"] == {"blend-gzip": 2, "fastcdc": 2}
    for oid, p in zip(ids, (one, two, named, other), strict=True):
        assert_same(store, oid, p, tmp_path)


def test_mutated_real_files_rebuild_exactly_or_are_refused(scenes: Scenes) -> None:
    """Random damage to a real Blender save, pointer fields included: the layout either
    refuses the file or gives back every byte (never something else)."""
    import random
    import struct

    from vstudio.store.blend import BlendFormatError, decode_layout, layout_pieces

    data = scenes.v1.read_bytes()
    rnd = random.Random(11)
    rebuilt = 0
    for _ in range(25):
        bad = bytearray(data)
        for _ in range(rnd.randint(1, 30)):
            at = rnd.randrange(len(bad) - 8)
            value = rnd.choice([0, 1, 2, 3, 2**64 - 1, rnd.getrandbits(64),
                                struct.unpack_from("<Q", data, rnd.randrange(16, 200))[0]])
            bad[at:at + 8] = struct.pack("<Q", value)
        try:
            lay, pieces = layout_pieces(bytes(bad))
        except BlendFormatError:
            continue
        assert b"".join(decode_layout(lay.params(), (p for p, _ in pieces))) == bad
        rebuilt += 1
    assert rebuilt > 5
