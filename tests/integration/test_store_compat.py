"""Format compatibility: a small store made once (2026-12-05, store format 1, by
``vstudio init`` + a commit of a .blend and a text file) that every later vstudio must
still read. Never regenerate ``tests/data/store-format-1``: add a new one beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from vstudio.store import maintenance, open_store

FIXTURE = Path(__file__).parent.parent / "data" / "store-format-1"
BLEND = "c00291755914ca64974b685812c3eafd8c0fe510c6eb5bc44003b0dfcc677f97"
README = "6f4a8eb80ea604f9fb6c197fafbb3fb579e1bee82df9d09b60f720e07c993fd6"


def test_the_first_format_is_still_read(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE, tmp_path / "store")  # a copy: opening must not change it
    store = open_store(f"file://{tmp_path / 'store'}", {}, create=False)
    assert maintenance.check(store, read_data=True) == []
    assert sorted(store.list_refs()) == ["projects/film/revs/0000000001", "studio"]
    commit = json.loads(store.get_ref("projects/film/revs/0000000001"))
    assert commit["rev"] == 1 and commit["message"] == "first"
    assert commit["changed"] == ["notes/readme.txt", "shot.blend"]
    assert store.get_bytes(README) == b"line one\nline two\n"
    blend = store.get_bytes(BLEND)  # every read checks the BLAKE3 id
    assert len(blend) == 835916 and blend[:7] == b"BLENDER"
    assert store.read_range(BLEND, 1000, 64) == blend[1000:1064]
    tree = store.get_bytes(commit["tree"])
    assert b"shot.blend" in tree and b"notes" in tree
