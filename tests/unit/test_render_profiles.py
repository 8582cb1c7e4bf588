"""vstudio.toml profiles, per-file overrides and output paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstudio.errors import BadInput, UsageError
from vstudio.render.project import Project, find_root

TOML = """
[render]
chunk = 5
[profiles.draft]
resolution = 50
samples = 8
[profiles.final]
samples = 128
format = "mp4"
[files."shots/s1.blend"]
samples = 2
[files."shots/s1.blend".profiles.final]
samples = 512
"""


def project(tmp_path: Path, text: str = TOML) -> Project:
    (tmp_path / "vstudio.toml").write_text(text)
    return Project(tmp_path)


def test_profiles_merge_in_order(tmp_path: Path) -> None:
    p = project(tmp_path)
    assert p.profile("draft", "shots/s2.blend").settings == {
        "format": "png", "chunk": 5, "denoise": False, "resolution": 50, "samples": 8}
    assert p.profile("draft", "shots/s1.blend").settings["samples"] == 2
    assert p.profile("final", "shots/s1.blend").settings["samples"] == 512
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "s2.blend.toml").write_text("samples = 3\n[profiles.final]\n"
                                                      "format = \"png\"\n")
    assert p.profile("final", "shots/s2.blend").settings["samples"] == 3
    assert p.profile("final", "shots/s2.blend").format == "png"
    assert p.profile("default", "a.sif").key_settings() == {"denoise": False, "format": "png"}


def test_outputs_side_by_side(tmp_path: Path) -> None:
    p = project(tmp_path, TOML + '\n')
    default = p.profile(p.check_profile(None), "shots/s1.blend")
    final = p.profile(p.check_profile("final"), "shots/s1.blend")
    assert default.is_default and not final.is_default and final.format == "mp4"
    assert not p.renderchan
    named_default = project(tmp_path, '[render]\nprofile = "draft"\n[profiles.draft]\n')
    d = named_default.profile(named_default.check_profile(None), "x.sif")
    assert d.is_default
    (tmp_path / "shots").mkdir(exist_ok=True)
    (tmp_path / "shots" / "s1.blend").write_bytes(b"")
    exists = Path.is_file
    assert p.source_of_output(str(tmp_path / "render/shots/s1.blend.png/0001.png"),
                              exists) == "shots/s1.blend"
    assert p.source_of_output(str(tmp_path / "render/final/shots/s1.blend.mp4"),
                              exists) == "shots/s1.blend"
    assert p.source_of_output(str(tmp_path / "render/other.png"), exists) is None
    assert p.source_of_output(str(tmp_path / "textures/a.png"), exists) is None


@pytest.mark.parametrize("text, message", [
    ("[profiles.draft]\nsampels = 3\n", "unknown render setting 'sampels'"),
    ("[profiles.draft]\nsamples = \"many\"\n", "'samples' must be int"),
    ("[profiles.draft]\nsamples = true\n", "'samples' must be int"),
    ("[profiles.draft]\nformat = \"gif\"\n", "format must be one of"),
    ("[profiles.draft]\nresolution = -5\n", "must be positive"),
    ("[render\n", "is not valid TOML"),
])
def test_bad_settings_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        project(tmp_path, text).profile("draft", "a.sif")


def test_unknown_profile_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no profile 'nope'.*draft, final"):
        project(tmp_path).check_profile("nope")


def test_find_root(tmp_path: Path) -> None:
    (tmp_path / "vstudio.toml").write_text("")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_root(tmp_path / "a" / "b") == tmp_path
    assert find_root(tmp_path / "a" / "b" / "f.sif") == tmp_path


def test_find_root_falls_back_to_the_working_copy(tmp_path: Path) -> None:
    """No vstudio.toml or project.conf above: the working copy's root (.vstudio/wc.json), so
    a shot in shots/ and its texture in tex/ are one project; a RenderChan project.conf
    inside the working copy still roots its own project; outside any: the file's folder."""
    wc = tmp_path / "wc"
    (wc / ".vstudio").mkdir(parents=True)
    (wc / ".vstudio" / "wc.json").write_text("{}")
    (wc / "shots" / "sq1").mkdir(parents=True)
    assert find_root(wc / "shots" / "sq1" / "a.blend") == wc
    assert find_root(wc / "shots") == wc
    (wc / "episode" / "shots").mkdir(parents=True)
    (wc / "episode" / "project.conf").write_text("[draft]\nWIDTH=64\n")
    assert find_root(wc / "episode" / "shots" / "a.blend") == wc / "episode"
    (tmp_path / "loose").mkdir()
    assert find_root(tmp_path / "loose" / "a.blend") == tmp_path / "loose"
