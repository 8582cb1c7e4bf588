"""``RemoteStore``: the ``ObjectStore`` protocol over the studio server's HTTP API.

Puts are deduplicated on the client (``store/remote_put.py``: only the chunks the server
lacks travel). Whole-file reads are checked against the id on arrival (a wrong byte raises
``CorruptObject`` and leaves no file behind).

Reads carry the read grant the server handed out with the id (a tree, a job's outputs, a
task, an upload: see ``vstudio.grants``); the store keeps them in ``grants``, and calls
``renew`` for an id whose grant is about to expire.
"""

from __future__ import annotations

import base64
import contextlib
import re
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import blake3
import httpx

from vstudio.errors import (
    AlreadyExists,
    BadInput,
    Conflict,
    CorruptObject,
    NotAuthenticated,
    ObjectMissing,
    PermissionDenied,
    ServerError,
    VStudioError,
)
from vstudio.store import format as fmt
from vstudio.store.api import NO_PROGRESS, Progress, proof_key
from vstudio.store.codec import Codec
from vstudio.store.download import write_file
from vstudio.store.objects import check_ref_name, parse_id
from vstudio.store.reads import parse_pieces
from vstudio.store.remote_put import RemoteWriter

_HEX = re.compile(rb"[0-9a-f]{64}")


def _expires(grant: str) -> float:
    try:
        return int(grant.partition(".")[0], 16)
    except ValueError:
        return 0.0

PIECES_MAX = 64 << 20  # range reads up to this come as checked chunks


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        detail = str(resp.json().get("detail", resp.text))
    except ValueError:
        detail = resp.text[:200] or resp.reason_phrase
    cls: type[VStudioError] = {
        400: BadInput, 401: NotAuthenticated, 403: PermissionDenied, 404: ObjectMissing,
        409: Conflict, 422: BadInput}.get(resp.status_code, ServerError)
    if resp.status_code == 409 and "exists" in detail:
        cls = AlreadyExists
    if resp.status_code == 502 and "corrupt" in detail:
        cls = CorruptObject
    raise cls(detail)


class RemoteStore:
    """The studio's store through ``server_url`` with an API token."""

    def __init__(self, server_url: str, token: str | None, timeout: float = 60.0,
                 direct: bool = True) -> None:
        self.server_url = server_url.rstrip("/")
        self.base = self.server_url + "/api/store"
        self._me: str | None = None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(headers=headers, timeout=timeout)
        # Reads may go straight to the bucket by pre-signed URL: no token goes there.
        self.direct = direct
        self.bucket = httpx.Client(timeout=timeout)
        self._transformed: set[str] = set()  # ids whose ranges cannot be checked by chunk
        self.grants: dict[str, str] = {}  # object id -> this user's read grant
        self.renew: Callable[[str], None] | None = None  # refreshes the grant of an id

    def me(self) -> str:
        """The name of the user behind the token (asked once)."""
        if self._me is None:
            try:
                resp = self.http.get(self.server_url + "/api/me")
            except httpx.HTTPError as e:
                raise ServerError(f"cannot reach the studio server at {self.server_url}: "
                                  f"{e}") from None
            _raise_for(resp)
            self._me = str(resp.json()["name"])
        return self._me

    def remember(self, grants: Mapping[str, str]) -> None:
        """Keep read grants the server handed out (``{id: grant}``)."""
        self.grants.update(grants)

    def grant(self, oid: str) -> str | None:
        """This user's read grant for ``oid`` (renewed when about to expire), or None."""
        g = self.grants.get(oid)
        if self.renew is not None and (g is None or _expires(g) < time.time() + 60):
            self.renew(oid)
            g = self.grants.get(oid)
        return g

    def _g(self, oid: str, **params: Any) -> dict[str, Any]:
        g = self.grant(oid)
        return {**params, "g": g} if g else params

    def record_file(self, body: dict[str, Any]) -> str:
        """Record an uploaded file's pieces; keep the read grant the answer carries."""
        doc = self._post("/files", json=body).json()
        if doc.get("grant"):
            self.grants[str(doc["id"])] = str(doc["grant"])
        return str(doc["id"])

    def close(self) -> None:
        self.http.close()
        self.bucket.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, self.base + path, **kw)
        except httpx.HTTPError as e:
            raise ServerError(f"cannot reach the studio server at {self.base}: {e}") from None
        _raise_for(resp)
        return resp

    def _post(self, path: str, **kw: Any) -> httpx.Response:
        return self._request("POST", path, **kw)

    def upload_chunks(self, batch: list[tuple[bytes, bytes]],
                      chunker: str = "fastcdc") -> dict[str, dict[str, str]]:
        """Send the chunks the store lacks; return, per chunk, the proof that this client
        holds its bytes (a receipt for those sent, a keyed hash for the others)."""
        unique = dict(batch)
        doc = self._post("/chunks/missing", json={"ids": [k.hex() for k in unique]}).json()
        missing = [bytes.fromhex(k) for k in doc["missing"]]
        nonce = str(doc.get("nonce") or "")
        proofs: dict[str, dict[str, str]] = {}
        if nonce:
            key = proof_key(nonce)
            sent = set(missing)
            proofs = {k.hex(): {"nonce": nonce, "mac": blake3.blake3(d, key=key).hexdigest()}
                      for k, d in unique.items() if k not in sent}
        if not missing:
            return proofs
        body = b"".join(k + struct.pack("<I", len(unique[k])) + unique[k] for k in missing)
        resp = self._post("/chunks", content=body, params={"chunker": chunker},
                          headers={"Content-Type": "application/octet-stream"})
        proofs.update({k: {"receipt": r} for k, r in (resp.json().get("receipts") or {}).items()})
        return proofs

    @contextlib.contextmanager
    def writer(self) -> Iterator[RemoteWriter]:
        yield RemoteWriter(self)

    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str:
        return RemoteWriter(self).put_file(path, progress, previous)

    def put_bytes(self, data: bytes) -> str:
        return RemoteWriter(self).put_bytes(data)

    def put_stream(self, stream: BinaryIO, progress: Progress = NO_PROGRESS) -> str:
        return RemoteWriter(self).put_stream(stream, progress)

    def iter_file(self, oid: str) -> Iterator[bytes]:
        parse_id(oid)
        plan = self.read_plan(oid) if self.direct else None
        if plan is not None:
            yield from self._iter_direct(oid, plan)
            return
        params = self._g(oid)
        h = blake3.blake3()
        try:
            with self.http.stream("GET", f"{self.base}/objects/{oid}", params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _raise_for(resp)
                for block in resp.iter_bytes(1 << 20):
                    h.update(block)
                    yield block
        except httpx.HTTPError as e:
            raise ServerError(f"download of {oid} failed: {e}") from None
        if h.hexdigest() != oid:
            raise CorruptObject(f"object {oid} arrived corrupt (it does not match its id)")

    def read_plan(self, oid: str, expires: int = 3600) -> dict[str, Any] | None:
        """The server's plan for reading ``oid`` from the bucket (it picks how long the
        URLs last), or None when it cannot give one. Only a plan of ranged URLs is used:
        an older server's whole-pack URLs are left alone (the read goes through it)."""
        plan: dict[str, Any] = self._request("GET", f"/objects/{oid}/plan",
                                             params=self._g(oid, ranged=1)).json()
        return plan if plan.get("direct") and plan.get("ranged") else None

    def _iter_direct(self, oid: str, plan: dict[str, Any]) -> Iterator[bytes]:
        """Chunks straight from the bucket by pre-signed URL, each checked against its id."""
        from concurrent.futures import ThreadPoolExecutor

        codec = Codec(None)
        h = blake3.blake3()

        def fetch(part: dict[str, Any]) -> bytes:
            if "inline" in part:
                return b""
            end = part["offset"] + part["length"] - 1
            try:
                # exactly the range the URL was signed for: the bucket refuses any other
                resp = self.bucket.get(part["url"],
                                       headers={"Range": f"bytes={part['offset']}-{end}"})
            except httpx.HTTPError as e:
                raise ServerError(f"cannot reach the bucket for {oid}: {e}") from None
            if resp.status_code not in (200, 206):
                raise ServerError(f"the bucket answered {resp.status_code} for {oid}")
            return resp.content

        with ThreadPoolExecutor(4) as pool:
            for part, data in zip(plan["parts"], pool.map(fetch, plan["parts"]), strict=True):
                if "inline" in part:
                    block = base64.b64decode(part["inline"])
                    h.update(block)
                    yield block
                    continue
                frames: dict[int, bytes] = {}
                for key, off, length, raw_len, *inner in part["blobs"]:
                    stored = data[off:off + length]
                    if inner:  # a chunk inside a frame of chunks compressed together
                        if off not in frames:
                            frames[off] = codec.open(fmt.FRAME_AAD, stored, f"frame of {key}")
                        plain = frames[off][inner[0]:inner[0] + raw_len]
                    else:
                        plain = codec.open(bytes.fromhex(key), stored, f"object {key}")
                    if len(plain) != raw_len or blake3.blake3(plain).hexdigest() != key:
                        raise CorruptObject(f"chunk {key} of {oid} arrived corrupt")
                    h.update(plain)
                    yield plain
        if h.hexdigest() != oid:
            raise CorruptObject(f"object {oid} arrived corrupt (it does not match its id)")

    def get_file(self, oid: str, dest: Path, progress: Progress = NO_PROGRESS) -> None:
        write_file(dest, lambda: self.size(oid), lambda: self.iter_file(oid), progress)

    def get_bytes(self, oid: str) -> bytes:
        return b"".join(self.iter_file(oid))

    def read_many(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """``(id, bytes)`` of those files that can be read, each checked against its id;
        missing or damaged ones are left out (as the local store's ``read_many``)."""
        for oid in dict.fromkeys(oids):
            try:
                yield oid, self.get_bytes(oid)
            except (ObjectMissing, CorruptObject, BadInput):
                continue

    def read_range(self, oid: str, offset: int, length: int) -> bytes:
        parse_id(oid)
        if offset < 0 or length < 0:
            raise BadInput("offset and length must not be negative")
        if length <= PIECES_MAX and oid not in self._transformed:
            # The whole chunks covering the range, each checked against its id here.
            try:
                body = self._request("GET", f"/objects/{oid}/pieces",
                                     params=self._g(oid, offset=offset, length=length)).content
                return parse_pieces(body, oid, offset, length)
            except Conflict:  # a transformed file: its bytes are not its chunks'
                self._transformed.add(oid)
        return self._request("GET", f"/objects/{oid}",
                             params=self._g(oid, offset=offset, length=length)).content

    def size(self, oid: str) -> int:
        parse_id(oid)
        return int(self._request("GET", f"/objects/{oid}/size",
                                 params=self._g(oid)).json()["size"])

    def has(self, oid: str) -> bool:
        """Whether the store holds ``oid`` and this client may read it (without a grant,
        putting the file again costs only the missing-chunk check and brings one)."""
        parse_id(oid)
        if oid not in self.grants:
            return False
        return oid in self._post("/objects/has", json={"ids": [oid]}).json()["present"]

    def _ref_body(self, data: bytes) -> dict[str, Any]:
        """A ref's bytes with this client's grant for every object id they name (the
        server takes a ref only from someone who may read what it names)."""
        ids = {m.decode() for m in _HEX.findall(bytes(data))}
        return {"data": base64.b64encode(bytes(data)).decode(),
                "grants": {i: g for i in ids if (g := self.grant(i))}}

    def put_ref(self, name: str, data: bytes) -> None:
        self._request("PUT", f"/refs/{check_ref_name(name)}", json=self._ref_body(data))

    def create_ref(self, name: str, data: bytes) -> bool:
        resp = self._request("PUT", f"/refs/{check_ref_name(name)}", json=self._ref_body(data),
                             params={"create": "true"})
        return bool(resp.json()["created"])

    def get_ref(self, name: str) -> bytes:
        """A ref's bytes, with read grants for the objects it names (the render cache)."""
        doc = self._request("GET", f"/refs/{check_ref_name(name)}",
                            params={"grants": "true"}).json()
        self.remember(doc.get("grants") or {})
        return base64.b64decode(doc["data"])

    def list_refs(self, prefix: str = "") -> list[str]:
        return list(self._request("GET", "/refs", params={"prefix": prefix}).json()["refs"])

    def delete_ref(self, name: str) -> None:
        self._request("DELETE", f"/refs/{check_ref_name(name)}")

    def gc(self, live: Iterable[str] = (), grace_seconds: float = 3600.0) -> dict[str, int]:
        return dict(self._post("/gc", json={"live": list(live),
                                           "grace_seconds": grace_seconds}).json())

    def stats(self) -> dict[str, Any]:
        return dict(self._request("GET", "/stats").json())

    def check(self, read_data: bool = False) -> list[str]:
        resp = self._post("/check", params={"read_data": str(read_data).lower()})
        return list(resp.json()["problems"])


__all__ = ["RemoteStore", "RemoteWriter"]
