"""The mount's batched small-file reads against a real local-folder store."""

from __future__ import annotations

import random
from pathlib import Path

import blake3

from vstudio.mount.batch import store_read_many
from vstudio.studio import Studio


def put_files(studio_dir: Path, tmp_path: Path, count: int) -> tuple[Studio, dict[str, bytes]]:
    rng = random.Random(3)
    studio = Studio.open(studio_dir)
    files: dict[str, bytes] = {}
    with studio.store.writer() as w:
        for i in range(count):
            data = rng.randbytes(rng.randint(4096, 150_000))  # single and multi-chunk files
            p = tmp_path / f"f{i}"
            p.write_bytes(data)
            files[w.put_file(p)] = data
    return studio, files


def test_batch_returns_every_small_file_with_few_requests(studio_dir: Path,
                                                          tmp_path: Path) -> None:
    studio, files = put_files(studio_dir, tmp_path, 60)
    try:
        read_many = store_read_many(studio.store)
        assert read_many is not None
        backend = studio.store.backend  # type: ignore[attr-defined]
        calls = []
        real = backend.get_range

        def counting(name: str, offset: int, length: int) -> bytes:
            calls.append(name)
            return real(name, offset, length)

        backend.get_range = counting
        got = dict(read_many(list(files)))
        assert got == files
        assert len(calls) <= 6, len(calls)  # one pass for files/recipes, one for chunks
    finally:
        studio.close()


def test_batch_never_yields_wrong_bytes_from_a_damaged_pack(studio_dir: Path,
                                                            tmp_path: Path) -> None:
    studio, files = put_files(studio_dir, tmp_path, 30)
    try:
        packs = [p for p in (studio_dir / "store").rglob("*") if p.is_file()
                 and "packs" in p.parts]
        victim = max(packs, key=lambda p: p.stat().st_size)
        raw = bytearray(victim.read_bytes())
        for i in range(len(raw) // 2, len(raw) // 2 + 32):
            raw[i] ^= 0xFF
        victim.write_bytes(bytes(raw))
        read_many = store_read_many(studio.store)
        assert read_many is not None
        for oid, data in read_many(list(files)):
            assert blake3.blake3(data).hexdigest() == oid
    finally:
        studio.close()


def test_an_unknown_or_malformed_id_is_left_out_of_the_batch(studio_dir: Path,
                                                               tmp_path: Path) -> None:
    # Every store declares ``read_many`` (store/api.py), so the mount always batches;
    # what the batch cannot read it leaves out, and BlockReader reads that one alone.
    studio, files = put_files(studio_dir, tmp_path, 3)
    try:
        read_many = store_read_many(studio.store)
        unknown = "0" * 64
        got = dict(read_many([*files, unknown, "not-an-id"]))
        assert got == files
    finally:
        studio.close()
