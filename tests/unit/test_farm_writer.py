"""The batching writer: one transaction per batch, a broken op isolated, errors kept apart."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from vstudio.catalog.farm_db import write_engine
from vstudio.catalog.farm_repo import refusal
from vstudio.errors import Conflict, NotFound
from vstudio.farm.writer import BatchWriter


def test_batches_isolate_failures(tmp_path: Path) -> None:
    engine = write_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as c:
        c.execute(sa.text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    committed: list[Any] = []
    gate = threading.Event()

    def claim(conn: Any, args: list[int]) -> tuple[list[Any], Any]:
        return [a * 10 for a in args], "batch"

    w = BatchWriter(engine.begin, {"claim": claim}, committed.extend, refusal)
    w.start()
    try:
        blocker = w.call(lambda c: gate.wait(5))  # holds the thread so the rest batch up

        def insert(k: str) -> Any:
            return lambda c: c.execute(sa.text("INSERT INTO t VALUES (:k)"), {"k": k}).rowcount

        def refuse(c: Any) -> None:
            raise NotFound("nothing here")

        futs = [w.call(insert("a")), w.call(refuse), w.call(insert("a")),
                w.group("claim", 1), w.group("claim", 2), w.call(insert("b"))]
        gate.set()
        assert blocker.result(5) is True
        assert futs[0].result(5) == 1
        with pytest.raises(NotFound):
            futs[1].result(5)
        with pytest.raises(Conflict):  # the duplicate, isolated from the batch
            futs[2].result(5)
        assert [futs[3].result(5), futs[4].result(5)] == [10, 20]
        assert futs[5].result(5) == 1
        with engine.connect() as c:
            assert sorted(r[0] for r in c.execute(sa.text("SELECT k FROM t"))) == ["a", "b"]
        assert "batch" in committed
    finally:
        w.stop()
        engine.dispose()


def test_async_callers_get_results_and_errors_per_batch(tmp_path: Path) -> None:
    import asyncio

    engine = write_engine(f"sqlite:///{tmp_path / 'w.db'}")

    def claim(conn: Any, args: list[int]) -> tuple[list[Any], Any]:
        return [NotFound(f"no {a}") if a % 7 == 0 else a * 10 for a in args], None

    w = BatchWriter(engine.begin, {"claim": claim}, lambda _: None, refusal)
    w.start()

    async def main() -> list[Any]:
        futs = [w.group_async("claim", i) for i in range(1, 200)]
        futs.append(w.call_async(lambda c: c.execute(sa.text("SELECT 41 + 1")).scalar()))
        return await asyncio.gather(*futs, return_exceptions=True)

    try:
        got = asyncio.run(main())
        assert got[-1] == 42
        for i, value in enumerate(got[:-1], start=1):
            if i % 7 == 0:
                assert isinstance(value, NotFound) and str(i) in str(value)
            else:
                assert value == i * 10
        assert w.batches < 199  # they were batched, not run one by one
    finally:
        w.stop()
        engine.dispose()
