"""The API's read cache: shared computations, never stale after a local write, errors
never kept."""

from __future__ import annotations

import asyncio

import pytest

from vstudio.api.read_cache import ReadCache
from vstudio.errors import NotFound


def test_concurrent_misses_share_one_computation_and_a_write_invalidates() -> None:
    calls: list[int] = []

    async def compute() -> bytes:
        calls.append(1)
        await asyncio.sleep(0.01)
        return f"v{len(calls)}".encode()

    async def scenario() -> None:
        cache = ReadCache(max_age=60)
        got = await asyncio.gather(*(cache.get("jobs", 1, compute) for _ in range(200)))
        assert set(got) == {b"v1"} and len(calls) == 1
        assert await cache.get("jobs", 1, compute) == b"v1"
        assert await cache.get("jobs", 2, compute) == b"v2"  # the writer committed since
        assert await cache.get("other", 2, compute) == b"v3"

    asyncio.run(scenario())


def test_entries_age_out_and_errors_are_not_kept() -> None:
    async def scenario() -> None:
        cache = ReadCache(max_age=0.05)
        n = 0

        async def compute() -> int:
            nonlocal n
            n += 1
            await asyncio.sleep(0.01)  # the other callers arrive meanwhile
            if n == 1:
                raise NotFound("no job 7")
            return n

        waiters = [cache.get("job", 0, compute) for _ in range(3)]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, NotFound) for r in results)
        assert await cache.get("job", 0, compute) == 2
        assert await cache.get("job", 0, compute) == 2
        await asyncio.sleep(0.06)
        assert await cache.get("job", 0, compute) == 3
        with pytest.raises(NotFound):
            await cache.get("gone", 0, _missing)

    asyncio.run(scenario())


async def _missing() -> int:
    raise NotFound("gone")
