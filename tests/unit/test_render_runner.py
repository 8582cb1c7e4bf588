"""Task payloads for local chunks, and reads redirected to a named profile's renders."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.render_projects import write_sif
from vstudio.jobtypes.schema import validate_params
from vstudio.render.model import SceneInfo
from vstudio.render.project import Profile
from vstudio.render.runner import _remapped_sif, chunks, task_for


def test_remapped_sif_reads_the_profile_renders(tmp_path: Path) -> None:
    sif = write_sif(tmp_path / "edit.sif", "render/a.sif.png/0000.png")
    text = sif.read_text().replace("</canvas>", '<layer type="paste_canvas"><param '
                                   'name="canvas" use="render/x.sif#"/></layer></canvas>')
    sif.write_text(text)
    base = str(tmp_path / "render")
    copy = _remapped_sif(sif, [(f"{base}/a.sif.", f"{base}/draft/a.sif.")], "0")
    out = copy.read_text()
    assert copy.parent == sif.parent and copy.name.startswith(".")
    assert "<string>render/draft/a.sif.png/0000.png</string>" in out
    assert 'use="render/x.sif#"' in out  # not a render of a.sif: untouched
    assert sif.read_text() == text  # the source is never changed
    packed = tmp_path / "z.sifz"
    packed.write_bytes(gzip.compress(text.encode()))
    zcopy = _remapped_sif(packed, [(f"{base}/a.sif.", f"{base}/draft/a.sif.")], "1")
    assert b"render/draft/a.sif.png" in gzip.decompress(zcopy.read_bytes())


def test_task_params_pass_the_farm_schema(tmp_path: Path) -> None:
    profile = Profile("draft", {"resolution": 50, "samples": 8, "format": "png",
                                "chunk": 4, "denoise": False}, is_default=False)
    blend = task_for(tmp_path / "s.blend", "blender", None, profile, [1, 2])
    assert blend["params"]["resolution_percentage"] == 50 and blend["frames"] == [1, 2]
    validate_params("blender", blend["params"])
    scene = SceneInfo("synfig", 0, 9, 24.0, 480, 270)
    sif = task_for(tmp_path / "t.sif", "synfig", scene, profile, [0, 1])
    assert (sif["params"]["width"], sif["params"]["height"]) == (240, 135)
    validate_params("synfig", sif["params"])
    assert chunks(list(range(1, 8)), 3) == [[1, 2, 3], [4, 5, 6], [7]]
