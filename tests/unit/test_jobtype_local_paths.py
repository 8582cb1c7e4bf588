"""Absolute paths on the worker's disk are read only with the worker's opt-in, and such
blocks ask for workers that opted in."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from vstudio import jobtypes
from vstudio.farm.scheduler import BlockView, JobView, Snapshot, WorkerView, first_block
from vstudio.farm.spec import JobSpec, compile_job
from vstudio.jobtypes.base import LocalPathRefused, MissingInput
from vstudio.jobtypes.samples import make_sif
from vstudio.jobtypes.schema import LOCAL_PATHS_TAG, local_paths


def _task(type_: str, params: dict[str, Any], inputs: dict[str, bytes] | None = None,
          tmp: Path | None = None) -> dict[str, Any]:
    for rel, data in (inputs or {}).items():
        assert tmp is not None
        (tmp / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "files" / rel).write_bytes(data)
    return {"id": 1, "type": type_, "params": params, "frames": [1],
            "inputs": [{"path": r, "oid": "0" * 64} for r in inputs or {}]}


@pytest.mark.parametrize("type_", ["blender", "synfig", "krita", "gimp", "pencil2d"])
def test_absolute_file_refused_without_opt_in(tmp_path: Path, type_: str) -> None:
    secret = tmp_path / "home" / "private.file"
    secret.parent.mkdir()
    if type_ == "synfig":
        make_sif(secret, frames=2)
    elif type_ == "krita":
        with zipfile.ZipFile(secret, "w") as z:
            z.writestr("maindoc.xml", "<DOC><IMAGE width='4' height='4'><layers/></IMAGE></DOC>")
    elif type_ == "pencil2d":
        with zipfile.ZipFile(secret, "w") as z:
            z.writestr("main.xml", "<document><object/></document>")
    else:
        secret.write_bytes(b"the volunteer's own file")
    task = _task(type_, {"file": str(secret)})
    with pytest.raises(LocalPathRefused, match="--allow-local-paths"):
        jobtypes.build(task, tmp_path / "t")
    inv = jobtypes.build(task, tmp_path / "t", allow_local_paths=True)
    assert str(secret) in inv.argv


def test_ffmpeg_audio_and_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "f_0001.png").write_bytes(b"png")
    (tmp_path / "song.wav").write_bytes(b"wav")
    pattern = str(tmp_path / "frames" / "f_%04d.png")
    with pytest.raises(LocalPathRefused, match="frame pattern"):
        jobtypes.build(_task("ffmpeg", {"pattern": pattern}), tmp_path / "t1")
    assert pattern in jobtypes.build(_task("ffmpeg", {"pattern": pattern}), tmp_path / "t1",
                                     allow_local_paths=True).argv
    frames = {"f_0001.png": b"png"}
    t2 = tmp_path / "t2"
    with pytest.raises(LocalPathRefused, match="audio file"):
        jobtypes.build(_task("ffmpeg", {"pattern": "f_%04d.png", "audio": str(
            tmp_path / "song.wav")}, frames, t2), t2)
    # a relative name that is not among the inputs is never looked up in the worker's cwd
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingInput):
        jobtypes.build(_task("ffmpeg", {"pattern": "f_%04d.png", "audio": "song.wav"},
                             frames, t2), t2)


@pytest.mark.parametrize("params,want", [
    ({"file": "/srv/a.blend"}, ["/srv/a.blend"]), ({"file": "C:/proj/a.blend"},
                                                   ["C:/proj/a.blend"]),
    ({"file": "\\\\nas\\a.blend"}, ["\\\\nas\\a.blend"]), ({"file": "shots/a.blend"}, []),
    ({"pattern": "/mnt/f_%04d.png", "audio": "/mnt/a.wav"}, ["/mnt/a.wav", "/mnt/f_%04d.png"]),
])
def test_local_paths_found(params: dict[str, str], want: list[str]) -> None:
    assert sorted(local_paths(params)) == sorted(want)


def test_blocks_naming_local_paths_go_only_to_workers_that_opted_in() -> None:
    plans = compile_job(JobSpec.model_validate({"name": "j", "blocks": [
        {"name": "shared", "type": "blender", "params": {"file": "/srv/a.blend"},
         "frames": "1", "tags": ["gpu"]},
        {"name": "sent", "type": "blender", "params": {"file": "a.blend"}, "frames": "1"}]}))
    assert plans[0].tags == ["gpu", LOCAL_PATHS_TAG] and plans[1].tags == []
    blocks = [BlockView(i + 1, 1, i, "blender", frozenset(p.tags)) for i, p in enumerate(plans)]
    snap = Snapshot([JobView(1, "ann", 50, 0.0, blocks=blocks)])
    plain = WorkerView(1, tags=frozenset({"gpu"}))
    shared = WorkerView(2, tags=frozenset({"gpu", LOCAL_PATHS_TAG}))
    assert first_block(plain, snap) == blocks[1]
    assert first_block(plain, snap, exhausted={2}) is None
    assert first_block(shared, snap) == blocks[0]
    assert first_block(shared, snap, exhausted={1}) == blocks[1]
