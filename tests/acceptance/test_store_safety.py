"""Nothing lost: a mistyped store URL, targets of ``store get``, dangling refs, repair."""

from __future__ import annotations

import re
from pathlib import Path

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
