"""Parsers read lines captured from the real programs (Blender 3.4.1, Synfig 1.5.1, ffmpeg)."""
# ruff: noqa: E501  (real output lines, kept whole)

from __future__ import annotations

from vstudio.jobtypes.blender import BlenderParser
from vstudio.jobtypes.ffmpeg import FfmpegParser
from vstudio.jobtypes.synfig import SynfigParser

# Blender 3.4.1, `blender -b a.blend -Y ... -s 1 -e 2 -a` (Cycles, 4 samples), abridged
BLENDER_34 = """Blender 3.4.1
Read blend: /tmp/w5/a.blend
Fra:1 Mem:8.58M (Peak 10.23M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube
Fra:1 Mem:9.46M (Peak 10.23M) | Time:00:00.03 | Mem:0.76M, Peak:0.76M | Scene, ViewLayer | Sample 0/4
Fra:1 Mem:9.54M (Peak 10.23M) | Time:00:00.03 | Remaining:00:00.00 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Sample 1/4
Fra:1 Mem:9.58M (Peak 10.23M) | Time:00:00.03 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Sample 4/4
Fra:1 Mem:9.58M (Peak 10.23M) | Time:00:00.03 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Finished
Saved: '/tmp/w5/out/f_0001.png'
 Time: 00:00.15 (Saving: 00:00.11)

Fra:2 Mem:8.83M (Peak 10.23M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | Scene, ViewLayer | Synchronizing object | Cube
Fra:2 Mem:9.58M (Peak 12.50M) | Time:00:00.03 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Sample 2/4
Fra:2 Mem:9.58M (Peak 12.50M) | Time:00:00.03 | Mem:0.84M, Peak:0.84M | Scene, ViewLayer | Finished
Saved: '/tmp/w5/out/f_0002.png'
 Time: 00:01.25 (Saving: 00:00.01)
Blender quit""".splitlines()


def test_blender_34_progress_saved_time_and_peak() -> None:
    p = BlenderParser([1, 2])
    events = [p.feed(line) for line in BLENDER_34]
    progress = [e.progress for e in events if e.progress is not None]
    assert progress == sorted(progress) and progress[-1] == 100.0
    assert progress[1] == 12.5  # sample 1/4 of frame 1 of 2
    saved = [(e.saved, e.seconds) for e in events if e.saved is not None]
    assert saved == [(1, None), (1, 0.15), (2, None), (2, 1.25)]
    peaks = [e.peak_mem for e in events if e.peak_mem]
    assert peaks == [int(10.23 * (1 << 20)), int(12.50 * (1 << 20))]
    # the hundreds of "Updating ..." lines are not sent to the log
    kept = [line for line, e in zip(BLENDER_34, events, strict=True) if e.keep]
    assert not any("Synchronizing" in line for line in kept)
    assert "Saved: '/tmp/w5/out/f_0001.png'" in kept


def test_blender_other_versions() -> None:
    # 2.7x tiles, 2.9x Eevee, 4.x with hours in Time and a Peak without parentheses
    p = BlenderParser([10])
    assert p.feed("Fra:10 Mem:15.00M (0.00M, Peak 30.00M) | Time:00:01.00 | Remaining:00:10.00 | "
                  "Mem:5.00M, Peak:5.00M | Scene, RenderLayer | Path Tracing Tile 8/16"
                  ).progress == 50.0
    assert p.feed("Fra:10 Mem:12.1M (Peak 20.4M) | Time:00:00.52 | Rendering 16 / 64 samples"
                  ).progress == 25.0
    assert p.feed("Fra:10 Mem:12.1M (Peak 20.4M) | Time:00:00.52 | Sample 32/128").progress == 25.0
    assert p.feed("Saved: \"/x/frame_0010.exr\"").saved == 10
    ev = p.feed(" Time: 01:02:03.50 (Saving: 00:00.40)")
    assert ev.saved == 10 and ev.seconds == 3723.5


def test_blender_errors_and_our_marker() -> None:
    p = BlenderParser([1])
    assert p.feed("vstudio: missing input files: //tex.png").error == \
        "missing input files: //tex.png"
    assert "Missing DNA block" in (p.feed(
        "Error: Failed to read blend file '/t/bad.blend': Missing DNA block").error or "")
    assert p.feed("Read blend: /t/a.blend").error is None


def test_synfig_carriage_return_progress_and_errors() -> None:
    p = SynfigParser([0, 1, 2, 3])
    ev = p.feed("out/frame.0004.png: Frame 6 of 24 (25%). Remaining time: 0s")
    assert ev.progress == 25.0 and not ev.keep
    assert p.feed("out/frame.0004.png: DONE").progress == 100.0
    assert not p.feed("synfig(15923) [00:13:19] info: Loading mod_png..").keep
    assert "linked file" in (p.feed(
        "synfig(17472) [00:15:01] error: Standard Exception:   * Can't find linked file "
        "\"#project.sif\"").error or "")


def test_ffmpeg_progress_pipe() -> None:
    p = FfmpegParser(8)
    assert p.feed("frame=2").progress == 25.0
    assert not p.feed("out_time_us=41748").keep
    assert p.feed("progress=end").progress == 100.0
    err = p.feed("[image2 @ 0x55] Could find no file with path 'seq/%06d.png'")
    assert err.error and err.keep
