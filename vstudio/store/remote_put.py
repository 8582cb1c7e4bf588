"""Putting files through a studio server: chunks are cut here, only missing ones travel.

Files are cut on the client (by the format-aware chunker their magic bytes pick, as a
local put does, else FastCDC); the server is asked which chunks it lacks, and only those
are sent, in batches of ~16 MiB with a few requests under way at once. A transformed
file's recipe (its pieces, the transform and its parameters) goes last, and the server
checks that it rebuilds the file's id. ``RemoteStore`` (``store/remote.py``) is the
``Server`` these talk to.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import blake3

from vstudio.errors import BadInput
from vstudio.store.api import NO_PROGRESS, Progress
from vstudio.store.chunking import FASTCDC, ObjectSource, Split, pick_chunker
from vstudio.store.verify import StreamCheck, hash_file

log = logging.getLogger("vstudio.store")

UPLOAD_BATCH = 16 << 20  # bytes of chunks per missing-check and upload request (one pack)
UPLOADS = 3  # upload requests under way at once


class Server(ObjectSource, Protocol):
    """What a put needs of the server (``RemoteStore``)."""

    def upload_chunks(self, batch: list[tuple[bytes, bytes]],
                      chunker: str = "fastcdc") -> dict[str, dict[str, str]]:
        """Send the chunks the store lacks; per chunk, proof this client holds its bytes."""
        ...

    def record_file(self, body: dict[str, Any]) -> str:
        """Record a file made of uploaded pieces; its id."""
        ...


class Uploads:
    """Chunks on their way to the server: batched (one missing-check and one upload
    request per ~16 MiB), a few requests under way at once, piece list kept in order."""

    def __init__(self, store: Server, chunker: str = "fastcdc") -> None:
        self.store = store
        self.chunker = chunker
        self.pieces: list[dict[str, Any]] = []
        self._batch: list[tuple[bytes, bytes]] = []
        self._nbytes = 0
        self._pool = ThreadPoolExecutor(UPLOADS)
        self._sending: list[Any] = []
        self.proofs: dict[str, dict[str, str]] = {}  # chunk id -> proof the bytes are here

    def add(self, data: bytes, inline: bool = False, key: bytes | None = None) -> None:
        if inline:
            self.pieces.append({"inline": base64.b64encode(data).decode(), "length": len(data)})
            return
        key = key or blake3.blake3(data).digest()
        self.pieces.append({"id": key.hex(), "length": len(data)})
        self._batch.append((key, data))
        self._nbytes += len(data)
        if self._nbytes >= UPLOAD_BATCH:
            self._send()

    def _send(self) -> None:
        while sum(not f.done() for f in self._sending) >= UPLOADS:
            next(f for f in self._sending if not f.done()).result()
        self._sending.append(self._pool.submit(self.store.upload_chunks, self._batch, self.chunker))
        self._batch, self._nbytes = [], 0

    def finish(self) -> None:
        """Wait until every chunk is on the server; raise the first upload error."""
        try:
            if self._batch:
                self._send()
            for f in self._sending:
                self.proofs.update(f.result())
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _UploadFailed(Exception):
    """An upload error, told apart from a chunker's failure to cut a file."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _uploading(fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception as e:
        raise _UploadFailed(e) from e


class RemoteWriter:
    """Puts through the server: only the chunks it lacks travel (see the module)."""

    def __init__(self, store: Server) -> None:
        self.store = store

    def put_file(self, path: Path, progress: Progress = NO_PROGRESS,
                 previous: str | None = None) -> str:
        path = Path(path)
        if path.is_dir():
            raise BadInput(f"{path} is a folder: give files")
        try:
            size = path.stat().st_size
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BadInput(f"{path} does not exist") from None
        except PermissionError:
            raise BadInput(f"{path} is not readable (permission denied)") from None
        progress.start(size, path.name)
        try:
            with f:
                # Format-aware chunkers (.blend) first, as a local put does: their pieces
                # dedupe across saves where FastCDC's do not.  (Delta hooks are local only:
                # bounding their chains needs the store's recipes.)
                oid = self._put_plugin(path, size, progress)
                if oid is not None:
                    return oid
                return self.put_stream(f, progress)
        finally:
            progress.done()

    def _put_plugin(self, path: Path, size: int, progress: Progress) -> str | None:
        """Put ``path`` with the chunker its magic bytes pick; None when that is FastCDC or
        the chunker's pieces do not rebuild the file (checked here as they stream past,
        and again by the server before it records the recipe)."""
        chunker = pick_chunker(path)
        if chunker is FASTCDC:
            return None
        up = Uploads(self.store, chunker.name)
        try:
            try:
                out = chunker.split(path)
                split = out if isinstance(out, Split) else Split(out)
                want = hash_file(path)
                check = StreamCheck(split.transform, split.params, self.store)
                for piece in check.fed(split.pieces):
                    _uploading(up.add, piece.data, piece.inline)
                got = check.digest()
            finally:
                _uploading(up.finish)
        except _UploadFailed as e:  # the server or the network: not the chunker's fault
            raise e.cause from None
        except Exception as e:  # a file the chunker cannot cut exactly (a damaged .blend)
            log.warning("chunker %s failed on %s: %s; using fastcdc", chunker.name, path, e)
            return None
        if got != want:
            log.warning("chunker %s does not rebuild %s exactly; using fastcdc",
                        chunker.name, path)
            return None
        body: dict[str, Any] = {"id": want.hex(), "pieces": up.pieces, "chunker": chunker.name,
                                "proofs": up.proofs}
        if split.transform:
            body.update(transform=split.transform, params=split.params)
        try:
            oid = self.store.record_file(body)
        except BadInput as e:  # an older or stricter server: the plain way still works
            log.warning("the server refused the %s pieces of %s (%s); using fastcdc",
                        chunker.name, path, e)
            return None
        progress.advance(size)
        return oid

    def put_bytes(self, data: bytes) -> str:
        return self.put_stream(io.BytesIO(bytes(data)))

    def put_stream(self, stream: BinaryIO, progress: Progress = NO_PROGRESS) -> str:
        hasher = blake3.blake3()
        up = Uploads(self.store)
        try:
            for piece in FASTCDC.split_stream(stream, hasher.update):
                up.add(piece.data)
                progress.advance(len(piece.data))
        finally:
            up.finish()
        return self.store.record_file({"id": hasher.hexdigest(), "pieces": up.pieces,
                                 "proofs": up.proofs})

    def __enter__(self) -> RemoteWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
