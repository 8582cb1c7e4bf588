"""Blender saves put through a real ``vstudio serve``: the block-level dedupe survives HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests import blendgen
from vstudio.store import open_store
from vstudio.store.remote import RemoteStore


def stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_blend_edit_through_the_server_costs_what_a_local_put_does(
        server: object, tmp_path: Path) -> None:
    v1 = blendgen.make_scene(tmp_path / "v1.blend", spheres=8, segments=32, rings=16,
                             texture=64)
    v2 = blendgen.resave_moved(v1, tmp_path / "v2.blend")
    c1 = blendgen.make_scene(tmp_path / "c1.blend", spheres=4, segments=16, rings=8,
                             texture=32, compress=True)
    # The local reference: the same two saves into a fresh local store.
    local_root = tmp_path / "local"
    local = open_store(f"file://{local_root}")
    local.put_file(v1)
    first = stored_bytes(local_root)
    local.put_file(v2)
    local_growth = stored_bytes(local_root) - first

    root = server.studio / "store"  # type: ignore[attr-defined]
    remote = RemoteStore(server.url, server.admin_token)  # type: ignore[attr-defined]
    one = remote.put_file(v1)
    first = stored_bytes(root)
    two = remote.put_file(v2)
    growth = stored_bytes(root) - first
    print("remote blend growth", growth, "local", local_growth, "of", v2.stat().st_size)
    # FastCDC alone re-stored most of the file here; the blend chunker costs kilobytes.
    assert growth < 45_000, growth
    assert growth <= local_growth * 1.25 + 4096, (growth, local_growth)
    assert remote.stats()["chunkers"].get("blend") == 2
    assert remote.get_bytes(one) == v1.read_bytes()
    assert remote.get_bytes(two) == v2.read_bytes()
    assert remote.read_range(two, 100, 5000) == v2.read_bytes()[100:5100]
    # A zstd-compressed save: the block stream travels, the server re-encodes exactly.
    three = remote.put_file(c1)
    assert remote.get_bytes(three) == c1.read_bytes()
    assert remote.stats()["chunkers"].get("blend-zstd") == 1
    # The ids equal a local put's: the same file is the same object wherever it was put.
    assert local.put_file(c1) == three
    assert remote.check(read_data=True) == []


def test_server_refuses_a_transform_recipe_that_lies(server: object) -> None:
    url, admin = server.url, server.admin_token  # type: ignore[attr-defined]
    h = {"Authorization": f"Bearer {admin}"}
    store = RemoteStore(url, admin)
    a = store.put_bytes(b"a" * 5000)
    pieces = [{"inline": "QkxFTkRFUi12MzA0", "length": 12}, {"id": a, "length": 5000}]
    for body in (
            {"transform": "blend", "params": {"v": 1, "blocks": 3, "header": 12, "dna": -1,
                                              "norm": False, "side": 0, "addr": 0}},
            {"transform": "blend", "params": {"v": "x"}},
            {"transform": "no-such-transform", "params": {}},
            {"transform": "blend", "params": {}, "chunker": "Bad Name!"}):
        r = httpx.post(f"{url}/api/store/files", headers=h,
                       json={"id": "cd" * 32, "pieces": pieces, **body})
        assert r.status_code in (400, 422), (body, r.status_code, r.text)
    assert not store.has("cd" * 32)
    assert store.check() == []


def test_damaged_blend_through_the_server_is_stored_exactly(server: object,
                                                           tmp_path: Path) -> None:
    """A file that looks like a .blend but is not one falls back to plain chunks."""
    import os

    url, token = server.url, server.admin_token  # type: ignore[attr-defined]
    bad = tmp_path / "bad.blend"
    bad.write_bytes(b"BLENDER-v304" + os.urandom(50_000))
    store = RemoteStore(url, token)
    oid = store.put_file(bad)
    assert store.get_bytes(oid) == bad.read_bytes()
