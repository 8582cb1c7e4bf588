"""The object store's public contract, as the rest of the studio uses it.

Consumers (repository, farm, render, mount) depend on these protocols only; the concrete
store lives in ``store/objects.py`` and is built by ``store.open_store``.

Ids are lowercase hex BLAKE3-256 digests (64 characters) of an object's plain bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable


class Progress(Protocol):
    """Progress callbacks; ``NO_PROGRESS`` does nothing, so callers never test for None."""

    def start(self, total: int, label: str = "") -> None: ...
    def advance(self, amount: int) -> None: ...
    def done(self) -> None: ...


class _NoProgress:
    def start(self, total: int, label: str = "") -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()


@dataclass(frozen=True)
class ObjectInfo:
    """One object the backend holds."""

    name: str
    size: int
    mtime: float


class Presigning(Protocol):
    """A backend whose objects a client can fetch itself by URL (S3)."""

    def presign_range(self, name: str, offset: int, length: int,
                      expires: int = 3600) -> str: ...


class TempFiles(Protocol):
    """A backend that writes through temp files (a local folder): a killed writer leaves
    some behind, which ``stats`` counts and ``gc`` removes."""

    def temp_bytes(self) -> int: ...
    def clean_temp(self, older_than: float) -> int: ...


class PartsWriting(Protocol):
    """A backend that writes an object from its parts without joining them in memory."""

    def put_parts(self, name: str, parts: list[bytes]) -> None: ...


@dataclass(frozen=True)
class Features:
    """The optional interfaces a backend declares (None: it lacks that one).

    Declared rather than probed with ``getattr``, so that a wrapper (the retry backend)
    passes on exactly what its inner backend offers, and mypy checks every call."""

    presign: Presigning | None = None
    temp: TempFiles | None = None
    parts: PartsWriting | None = None


NO_FEATURES = Features()


class Backend(Protocol):
    """Where bytes live: a local folder, S3, memory. Names are '/'-separated keys.

    Contracts every backend keeps (checked by tests/integration/test_store_backends.py):
    - ``put`` is atomic: a reader sees the whole new object or the old one/none, never part.
    - ``create`` stores only if no object of that name exists and says whether it did;
      where the service cannot do this atomically the backend says so in ``atomic_create``.
    - ``get``/``get_range``/``stat`` raise ``ObjectMissing`` for an absent name.
    - ``delete`` of an absent name is not an error.
    - ``list`` yields every object whose name starts with ``prefix``, in no set order.
    """

    atomic_create: bool
    features: Features  # optional interfaces: see ``Features``

    def put(self, name: str, data: bytes) -> None: ...
    def put_path(self, name: str, path: Path) -> None: ...
    def create(self, name: str, data: bytes) -> bool: ...
    def get(self, name: str) -> bytes: ...
    def get_range(self, name: str, offset: int, length: int) -> bytes: ...
    def stat(self, name: str) -> ObjectInfo: ...
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def delete(self, name: str) -> None: ...
    def describe(self) -> str: ...


class Writer(Protocol):
    """A batch of puts; every id it returned is durable once the batch's context exits."""

    # ``previous``: the id of the previous version of the same path, if known; it lets a
    # delta chunker (store/delta.py) store only what changed. Optional everywhere.
    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def put_stream(self, stream: BinaryIO, progress: Progress = NO_PROGRESS) -> str: ...


@runtime_checkable
class ServedStore(Protocol):
    """A store reached through a studio server, which checks rights on every call: its
    address, and whose token it holds."""

    server_url: str

    def me(self) -> str: ...


class ObjectStore(Protocol):
    """Content-addressed storage of files and small metadata objects."""

    def writer(self) -> AbstractContextManager[Writer]: ...
    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str: ...
    def put_bytes(self, data: bytes) -> str: ...
    def get_file(self, oid: str, dest: Path, progress: Progress = NO_PROGRESS) -> None: ...
    def get_bytes(self, oid: str) -> bytes: ...
    def read_range(self, oid: str, offset: int, length: int) -> bytes: ...
    def size(self, oid: str) -> int: ...
    def has(self, oid: str) -> bool: ...
    # Many small files at once (the mount lists a folder and reads them all): ``(id,
    # bytes)`` of those that can be read, each checked against its id; the others are
    # left out (reading one alone says what is wrong).
    def read_many(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]: ...
    # Where a file's chunks sit in the bucket, with pre-signed URLs, so that a client
    # reads them from the bucket itself (store/direct.py); None when the store cannot
    # (a local folder, encryption, a transformed file).
    def read_plan(self, oid: str, expires: int = 3600) -> dict[str, Any] | None: ...
    # Read grants (grants.py): what a client of a server hands the farm so that a worker
    # may read an input. A store opened directly needs none: None, and nothing kept.
    def grant(self, oid: str) -> str | None: ...
    def remember(self, grants: Mapping[str, str]) -> None: ...
    # Named, mutable small records (commit pointers, render-cache entries). They are the
    # roots of garbage collection and what a catalog rebuild reads back.
    def put_ref(self, name: str, data: bytes) -> None: ...
    def create_ref(self, name: str, data: bytes) -> bool: ...
    def get_ref(self, name: str) -> bytes: ...
    def list_refs(self, prefix: str = "") -> list[str]: ...
    def delete_ref(self, name: str) -> None: ...
    # Upkeep (stats, check, gc) is not part of this interface: ``store/maintenance.py``
    # works on a store this process opened (``objects.Store``); a client of a server asks
    # the server (``RemoteStore.stats/check/gc``).


def proof_key(nonce: str) -> bytes:
    """The BLAKE3 key of an upload's proof that the client holds a chunk's bytes.

    The server's ``/chunks/missing`` hands out a nonce; a client proves it holds a chunk
    it does not send by its BLAKE3 keyed with this (``api/possession.py`` checks it).
    """
    return hashlib.sha256(b"vstudio chunk proof\n" + nonce.encode()).digest()
