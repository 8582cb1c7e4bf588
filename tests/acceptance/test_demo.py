"""``vstudio demo --once`` end to end: real server, two workers, Blender, ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import cli, need


def test_demo_once_prints_the_video_path_last(tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    need("ffmpeg", "apt-get install ffmpeg")
    d = tmp_path / "demo"
    p = cli("demo", "--dir", str(d), "--once", "--frames", "8", "--size", "64x36",
            "--samples", "2", timeout=300)
    video = Path(p.stdout.strip().splitlines()[-1])
    assert video.is_absolute() and video.is_file() and video.name == "demo.mp4"
    assert video.is_relative_to(d)
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                            "-show_entries", "stream=nb_read_frames,codec_name", "-of",
                            "csv=p=0", str(video)], capture_output=True, text=True)
    assert probe.stdout.strip() == "h264,8"
    assert "web page: http://127.0.0.1:" in p.stderr
    # everything was stopped: no server or worker of this demo is left running
    ps = subprocess.run(["pgrep", "-f", str(d / "studio")], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_demo_bad_size_is_usage_error(tmp_path: Path) -> None:
    p = cli("demo", "--dir", str(tmp_path / "d"), "--once", "--size", "big", check=False)
    assert p.returncode == 2 and "WxH" in p.stderr
