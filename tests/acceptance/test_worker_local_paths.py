"""A job naming a file on the worker's own disk (``file=/abs/x``) runs only on workers
started with ``--allow-local-paths``; elsewhere the task fails saying so."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.test_worker_farm import Farm, farm  # noqa: F401 - the fixture
from tests.helpers import need, wait_for
from vstudio.jobtypes.samples import make_sif


def test_local_paths_need_the_workers_opt_in(farm: Farm, tmp_path: Path) -> None:  # noqa: F811
    need("synfig", "apt-get install synfig")
    sif = make_sif(tmp_path / "private" / "ball.sif", frames=2)
    block = {"name": "r", "type": "synfig", "frames": "0", "retries": 0,
             "params": {"file": str(sif), "width": 64, "height": 36}}
    farm.worker("plain")
    # a worker that claims the tag by hand but did not opt in still refuses
    farm.worker("tagged", "--tags", "local-paths")
    wait_for(lambda: "registered" in farm.log("plain") and "registered" in farm.log("tagged"),
             30, "the workers to register")
    job_id = farm.submit([block])
    job = farm.wait(job_id)
    (task,) = job["tasks"]
    assert job["status"] == "failed" and task["worker"] == "tagged"
    assert "path on the worker's own disk" in task["error"]
    assert "--allow-local-paths" in task["error"]
    assert farm.outputs(job_id) == []
    tagged = farm.workers.pop("tagged")
    tagged.terminate()
    assert tagged.wait(30) == 0
    farm.worker("shared", "--allow-local-paths")
    job_id = farm.submit([block])
    job = farm.wait(job_id)
    assert job["status"] == "done" and job["tasks"][0]["worker"] == "shared"
    assert [o["name"] for o in farm.outputs(job_id)] == ["frame.0000.png"]
    workers = {w["name"]: w for w in farm.call("GET", "/api/workers")}
    assert "local-paths" in workers["shared"]["tags"]
    assert "local-paths" not in workers["plain"]["tags"]
