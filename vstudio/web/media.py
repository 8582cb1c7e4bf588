"""Serving stored bytes to the browser: inline images and videos, downloads, byte ranges.

Only raster images and videos are shown inline; everything else (HTML, SVG, PDF, .blend)
is a download, so a file someone committed or rendered never runs as a page of ours.
A video element seeks with ``Range`` requests, answered from the store's ranged reads.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from vstudio.store.api import ObjectStore

CHUNK = 1 << 20
INLINE = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
          ".gif": "image/gif", ".webp": "image/webp", ".mp4": "video/mp4",
          ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
          ".mov": "video/quicktime", ".mkv": "video/x-matroska"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def inline_type(name: str) -> str | None:
    dot = name.rfind(".")
    return INLINE.get(name[dot:].lower()) if dot >= 0 else None


def disposition(kind: str, name: str) -> str:
    """A Content-Disposition header value safe for any file name (RFC 6266 / 5987)."""
    name = name.rsplit("/", 1)[-1] or "file"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return (f'{kind}; filename="{ascii_name}"; '
            f"filename*=UTF-8''{urllib.parse.quote(name, safe='')}")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single ``bytes=`` range; None for none or unusable."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:  # the last N bytes
        start = max(0, size - int(m.group(2)))
        end = size - 1
    if start >= size or end < start:
        return (-1, -1)
    return start, min(end, size - 1)


def stream_bytes(request: Request, read: Callable[[int, int], bytes], size: int, name: str, *,
                 download: bool, immutable: bool = True) -> Response:
    media = inline_type(name)
    inline = media is not None and not download
    headers = {
        "Content-Disposition": disposition("inline" if inline else "attachment", name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; media-src 'self'; sandbox",
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable" if immutable else "no-store",
    }
    rng = parse_range(request.headers.get("range"), size)
    start, end, status = 0, size - 1, 200
    if rng == (-1, -1):
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if rng is not None:
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)

    async def body() -> AsyncIterator[bytes]:
        offset = start
        while offset <= end:
            n = min(CHUNK, end - offset + 1)
            # Store reads block (disk or S3): keep them off the event loop.
            data = await asyncio.to_thread(read, offset, n)
            if not data:
                break
            offset += len(data)
            yield data

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=media if inline else "application/octet-stream")


async def stream_object(request: Request, store: ObjectStore, oid: str, name: str, *,
                        download: bool) -> Response:
    size = await asyncio.to_thread(store.size, oid)
    return stream_bytes(request, lambda o, n: store.read_range(oid, o, n), size, name,
                        download=download)
