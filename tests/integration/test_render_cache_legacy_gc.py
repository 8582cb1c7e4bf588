"""``vstudio store gc`` deletes render cache refs from before scopes (issue 12).

``render/KEY`` and ``render-chunks/KEY/...`` are no hits any more (a file renders again
into its scope), yet each ref kept the frames it names alive for ever. gc now deletes
them first, so their frames are collected; scoped entries and other refs stay.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.helpers import cli_json
from vstudio.errors import ObjectMissing
from vstudio.studio import Studio

KEY = "ab" * 32


def test_store_gc_removes_unscoped_render_refs_and_their_frames(studio_dir: Path) -> None:
    rnd = random.Random(12)
    s = Studio.open(studio_dir)
    try:
        old_frame = s.store.put_bytes(rnd.randbytes(300_000))
        old_chunk = s.store.put_bytes(rnd.randbytes(300_000))
        new_frame = s.store.put_bytes(rnd.randbytes(300_000))
        s.store.put_ref(f"render/{KEY}", f"frame {old_frame}\n".encode())
        s.store.put_ref(f"render-chunks/{KEY}/1-1", f"frame {old_chunk}\n".encode())
        s.store.put_ref(f"render/p.film/{KEY}", f"frame {new_frame}\n".encode())
        s.store.put_ref(f"render-chunks/u.ana/{KEY}/1-1", f"frame {new_frame}\n".encode())
    finally:
        s.close()

    out = cli_json("store", "gc", "--grace", "0", "--studio", str(studio_dir))
    s = Studio.open(studio_dir)
    try:
        assert s.store.list_refs("render") == [f"render-chunks/u.ana/{KEY}/1-1",
                                               f"render/p.film/{KEY}"]
        for gone in (old_frame, old_chunk):  # deleted, not only marked
            with pytest.raises(ObjectMissing):
                s.store.get_bytes(gone)
        assert s.store.has(new_frame)
    finally:
        s.close()
    assert out["unscoped_render_refs_deleted"] == 2
    again = cli_json("store", "gc", "--grace", "0", "--studio", str(studio_dir))
    assert again["unscoped_render_refs_deleted"] == 0
