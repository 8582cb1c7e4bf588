"""``upstream_paths``: validated at submit time, used by the worker to place upstream outputs."""

from __future__ import annotations

import pytest

from vstudio.errors import BadInput
from vstudio.jobtypes import TaskError, TaskSpec
from vstudio.jobtypes.base import inputs_to_fetch, upstream_path
from vstudio.jobtypes.schema import validate_params

OID = "a" * 64


def _task(where: dict[str, str] | None) -> dict[str, object]:
    params: dict[str, object] = {"file": "edit.blend"}
    if where is not None:
        params["upstream_paths"] = where
    return {"id": 7, "type": "blender", "params": params, "frames": [2, 3],
            "inputs": [{"path": "edit.blend", "oid": OID}],
            "upstream": [{"block": "shot", "frame": f, "name": f"frame_{f:06d}.png",
                          "oid": str(f) * 64} for f in (2, 3)]
                        + [{"block": "other", "frame": 2, "name": "x.png", "oid": "b" * 64}]}


@pytest.mark.parametrize("job_type", ["blender", "synfig"])
def test_templates_accepted(job_type: str) -> None:
    where = {"shot": "render/shots/s1.blend.png/{frame:04d}.png", "b-2.x": "in/{frame:d}_{name}",
             "vid": "render/a.mp4"}
    out = validate_params(job_type, {"file": "a", "upstream_paths": where})
    assert out["upstream_paths"] == where
    assert "upstream_paths" not in validate_params(job_type, {"file": "a"})


@pytest.mark.parametrize("template", [
    "/abs/{frame}.png", "../up/{frame}.png", "a/../../b", "a//b", "./a", "{frame.__class__}",
    "{frame[0]}", "{0}", "{}", "{frame!r}", "{name:>10}", "{frame:x}", "{frame:,}", "{frame:4d}",
    "{frame:04}", "a/{b}", "{frame", "a}", "x\x00y", ""])
def test_bad_templates_refused(template: str) -> None:
    with pytest.raises(BadInput, match="upstream_paths"):
        validate_params("blender", {"file": "a", "upstream_paths": {"shot": template}})


def test_bad_block_name_refused() -> None:
    with pytest.raises(BadInput, match="upstream_paths"):
        validate_params("synfig", {"file": "a", "upstream_paths": {"../x": "a/{frame}"}})
    with pytest.raises(BadInput, match="upstream_paths"):
        validate_params("ffmpeg", {"block": "a", "upstream_paths": {"a": "b"}})


def test_worker_places_upstream_where_the_file_reads_it() -> None:
    task = _task({"shot": "render/s1.blend.png/{frame:04d}.png"})
    fetch = dict(inputs_to_fetch(task))
    assert fetch["render/s1.blend.png/0002.png"] == "2" * 64
    assert fetch["render/s1.blend.png/0003.png"] == "3" * 64
    # a block without a template keeps the default place
    assert fetch[".upstream/other/000002_x.png"] == "b" * 64
    spec = TaskSpec.from_payload(task)
    assert spec.inputs["render/s1.blend.png/0003.png"] == "3" * 64
    assert ("shot", 2, "render/s1.blend.png/0002.png", "2" * 64) in spec.upstream


def test_without_templates_behaviour_is_unchanged() -> None:
    fetch = dict(inputs_to_fetch(_task(None)))
    assert sorted(fetch) == [".upstream/other/000002_x.png", ".upstream/shot/000002_frame_000002"
                             ".png", ".upstream/shot/000003_frame_000003.png", "edit.blend"]


def test_bad_payload_templates_refused_by_the_worker() -> None:
    # a payload that did not come through validation (older manager, hand-made) is checked
    for template in ("../{frame}.png", "{frame.real}", "{name}/../../x"):
        with pytest.raises((TaskError, BadInput)):
            inputs_to_fetch(_task({"shot": template}))
    # a name with a path in it cannot climb out: only its last part is used
    item = {"block": "shot", "frame": 1, "name": "../../etc/passwd", "oid": OID}
    assert upstream_path(item, {"shot": "up/{name}"}) == "up/passwd"
