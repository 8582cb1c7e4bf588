"""The render nodes' facts kept between farm writes: read once while nothing is
written, read again after any write and after the time bound (another manager)."""

from __future__ import annotations

import time
from typing import Any

from vstudio.catalog import farm_cache
from vstudio.catalog.farm_cache import FarmCache


def test_node_facts_are_kept_until_a_write_or_the_time_bound() -> None:
    cache = FarmCache()
    loads: list[int] = []

    def load(conn: Any) -> list[Any]:
        loads.append(cache.writes)
        return [f"facts {len(loads)}"]

    first = cache.nodes(None, load)  # type: ignore[arg-type]
    assert cache.nodes(None, load) is first and len(loads) == 1  # type: ignore[arg-type]
    cache.writes += 1  # a committed farm transaction
    assert cache.nodes(None, load) == ["facts 2"]  # type: ignore[arg-type]
    time.sleep(farm_cache.NODES_MAX_AGE + 0.05)
    assert cache.nodes(None, load) == ["facts 3"]  # type: ignore[arg-type]
    assert loads == [0, 1, 1]
