"""Nothing lost: a mistyped store URL, targets of ``store get``, dangling refs, repair."""

from __future__ import annotations

import json
import os
import random
import re
import stat
from pathlib import Path
from typing import Any

import boto3

from tests.helpers import cli, cli_json


def _fail(*args: str, code: int = 1) -> str:
    proc = cli(*args, check=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _point_store(studio: Path, url: str) -> None:
    toml = studio / "studio.toml"
    text = re.sub(r'(?m)^url = "file://store"$', f'url = "{url}"', toml.read_text())
    assert url in text
    toml.write_text(text)


STORE_COMMANDS = (("store", "stats"), ("store", "check"), ("store", "gc"),
                  ("store", "get", "ab" * 32, "out"))


def test_only_init_creates_a_local_store(studio_dir: Path, tmp_path: Path) -> None:
    typo = tmp_path / "stroe"
    _point_store(studio_dir, f"file://{typo}")
    for args in STORE_COMMANDS:
        msg = _fail(*args, "--studio", str(studio_dir))
        assert "no vstudio store at" in msg and str(typo) in msg and "vstudio init" in msg
    f = tmp_path / "f"
    f.write_bytes(b"x" * 1000)
    _fail("store", "put", str(f), "--studio", str(studio_dir))
    assert not typo.exists()  # not even an empty folder


def test_only_init_creates_a_store_in_a_bucket(tmp_path: Path, s3_server: object) -> None:
    endpoint = s3_server.endpoint  # type: ignore[attr-defined]
    bucket = s3_server.new_bucket()  # type: ignore[attr-defined]
    cli("init", str(tmp_path / "st"), "--store", s3_server.url(bucket))  # type: ignore[attr-defined]
    f = tmp_path / "f"
    f.write_bytes(b"frame" * 1000)
    s = ("--studio", str(tmp_path / "st"))
    oid = cli_json("store", "put", str(f), *s)[0]["id"]
    toml = tmp_path / "st" / "studio.toml"
    toml.write_text(toml.read_text().replace(f"{bucket}/studio", f"{bucket}/stuido"))
    for args in STORE_COMMANDS:
        msg = _fail(*args, *s)
        assert "no vstudio store at" in msg and "stuido" in msg
    _fail("store", "put", str(f), *s)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and not [k for k in keys if not k.startswith("studio/")]
    empty = s3_server.new_bucket()  # type: ignore[attr-defined]
    toml.write_text(toml.read_text().replace(f"{bucket}/stuido", f"{empty}/studio"))
    assert "no vstudio store at" in _fail("store", "stats", *s)
    assert "Contents" not in s3.list_objects_v2(Bucket=empty)
    toml.write_text(toml.read_text().replace(f"{empty}/studio", f"{bucket}/studio"))
    cli("store", "get", oid, str(tmp_path / "back"), *s)  # the right URL still works
    assert (tmp_path / "back").read_bytes() == f.read_bytes()


def _refs(studio: Path) -> Any:
    from vstudio.studio import Studio

    return Studio.open(studio).store


def test_check_walks_every_ref_and_names_dangling_ones(studio_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(random.Random(4).randbytes(300_000))
    s = ("--studio", str(studio_dir))
    oid = cli_json("store", "put", str(f), *s)[0]["id"]
    store = _refs(studio_dir)
    store.put_ref("projects/p/revs/1", json.dumps({"objects": [oid]}).encode())
    assert cli_json("store", "check", *s)["ok"]
    gone = "ab" * 32
    store.put_ref("projects/q/revs/1", json.dumps({"objects": [gone]}).encode())
    proc = cli("store", "check", *s, check=False)
    assert proc.returncode == 1
    assert f"ref projects/q/revs/1: object {gone} is missing" in proc.stdout
    assert "projects/p" not in proc.stdout
    for pack in (studio_dir / "store" / "packs").rglob("*"):
        if pack.is_file():
            pack.unlink()
    out = cli_json("store", "check", *s, check=False)
    assert not out["ok"]
    assert any(p.startswith("ref projects/p/revs/1: ") for p in out["problems"])


def test_get_refuses_symlinks_and_pipes(studio_dir: Path, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"frame" * 1000)
    s = ("--studio", str(studio_dir))
    oid = cli_json("store", "put", str(f), *s)[0]["id"]
    precious = tmp_path / "precious"
    precious.write_text("keep me")
    link = tmp_path / "link"
    link.symlink_to(precious)
    assert "is a symlink" in _fail("store", "get", oid, str(link), *s)
    assert link.is_symlink() and precious.read_text() == "keep me"
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    assert "not a regular file" in _fail("store", "get", oid, str(pipe), *s)
    assert stat.S_ISFIFO(pipe.lstat().st_mode)
    cli("store", "get", oid, str(tmp_path / "plain"), *s)  # a regular file is fine
    cli("store", "get", oid, str(tmp_path / "plain"), *s)  # and replaced
    assert (tmp_path / "plain").read_bytes() == f.read_bytes()


def _flip_byte(pack: Path, at: int) -> None:
    raw = bytearray(pack.read_bytes())
    raw[at] ^= 1
    pack.write_bytes(bytes(raw))


def test_repair_rewrites_damaged_pieces_from_the_original(studio_dir: Path,
                                                          tmp_path: Path) -> None:
    s = ("--studio", str(studio_dir))
    rnd = random.Random(5)
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(rnd.randbytes(400_000))
    two.write_bytes(rnd.randbytes(400_000))
    ids = [r["id"] for r in cli_json("store", "put", str(one), str(two), *s)]  # one pack
    (pack,) = [p for p in (studio_dir / "store" / "packs").rglob("*") if p.is_file()]
    _flip_byte(pack, 100)  # inside the first chunk of 'one'
    out = tmp_path / "out"
    assert "corrupt" in _fail("store", "get", ids[0], str(out), *s)
    cli("store", "put", str(one), *s)  # a put reuses the stored copy without reading it
    assert "corrupt" in _fail("store", "get", ids[0], str(out), *s)
    assert "nothing to repair" in cli("store", "repair", str(two), *s).stdout
    done = cli_json("store", "repair", str(one), *s)
    assert done["files"] == [{"path": str(one), "id": ids[0]}]
    assert done["repaired_objects"] >= 1 and done["packs_rewritten"] == 1
    for oid, src in zip(ids, (one, two), strict=True):
        cli("store", "get", oid, str(out), *s)
        assert out.read_bytes() == src.read_bytes()
    assert cli_json("store", "check", "--read-data", *s)["ok"]
    # A lost pack: its files come back from the originals.
    for p in (studio_dir / "store" / "packs").rglob("*"):
        if p.is_file():
            p.unlink()
    assert not cli_json("store", "check", *s, check=False)["ok"]
    cli("store", "repair", str(one), str(two), *s)
    cli("store", "get", ids[1], str(out), *s)
    assert out.read_bytes() == two.read_bytes()
    assert cli_json("store", "check", "--read-data", *s)["ok"]
    assert "does not exist" in _fail("store", "repair", str(tmp_path / "nope"), *s)
