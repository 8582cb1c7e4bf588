"""Keeps the farm's inputs and outputs alive through ``vstudio store gc``.

A job's outputs (frames, videos, thumbnails) and uploaded inputs are named only in the
catalog, not in any ref, so without this provider gc would delete them after its grace
period.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vstudio.store.roots import register_roots


@register_roots
def farm_objects(studio: Any) -> Iterator[str]:
    from vstudio.catalog.farm_roots import farm_object_ids

    yield from farm_object_ids(studio.engine)
