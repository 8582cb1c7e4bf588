"""What the objects layer must know of garbage collection: writer markers and doomed sets.

Part of the pack and index layer (it speaks only to the backend and the codec), so that
``store/objects.py`` reads the gc state without importing the maintenance layer above it;
``store/maintenance.py`` explains the protocol and writes the sets.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

from vstudio.errors import ObjectMissing
from vstudio.store.api import Backend
from vstudio.store.codec import Codec

WRITERS = "writers/"
DOOMED = "gc/doomed"  # the single object of stores written before generations
GENERATION = "gc/doomed-"  # + 20-digit nanosecond time + random: newest name wins
STALE_WRITER = 24 * 3600.0
# A gc stamps its marks before the generation object is stored: a batch may start while
# that put is under way and miss it. Its marker is then at most this much younger.
SLACK = 60.0


@contextlib.contextmanager
def writer_marker(backend: Backend) -> Iterator[None]:
    name = f"{WRITERS}{uuid.uuid4().hex}"
    backend.put(name, json.dumps({"started": time.time()}).encode())
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            backend.delete(name)


def generations(backend: Backend) -> list[str]:
    """Names of the doomed-set objects, oldest first (the legacy single one first)."""
    names = {o.name for o in backend.list(DOOMED)}  # one LIST finds both kinds
    return sorted(names - {DOOMED}) if DOOMED not in names else \
        [DOOMED, *sorted(names - {DOOMED})]


def latest_generation(backend: Backend) -> str | None:
    names = generations(backend)
    return names[-1] if names else None


def load_doomed(backend: Backend, codec: Codec, name: str | None) -> dict[bytes, float]:
    """The doomed set stored under ``name`` (None: there is none yet)."""
    if name is None:
        return {}
    try:
        raw = codec.open(name.encode(), backend.get(name), name)
    except ObjectMissing:  # replaced by a newer generation since it was listed
        return load_doomed(backend, codec, latest_generation(backend))
    data = json.loads(raw)
    return {bytes.fromhex(k): float(v) for k, v in data.items()}


def store_generation(backend: Backend, codec: Codec, doomed: dict[bytes, float]) -> str:
    """Write the doomed set as the newest generation, then drop the older ones; its name."""
    old = generations(backend)
    name = f"{GENERATION}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
    backend.put(name, codec.seal(name.encode(), json.dumps(
        {k.hex(): t for k, t in doomed.items()}).encode()))
    for n in old:
        backend.delete(n)
    return name
