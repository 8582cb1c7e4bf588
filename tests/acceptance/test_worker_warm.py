"""The warm Blender session of a render node, on a real farm with real Blender."""

from __future__ import annotations

import os
import re
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance import test_worker_farm as wf
from tests.acceptance.test_worker_farm import Farm
from tests.helpers import need, wait_for
from vstudio.jobtypes.samples import make_blend

farm = wf.farm  # the same real server, studio and worker processes

_PID = re.compile(r"warm blender session pid (\d+), task (\d+) of the session, (.+)$")


@pytest.fixture(scope="module")
def blend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("blender", "apt-get install blender")
    return make_blend(tmp_path_factory.mktemp("warm") / "a.blend", frames=12)


def _sessions(farm: Farm, job_id: int) -> list[tuple[int, int, str]]:
    """(pid, task number in the session, what happened to the file) for each task."""
    out = []
    for t in sorted(farm.job(job_id)["tasks"], key=lambda t: t["frames"][0]):
        lines = [x["line"] for x in farm.call("GET", f"/api/tasks/{t['id']}/log")["lines"]]
        hits = [m for x in lines if (m := _PID.search(x))]
        assert hits, lines
        out.append((int(hits[-1][1]), int(hits[-1][2]), hits[-1][3]))
    return out


def _pixels(png: bytes) -> bytes:
    """The image data of a PNG: its IHDR and IDAT chunks."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = b"", 8
    while i < len(png):
        n, kind = struct.unpack(">I4s", png[i:i + 8])
        if kind in (b"IHDR", b"IDAT"):
            out += png[i + 8:i + 8 + n]
        i += 12 + n
    assert len(out) > 13
    return out


def _outputs(farm: Farm, job_id: int) -> dict[int, str]:
    return {o["frame"]: o["oid"] for o in farm.outputs(job_id)}


def _submit(farm: Farm, blend: Path, frames: str = "1-12", chunk: int = 3,
            **params: Any) -> int:
    return farm.submit([{"type": "blender", "frames": frames, "chunk": chunk, "retries": 0,
                         "params": {"file": "a.blend", **params}}], {"a.blend": blend})


def test_chunks_reuse_one_blender_and_match_the_command_path(farm: Farm, blend: Path) -> None:
    w1 = farm.worker("w1")
    job = _submit(farm, blend, frames="1-8", chunk=2)
    assert farm.wait(job)["status"] == "done"
    used = _sessions(farm, job)
    assert len(used) == 4 and len({pid for pid, _, _ in used}) == 1, used
    used.sort(key=lambda u: u[1])  # in the order the session rendered them
    assert [n for _, n, _ in used] == [1, 2, 3, 4]
    assert [how for _, _, how in used] == ["opening the file"] + ["file already open"] * 3
    warm = _outputs(farm, job)
    w1.terminate()
    w1.wait(20)
    # the same frames from a fresh blender per task: same files, byte for byte
    farm.worker("w2", "--no-warm-blender")
    cold_job = _submit(farm, blend, frames="1-8", chunk=2)
    assert farm.wait(cold_job)["status"] == "done"
    cold = _outputs(farm, cold_job)
    assert sorted(cold) == sorted(warm) == list(range(1, 9))
    # PNG text chunks hold the date, render time and file path; the pixels must be the same
    from vstudio.studio import Studio

    s = Studio.open(farm.studio)
    try:
        for f in warm:
            a, b = s.store.get_bytes(warm[f]), s.store.get_bytes(cold[f])
            assert _pixels(a) == _pixels(b) and abs(len(a) - len(b)) < 64, f
    finally:
        s.close()
    logs = [x["line"] for t in farm.job(cold_job)["tasks"]
            for x in farm.call("GET", f"/api/tasks/{t['id']}/log")["lines"]]
    assert not any("warm blender session" in x for x in logs)


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _running_pid(farm: Farm, job_id: int) -> int:
    def check() -> int | None:
        for t in farm.job(job_id)["tasks"]:
            if t["status"] == "running" and t["progress"] > 0:
                lines = farm.call("GET", f"/api/tasks/{t['id']}/log")["lines"]
                for x in lines:
                    if m := _PID.search(x["line"]):
                        return int(m[1])
        return None

    return int(wait_for(check, 60, "a warm render to be running"))


def test_cancel_kills_the_session_and_the_next_task_works(farm: Farm, blend: Path) -> None:
    farm.worker("w1")
    slow = _submit(farm, blend, frames="1-6", chunk=6, samples=2000)
    pid = _running_pid(farm, slow)
    farm.call("POST", f"/api/jobs/{slow}/cancel")
    wait_for(lambda: _gone(pid), 15, "the warm blender to be killed")
    assert farm.job(slow)["status"] == "canceled"
    nxt = _submit(farm, blend, frames="1-2", chunk=2)
    assert farm.wait(nxt)["status"] == "done"
    ((new_pid, n, how),) = _sessions(farm, nxt)
    assert new_pid != pid and n == 1 and how == "opening the file"
    assert sorted(_outputs(farm, nxt)) == [1, 2]


def test_corrupt_blend_fails_clearly_and_the_session_recovers(farm: Farm, blend: Path,
                                                              tmp_path: Path) -> None:
    bad = tmp_path / "bad.blend"
    bad.write_bytes(blend.read_bytes()[:4000])
    farm.worker("w1")
    good = _submit(farm, blend, frames="1", chunk=1)
    assert farm.wait(good)["status"] == "done"
    corrupt = farm.submit([{"type": "blender", "frames": "1", "retries": 0,
                            "params": {"file": "bad.blend"}}], {"bad.blend": bad})
    j = farm.wait(corrupt)
    assert j["status"] == "failed"
    assert "Failed to read blend file" in j["tasks"][0]["error"]
    assert "exited with code 1" in j["tasks"][0]["error"]
    again = _submit(farm, blend, frames="2", chunk=1)
    assert farm.wait(again)["status"] == "done"
    (first,), (second,) = _sessions(farm, good), _sessions(farm, again)
    assert first[0] == second[0]  # the same Blender, which opened the good file again
    assert second[1:] == (3, "opening the file")
    assert sorted(_outputs(farm, again)) == [2]


def test_a_session_that_dies_falls_back_to_a_fresh_blender(farm: Farm, blend: Path) -> None:
    farm.worker("w1")
    # long enough to be caught running (a warm Blender renders a short chunk in a blink)
    job = _submit(farm, blend, frames="1-6", chunk=6, samples=2000)
    pid = _running_pid(farm, job)
    os.kill(pid, signal.SIGKILL)  # not a cancel: the session crashed
    j = farm.wait(job, 180)
    assert j["status"] == "done", j
    lines = [x["line"] for x in farm.call("GET", f"/api/tasks/{j['tasks'][0]['id']}/log")["lines"]]
    assert any("rendering with a fresh blender process" in x for x in lines), lines
    assert j["tasks"][0]["attempt"] == 1  # the same attempt: the worker did not give it up
    assert sorted(_outputs(farm, job)) == [1, 2, 3, 4, 5, 6]
    time.sleep(0.5)
    assert "internal error" not in farm.log("w1")
