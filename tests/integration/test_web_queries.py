"""The web page's catalog queries on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vstudio.catalog import farm_jobs as jobs_sql
from vstudio.catalog import web_queries as wq
from vstudio.catalog.accounts import Role, User
from vstudio.catalog.db import open_catalog
from vstudio.catalog.farm_cache import FarmCache
from vstudio.catalog.farm_repo import SqlFarmReads
from vstudio.catalog.farm_submit import insert_jobs
from vstudio.catalog.farm_tables import farm_blocklist, farm_jobs, farm_outputs, farm_tasks
from vstudio.farm.condition import SHOWN
from vstudio.farm.ports import NewJob
from vstudio.farm.spec import JobSpec, compile_job, job_plan


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (f"sqlite:///{tmp_path / 'c.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    eng = open_catalog(url)
    try:
        yield eng
    finally:
        eng.dispose()


def _job(conn: sa.Connection, name: str, frames: str, chunk: int, owner: str = "ann") -> int:
    spec = JobSpec.model_validate({"name": name, "blocks": [
        {"name": "r", "type": "command", "params": {"argv": ["true"]}, "frames": frames,
         "chunk": chunk}]})
    return _insert(conn, spec, owner, time.time())


def _insert(conn: sa.Connection, spec: JobSpec, owner: str, now: float) -> int:
    user = User(1, owner, Role.ARTIST)
    [jid] = insert_jobs(conn, [NewJob(user, job_plan(spec), compile_job(spec), [], now)])
    assert isinstance(jid, int), jid
    return jid


def test_frame_counts_count_stepped_chunks_exactly(engine: Engine) -> None:
    with engine.begin() as conn:
        a = _job(conn, "stepped", "1-100x5", 3)  # 20 frames in chunks of 3: 7 tasks
        b = _job(conn, "plain", "1-10", 10)
        first = conn.execute(sa.select(farm_tasks.c.id).where(farm_tasks.c.job_id == a)
                             .order_by(farm_tasks.c.idx)).scalars().all()
        conn.execute(farm_tasks.update().where(farm_tasks.c.id == first[0])
                     .values(status="done", progress=100.0))
        conn.execute(farm_tasks.update().where(farm_tasks.c.id == first[1])
                     .values(status="running", progress=50.0))
    with engine.connect() as conn:
        fc = wq.frame_counts(conn, [a, b, 999])
    assert (fc[a].done, fc[a].total) == (3, 20)
    assert fc[a].running_done == pytest.approx(1.5)
    assert (fc[b].done, fc[b].total) == (0, 10)
    assert (fc[999].done, fc[999].total) == (0, 0)


def test_task_cells_heads_counts_and_outputs(engine: Engine) -> None:
    with engine.begin() as conn:
        a = _job(conn, "<script>x</script>", "1-50", 10, owner="bob")
        _job(conn, "other", "1-5", 1)
        wid = jobs_sql.register_worker(conn, "node", "bob", 1, [], ["command"], True, False,
                                       time.time())
        tid = conn.execute(sa.select(farm_tasks.c.id).where(farm_tasks.c.job_id == a)
                           .order_by(farm_tasks.c.idx).limit(1)).scalar_one()
        conn.execute(farm_tasks.update().where(farm_tasks.c.id == tid).values(
            status="running", worker_id=wid, progress=25.0))
        block = conn.execute(sa.select(farm_tasks.c.block_id)
                             .where(farm_tasks.c.id == tid)).scalar_one()
        conn.execute(farm_outputs.insert().values(task_id=tid, job_id=a, block_id=block,
                                                  frame=1, name="f.png", oid="a" * 64,
                                                  thumbnail_oid="b" * 64, seconds=1.5))
        conn.execute(farm_blocklist.insert().values(job_id=a, worker_id=wid, failures=5,
                                                    last_error="boom"))
    with engine.connect() as conn:
        cells = wq.task_cells(conn, a)
        assert [c.first for c in cells] == [1, 11, 21, 31, 41]
        assert cells[0].worker == "node" and cells[0].status == "running"
        assert cells[1].worker is None and cells[0].span == 10
        assert [c.id for c in wq.task_cells(conn, a, [cells[2].id])] == [cells[2].id]
        heads = {h.id: h for h in wq.job_heads(conn)}
        assert heads[a].name == "<script>x</script>" and heads[a].owner == "bob"
        assert [h.id for h in wq.job_heads(conn, owner="bob")] == [a]
        assert wq.task_status_counts(conn, [a])[a] == {"running": 1, "queued": 4}
        assert wq.output_name(conn, a, "a" * 64) == "f.png"
        assert wq.output_name(conn, a, "b" * 64) == "thumbnail.png"
        assert wq.output_name(conn, a + 1, "a" * 64) is None
        assert wq.running_tasks(conn)[tid][:2] == (a, "<script>x</script>")
        assert wq.blocklists(conn)[wid] == [(a, "<script>x</script>", 5, "bob", None)]
        assert wq.worker_failures(conn)[wid] == 5
        assert wq.queue_counts(conn)["queued"] == 9


def test_samples_one_row_per_period_and_old_ones_pruned(engine: Engine) -> None:
    now = int(time.time())
    with engine.begin() as conn:
        assert wq.add_sample(conn, now - 8 * 86400, 1, 1, 0, 0, 0)
    with engine.begin() as conn:
        assert wq.add_sample(conn, now - 60, 2, 1, 0, 5, 1)
        assert not wq.add_sample(conn, now - 60, 9, 9, 9, 9, 9)  # another replica, same minute
        assert wq.add_sample(conn, now, 3, 0, 1, 4, 2)
    with engine.connect() as conn:
        rows = wq.samples(conn, now - 30 * 86400)
    assert rows == [(now - 60, 2, 1, 0, 5, 1), (now, 3, 0, 1, 4, 2)]


def test_job_page_grid_is_bounded_and_task_list_paged(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from vstudio.web import jobs_pages as jp

    eng = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with eng.begin() as conn:
            job = _job(conn, "big", "1-300", 1)
        monkeypatch.setattr(jp, "GRID_MAX", 120)
        with eng.connect() as conn:
            data = jp._load_job(SqlFarmReads(conn, FarmCache(), SHOWN), job, tpage=3)
    finally:
        eng.dispose()
    block = data["blocks"][0]
    assert block["ntasks"] == 300 and block["hidden"] == 180
    assert str(block["grid"]).count("<i ") == 120
    assert data["ntasks"] == 300
    assert [t["frames"] for t in data["task_rows"]][:2] == ["201", "202"]
    assert len(data["task_rows"]) == jp.TASKS_PER_PAGE


def test_frames_of_a_shot_with_its_encode_count_once(engine: Engine) -> None:
    # The encode block names the same 48 frames again: the page shows 48, not 96.
    spec = JobSpec.model_validate({"name": "shot", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]}, "frames": "1-48",
         "chunk": 12},
        {"name": "encode", "type": "ffmpeg", "params": {"block": "render"}, "frames": "1-48",
         "chunk": 48, "depends_on": [{"block": "render", "mode": "frame"}]}]})
    enc = JobSpec.model_validate({"name": "encode only", "blocks": [
        {"name": "encode", "type": "ffmpeg", "params": {"pattern": "f_%04d.png"},
         "frames": "1-10", "chunk": 10}]})
    with engine.begin() as conn:
        now = time.time()
        a = _insert(conn, spec, "ann", now)
        b = _insert(conn, enc, "ann", now)
        conn.execute(farm_tasks.update().where((farm_tasks.c.job_id == a)
                                               & (farm_tasks.c.idx == 0)
                                               & (farm_tasks.c.status == "queued"))
                     .values(status="done"))
    with engine.connect() as conn:
        fc = wq.frame_counts(conn, [a, b])
    assert (fc[a].rendered, fc[a].to_render) == (12, 48)
    assert fc[a].total == 96  # progress still weighs the encode's work
    assert (fc[b].rendered, fc[b].to_render) == (0, 10)


def test_a_paused_jobs_waiting_tasks_are_not_counted_as_queued(engine: Engine) -> None:
    with engine.begin() as conn:
        a = _job(conn, "paused one", "1-16", 1)
        _job(conn, "active one", "1-3", 1)
        jobs_sql.pause(conn, a)
    with engine.connect() as conn:
        q = wq.queue_counts(conn)
    assert q.get("queued") == 3 and q.get("paused") == 16


def test_work_by_owner_and_recent_task_times(engine: Engine) -> None:
    with engine.begin() as conn:
        a = _job(conn, "a", "1-4", 1, owner="ann")
        b = _job(conn, "b", "1-2", 1, owner="bob")
        c = _job(conn, "c", "1-5", 1, owner="bob")
        jobs_sql.pause(conn, c)
        first = conn.execute(sa.select(farm_tasks.c.id).where(farm_tasks.c.job_id == a)
                             .order_by(farm_tasks.c.idx)).scalars().all()
        conn.execute(farm_tasks.update().where(farm_tasks.c.id == first[0])
                     .values(status="running", started=time.time()))
        conn.execute(farm_tasks.update().where(farm_tasks.c.id == first[1])
                     .values(status="done", started=100.0, finished=107.5))
        conn.execute(farm_tasks.update().where(farm_tasks.c.job_id == b)
                     .values(status="done", started=200.0, finished=202.0))
    with engine.connect() as conn:
        rows = wq.work_by_owner(conn)
        times = sorted(wq.recent_task_seconds(conn))
    # ann: 1 running, 2 waiting; bob's b is done and c is paused (waits for a person)
    assert rows == [(None, "ann", 1, 2)]
    assert times == [2.0, 2.0, 7.5]


def test_list_sorted_by_row_columns_matches_a_plain_sort_of_full_rows(engine: Engine) -> None:
    """The jobs list's sorts by progress, frames, elapsed and time left give the order of a
    plain Python sort over every job's full row (judged afresh, counted by id)."""
    from vstudio.farm.condition import SHOWN as rules
    from vstudio.web.job_rows import job_rows
    from vstudio.web.jobs_list import ROW_SORTS, ListArgs, _page

    now = time.time()
    with engine.begin() as conn:
        ids = [_job(conn, f"j{i}", f"1-{4 + 3 * (i % 5)}", 1 + i % 3) for i in range(14)]
        for i, jid in enumerate(ids):
            tasks = conn.execute(sa.select(farm_tasks.c.id).where(farm_tasks.c.job_id == jid)
                                 .order_by(farm_tasks.c.idx)).scalars().all()
            if i % 4 == 0:
                continue  # never started
            done = tasks[: i % len(tasks)]
            conn.execute(farm_tasks.update().where(farm_tasks.c.id.in_(done)).values(
                status="done", progress=100.0, started=now - 50 - i, finished=now - i))
            if len(done) < len(tasks):
                conn.execute(farm_tasks.update().where(farm_tasks.c.id == tasks[len(done)])
                             .values(status="running", progress=7.0 * i, started=now - 9))
            conn.execute(farm_jobs.update().where(farm_jobs.c.id == jid)
                         .values(started=now - 60 - 7 * i,
                                 state="paused" if i % 7 == 3 else "active"))
    with engine.connect() as conn:
        reads = SqlFarmReads(conn, FarmCache(), rules)
        heads = reads.job_heads()
        plain = job_rows(reads, heads)  # counts, frames and conditions of these ids alone
        for sort, key in ROW_SORTS.items():
            rows, total, _ = _page(reads, heads, ListArgs(sort=sort))
            assert total == len(ids)
            assert [r.id for r in rows] == [r.id for r in sorted(plain, key=key)], sort
        # Asked for 900 ids or more, the counts come from one scan of every task: the same.
        many = ids + list(range(10**9, 10**9 + 900))
        assert {j: wq.frame_counts(conn, many)[j] for j in ids} == wq.frame_counts(conn, ids)
        assert wq.frame_counts(conn, many)[10**9].total == 0
