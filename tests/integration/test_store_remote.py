"""RemoteStore against a real ``vstudio serve`` process: the same protocol over HTTP."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from vstudio.errors import BadInput, ObjectMissing, PermissionDenied
from vstudio.store import open_store
from vstudio.store.remote import RemoteStore


def test_remote_round_trip_dedup_refs_and_roles(server: object, tmp_path: Path) -> None:
    url, admin = server.url, server.admin_token  # type: ignore[attr-defined]
    store = RemoteStore(url, admin)
    data = random.Random(1).randbytes(3_000_000)
    f = tmp_path / "f"
    f.write_bytes(data)
    oid = store.put_file(f)
    assert store.has(oid) and store.size(oid) == len(data)
    assert store.get_bytes(oid) == data
    assert store.read_range(oid, 1_000_000, 1000) == data[1_000_000:1_001_000]
    store.get_file(oid, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data
    small = store.put_bytes(b"tiny")
    assert store.get_bytes(small) == b"tiny"
    assert store.get_bytes(store.put_bytes(b"")) == b""
    # the same bytes again: only the chunk list travels, the store does not grow
    before = store.stats()["stored_bytes"]
    assert store.put_file(f) == oid
    assert store.stats()["stored_bytes"] - before < 1000
    # the server's own store sees the object
    local = open_store(f"file://{server.studio / 'store'}")  # type: ignore[attr-defined]
    assert local.get_bytes(oid) == data
    # refs
    assert store.create_ref("render/abc", oid.encode())
    assert not store.create_ref("render/abc", b"other")
    assert store.get_ref("render/abc") == oid.encode()
    assert "render/abc" in store.list_refs("render/")
    store.delete_ref("render/abc")
    with pytest.raises(ObjectMissing):
        store.get_ref("render/abc")
    with pytest.raises(ObjectMissing):
        store.get_bytes("ab" * 32)
    with pytest.raises(BadInput):
        store.size("nope")
    # a viewer cannot write, and knowing an id is not enough to read it: reads need the
    # grant a tree, a job or an upload hands out
    viewer = RemoteStore(url, server.add_user("vic", "viewer"))  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied, match="read grant"):
        viewer.get_bytes(small)
    with pytest.raises(PermissionDenied):
        viewer.put_bytes(b"not allowed")
    assert store.check() == []


def test_server_rejects_lying_clients(server: object) -> None:
    import httpx

    url, admin = server.url, server.admin_token  # type: ignore[attr-defined]
    h = {"Authorization": f"Bearer {admin}"}
    # a chunk whose bytes do not match its id
    body = b"\x11" * 32 + (5).to_bytes(4, "little") + b"hello"
    r = httpx.post(f"{url}/api/store/chunks", content=body, headers=h)
    assert r.status_code == 400 and "does not match" in r.json()["detail"]
    # a file claiming an id its chunks do not rebuild to
    store = RemoteStore(url, admin)
    a = store.put_bytes(b"a" * 5000)
    b = store.put_bytes(b"b" * 5000)
    r = httpx.post(f"{url}/api/store/files", headers=h, json={
        "id": "cd" * 32, "pieces": [{"id": a, "length": 5000}, {"id": b, "length": 5000}]})
    assert r.status_code == 400 and "do not rebuild" in r.json()["detail"]
    r = httpx.post(f"{url}/api/store/files", headers=h, json={
        "id": "cd" * 32, "pieces": [{"id": "ef" * 32, "length": 5}, {"id": a, "length": 5000}]})
    assert r.status_code == 400 and "missing" in r.json()["detail"]
    r = httpx.get(f"{url}/api/store/stats")
    assert r.status_code == 401


def test_reads_go_straight_to_the_bucket(tmp_path: Path, s3_url: str) -> None:
    import boto3
    import httpx

    from tests.conftest import start_server
    from vstudio.errors import CorruptObject
    from vstudio.studio import init_studio

    init_studio(tmp_path / "st", store_url=s3_url, db_url=None).close()
    srv = start_server(tmp_path / "st", tmp_path / "server.log")
    try:
        store = RemoteStore(srv.url, srv.admin_token)
        data = random.Random(9).randbytes(2_500_000)
        oid = store.put_bytes(data)
        plan = httpx.get(f"{srv.url}/api/store/objects/{oid}/plan", params={"ranged": 1},
                         headers={"Authorization": f"Bearer {srv.admin_token}"}).json()
        assert plan["direct"] and plan["parts"] and plan["size"] == len(data)
        assert store.get_bytes(oid) == data
        # a byte flipped in the bucket: the client notices, whatever the server says
        bucket, _, rest = s3_url[len("s3://"):].partition("/")
        endpoint = rest.split("endpoint=")[1].split("&")[0]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        key = max((o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]
                   if "/packs/" in o["Key"]), key=lambda o: o["Size"])["Key"]  # the chunks
        raw = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        raw[1000] ^= 0xFF
        s3.put_object(Bucket=bucket, Key=key, Body=bytes(raw))
        with pytest.raises(CorruptObject):
            store.get_bytes(oid)
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def _signature_for(url: str, byte_range: str) -> tuple[str, str]:
    """The URL's SigV4 signature, and the one a bucket computes for a GET of it that
    sends ``byte_range`` (botocore's signer, with the test's AWS credentials)."""
    import os
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    q = dict(parse_qsl(parts.query))
    given = q.pop("X-Amz-Signature")
    req = AWSRequest("GET", urlunsplit(parts._replace(query=urlencode(q))),
                     headers={"Range": byte_range})
    req.context["timestamp"] = q["X-Amz-Date"]
    region = q["X-Amz-Credential"].split("/")[2]
    auth = S3SigV4QueryAuth(Credentials(os.environ["AWS_ACCESS_KEY_ID"],
                                        os.environ["AWS_SECRET_ACCESS_KEY"]),
                            "s3", region, int(q["X-Amz-Expires"]))
    return given, auth.signature(auth.string_to_sign(req, auth.canonical_request(req)), req)


def test_plan_urls_are_good_for_their_run_only(tmp_path: Path, s3_url: str) -> None:
    """Each pre-signed URL of a read plan signs its run's Range: it cannot read the rest
    of the pack (other files' chunks), and the client still gets exact bytes by it."""
    import httpx

    from tests.conftest import start_server
    from vstudio.studio import init_studio

    init_studio(tmp_path / "st", store_url=s3_url, db_url=None).close()
    srv = start_server(tmp_path / "st", tmp_path / "server.log")
    try:
        store = RemoteStore(srv.url, srv.admin_token)
        rng = random.Random(12)
        first = rng.randbytes(1_500_000)
        store.put_bytes(first)
        # a second file sharing the first's chunks: its plan reads parts of two packs
        data = first[:700_000] + rng.randbytes(900_000) + first[700_000:]
        oid = store.put_bytes(data)
        auth = {"Authorization": f"Bearer {srv.admin_token}"}
        plan = httpx.get(f"{srv.url}/api/store/objects/{oid}/plan", params={"ranged": 1},
                         headers=auth).json()
        assert plan["direct"] and plan["ranged"] and "packs" not in plan
        runs = [p for p in plan["parts"] if "inline" not in p]
        assert runs
        for part in runs:
            url = part["url"]
            assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
            assert "X-Amz-SignedHeaders=host%3Brange" in url
            planned = f"bytes={part['offset']}-{part['offset'] + part['length'] - 1}"
            given, computed = _signature_for(url, planned)
            assert given == computed
            for other in ("bytes=0-", f"bytes=0-{part['offset'] + part['length'] + 99}",
                          f"bytes={part['offset']}-{part['offset'] + part['length']}"):
                given, computed = _signature_for(url, other)
                assert given != computed, other
        assert store.get_bytes(oid) == data
        # a client that does not ask for ranged URLs (an older one) gets no plan: it
        # reads through the server
        old = httpx.get(f"{srv.url}/api/store/objects/{oid}/plan", headers=auth)
        assert old.status_code == 200 and old.json() == {"direct": False}
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def test_store_routes_never_answer_5xx(server: object) -> None:
    """Odd ids, ref names, bodies and ranges: always a 2xx or a 4xx with a message."""
    import httpx
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    url = f"{server.url}/api/store"  # type: ignore[attr-defined]
    http = httpx.Client(headers={"Authorization": f"Bearer {server.admin_token}"},  # type: ignore[attr-defined]
                        timeout=30)
    oid = RemoteStore(server.url, server.admin_token).put_bytes(b"x" * 70_000)  # type: ignore[attr-defined]
    text = st.text(max_size=80)
    ids = st.one_of(text, st.just(oid), st.just("ab" * 32))
    calls = st.one_of(
        st.tuples(st.just("GET"), ids.map(lambda i: f"/objects/{i}"), st.just({})),
        st.tuples(st.just("GET"), ids.map(lambda i: f"/objects/{i}/size"), st.just({})),
        st.tuples(st.just("GET"), ids.map(lambda i: f"/objects/{i}/plan"), st.just({})),
        st.tuples(st.just("GET"), st.just(f"/objects/{oid}"),
                  st.fixed_dictionaries({"params": st.fixed_dictionaries({
                      "offset": st.integers(-5, 10**12), "length": st.integers(-5, 10**6)})})),
        st.tuples(st.just("PUT"), text.map(lambda n: f"/refs/{n}"),
                  st.fixed_dictionaries({"content": st.binary(max_size=100)})),
        st.tuples(st.just("GET"), text.map(lambda n: f"/refs/{n}"), st.just({})),
        st.tuples(st.just("POST"), st.just("/chunks"),
                  st.fixed_dictionaries({"content": st.binary(max_size=300)})),
        st.tuples(st.just("POST"), st.sampled_from(["/chunks/missing", "/objects/has"]),
                  st.fixed_dictionaries({"json": st.one_of(
                      st.fixed_dictionaries({"ids": st.lists(ids, max_size=3)}),
                      st.dictionaries(text, text, max_size=2))})),
        st.tuples(st.just("POST"), st.just("/files"), st.fixed_dictionaries({"json": st.one_of(
            st.fixed_dictionaries({"id": ids, "pieces": st.lists(st.fixed_dictionaries({
                "id": st.one_of(st.none(), ids), "length": st.integers(-1, 10**6),
                "inline": st.one_of(st.none(), text)}), max_size=3)}),
            st.dictionaries(text, text, max_size=2))})),
    )

    @given(calls)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(call: tuple[str, str, dict[str, Any]]) -> None:
        method, path, kw = call
        try:
            r = http.request(method, url + path, **kw)
        except httpx.InvalidURL:
            return  # the client refuses to send it: nothing reached the server
        assert r.status_code < 500, (method, path, kw, r.status_code, r.text[:300])

    fuzz()


def test_remote_read_many(server: object) -> None:
    store = RemoteStore(server.url, server.admin_token)  # type: ignore[attr-defined]
    a, b = store.put_bytes(b"one" * 100), store.put_bytes(b"two" * 50_000)
    assert dict(store.read_many([a, b, "cd" * 32])) == {a: b"one" * 100, b: b"two" * 50_000}


def test_remote_ranges_come_as_checked_chunks(server: object, tmp_path: Path) -> None:
    import httpx

    url, admin = server.url, server.admin_token  # type: ignore[attr-defined]
    store = RemoteStore(url, admin)
    data = random.Random(4).randbytes(2_500_000)
    oid = store.put_bytes(data)
    for off, n in ((0, 10), (1_234_567, 4 << 20), (2_499_990, 100), (3_000_000, 5)):
        assert store.read_range(oid, off, n) == data[off:off + n]
    h = {"Authorization": f"Bearer {admin}"}
    r = httpx.get(f"{url}/api/store/objects/{oid}/pieces", headers=h,
                  params={"offset": 5, "length": 10})
    assert r.status_code == 200 and r.content.startswith(b"VSP1")
    r = httpx.get(f"{url}/api/store/objects/{'ab' * 32}/pieces", headers=h)
    assert r.status_code == 404
    r = httpx.get(f"{url}/api/store/objects/{oid}/pieces", headers=h,
                  params={"offset": -1})
    assert r.status_code == 422
