"""The farm's pure logic: frames, job specs, statuses and the scheduler's ranking."""

from __future__ import annotations

import pytest

from vstudio.errors import BadInput
from vstudio.farm.frames import chunk, format_frames, parse_frames
from vstudio.farm.model import after_failure, job_status
from vstudio.farm.scheduler import (
    BlockView,
    JobView,
    Snapshot,
    WorkerView,
    block_fits,
    first_block,
    job_open,
    takes_work,
)
from vstudio.farm.spec import JobSpec, compile_job
from vstudio.jobtypes.schema import validate_params


def test_frames_forms() -> None:
    assert parse_frames("1-5") == [1, 2, 3, 4, 5]
    assert parse_frames("1-10x3") == [1, 4, 7, 10]
    assert parse_frames("1,5,10-12") == [1, 5, 10, 11, 12]
    assert parse_frames("3, 1 ,2") == [1, 2, 3]
    assert parse_frames("-2-1") == [-2, -1, 0, 1]
    assert chunk(list(range(1, 8)), 3) == [[1, 2, 3], [4, 5, 6], [7]]
    assert format_frames([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8"


@pytest.mark.parametrize("bad", ["", "a-b", "5-1", "1-10x0", "1--", "1-2000000000",
                                 "0-2000000", ","])
def test_bad_frames_are_refused(bad: str) -> None:
    with pytest.raises(BadInput):
        parse_frames(bad)


def _spec(**kw: object) -> JobSpec:
    return JobSpec.model_validate({"name": "j", **kw})


def test_compile_chunks_and_frame_dependency() -> None:
    plans = compile_job(_spec(blocks=[
        {"name": "render", "type": "blender", "params": {"file": "a.blend"}, "frames": "1-10",
         "chunk": 4},
        {"name": "encode", "type": "ffmpeg", "params": {"block": "render"}}]))
    assert plans[0].tasks == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert plans[1].tasks == [list(range(1, 11))]  # one video of the whole range
    assert plans[1].depends == [(0, "frame")]


@pytest.mark.parametrize("blocks, message", [
    ([{"name": "a", "type": "command", "params": {"argv": ["x"]}, "frames": "1",
       "depends_on": [{"block": "a"}]}], "itself"),
    ([{"name": "a", "type": "command", "params": {"argv": ["x"]}, "frames": "1",
       "depends_on": [{"block": "b"}]},
      {"name": "b", "type": "command", "params": {"argv": ["x"]}, "frames": "1",
       "depends_on": [{"block": "a"}]}], "cycle"),
    ([{"name": "a", "type": "command", "params": {"argv": ["x"]}}], "needs frames"),
    ([{"name": "e", "type": "ffmpeg", "params": {"block": "nope"}}], "not in the job"),
    ([{"name": "a", "type": "blender", "params": {"file": "x", "sampels": 4}, "frames": "1"}],
     "sampels"),
    ([{"name": "a", "type": "command", "params": {"argv": ["x"]}, "frames": "1"},
      {"name": "a", "type": "command", "params": {"argv": ["x"]}, "frames": "1"}], "two blocks"),
])
def test_compile_refuses_bad_jobs(blocks: list[dict[str, object]], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        compile_job(_spec(blocks=blocks))


def test_params_are_typed() -> None:
    assert validate_params("blender", {"file": "a.blend", "resolution": [64, 36]})["format"] \
        == "PNG"
    with pytest.raises(BadInput):
        validate_params("blender", {"file": "a.blend", "format": "GIF"})
    with pytest.raises(BadInput):
        validate_params("ffmpeg", {"block": "r", "pattern": "x_%04d.png"})
    with pytest.raises(BadInput):
        validate_params("command", {"argv": ["a\x00b"]})


def test_job_status_is_derived() -> None:
    assert job_status("active", {"queued": 3}) == "queued"
    assert job_status("active", {"queued": 3, "running": 1}) == "running"
    assert job_status("active", {"queued": 2, "done": 1}) == "running"
    assert job_status("done", {"done": 4}) == "done"
    assert job_status("active", {"done": 3, "failed": 1}) == "failed"
    assert job_status("paused", {"queued": 3}) == "paused"
    assert job_status("canceled", {"canceled": 3}) == "canceled"
    assert job_status("waiting", {"queued": 1}) == "queued"


def test_retries() -> None:
    assert after_failure(1, 2).value == "queued"
    assert after_failure(3, 2).value == "failed"
    assert after_failure(1, 0).value == "failed"


def rank(worker: WorkerView, snapshot: Snapshot) -> list[BlockView]:
    """The scheduler's order written plainly (sort the jobs, list their fitting blocks):
    the oracle that the one-pass ``first_block`` must agree with."""
    if not takes_work(worker, snapshot):
        return []
    banned = snapshot.blocklist.get(worker.id, set())
    jobs = [j for j in snapshot.jobs if j.id not in banned and job_open(j)]
    jobs.sort(key=lambda j: (-j.priority, snapshot.owner_running.get(j.owner, 0),
                             j.created, j.id))
    return [b for job in jobs for b in sorted(job.blocks, key=lambda b: b.index)
            if block_fits(worker, b, snapshot)]


def _block(bid: int, job: int, type_: str = "blender", tags: frozenset[str] = frozenset(),
           mpw: int | None = None, index: int = 0) -> BlockView:
    return BlockView(bid, job, index, type_, tags, mpw)


def test_priority_then_fair_share_then_age() -> None:
    jobs = [JobView(1, "ann", 50, created=1.0, blocks=[_block(11, 1)]),
            JobView(2, "bob", 50, created=2.0, blocks=[_block(21, 2)]),
            JobView(3, "cat", 90, created=3.0, blocks=[_block(31, 3)])]
    snap = Snapshot(jobs, owner_running={"ann": 5, "bob": 1})
    w = WorkerView(1)
    assert [b.id for b in rank(w, snap)] == [31, 21, 11]  # priority, then bob runs fewer
    snap.owner_running = {"ann": 0, "bob": 0}
    assert [b.id for b in rank(w, snap)] == [31, 11, 21]  # equal share: older first


def test_fair_share_alternates_within_a_batch() -> None:
    jobs = [JobView(1, "ann", 50, 1.0, blocks=[_block(11, 1)]),
            JobView(2, "bob", 50, 2.0, blocks=[_block(21, 2)])]
    snap = Snapshot(jobs)
    got = []
    for wid in range(1, 7):
        b = first_block(WorkerView(wid), snap)
        assert b is not None
        snap.claimed(wid, b)
        got.append(b.job_id)
    assert got == [1, 2, 1, 2, 1, 2]


def test_eligibility_type_tags_blocklist_limits() -> None:
    jobs = [JobView(1, "ann", 50, 1.0, max_running=1, running=1, blocks=[_block(11, 1)]),
            JobView(2, "ann", 50, 2.0, blocks=[_block(21, 2, tags=frozenset({"gpu"}))]),
            JobView(3, "ann", 50, 3.0, blocks=[_block(31, 3, type_="command")]),
            JobView(4, "ann", 50, 4.0, blocks=[_block(41, 4, mpw=1)]),
            JobView(5, "ann", 50, 5.0, blocks=[_block(51, 5, type_="synfig")])]
    snap = Snapshot(jobs, worker_block_running={(1, 41): 1}, blocklist={1: {5}})
    assert rank(WorkerView(1), snap) == []  # max running, tags, command, per worker, blocklist
    gpu = WorkerView(2, tags=frozenset({"gpu", "big"}), allow_commands=True,
                     job_types=frozenset({"blender", "command"}))
    assert [b.id for b in rank(gpu, snap)] == [21, 31, 41]
    assert rank(WorkerView(3, job_types=frozenset({"synfig"})), snap)[0].id == 51
    assert rank(WorkerView(4, draining=True), snap) == []
    assert rank(WorkerView(4, enabled=False), snap) == []
    assert rank(WorkerView(4, slots=2, running=2), snap) == []
    assert first_block(WorkerView(4), snap, exhausted=[41]) is not None


def test_first_block_agrees_with_rank() -> None:
    import random

    rnd = random.Random(7)
    for _ in range(200):
        jobs = [JobView(j, rnd.choice("abc"), rnd.choice([10, 50, 50, 90]), rnd.random(),
                        max_running=rnd.choice([None, 1, 3]), running=rnd.randint(0, 3),
                        blocks=[_block(j * 10 + k, j, rnd.choice(["blender", "synfig"]),
                                       index=k) for k in range(rnd.randint(1, 3))])
                for j in range(1, 8)]
        snap = Snapshot(jobs, owner_running={o: rnd.randint(0, 5) for o in "abc"},
                        blocklist={1: {rnd.randint(1, 7)}})
        w = WorkerView(1, job_types=frozenset(rnd.sample(["blender", "synfig"], 1)))
        gone = {b.id for j in jobs for b in j.blocks if rnd.random() < 0.2}
        ranked = [b for b in rank(w, snap) if b.id not in gone]
        assert first_block(w, snap, gone) == (ranked[0] if ranked else None)
