"""Small thumbnails of rendered frames, made with ffmpeg (no image library in the worker).

All frames of a task go through one ffmpeg process (one input and one output per frame):
process start-up, not scaling, is what costs on small frames.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp"}
WIDTH = 160
BATCH = 64  # frames per ffmpeg process (argv length and open files stay small)


def png_width(path: Path) -> int | None:
    """Width from a PNG's IHDR chunk, without decoding the image."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big")


def thumbnails(sources: dict[int, Path], dest_dir: Path, width: int = WIDTH) -> dict[int, Path]:
    """Images at most ``width`` pixels wide, by frame; frames that failed are left out.

    A PNG no wider than ``width`` is its own thumbnail (same bytes, same store id).
    """
    made: dict[int, Path] = {}
    todo = {}
    for f, p in sources.items():
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        w = png_width(p) if p.suffix.lower() == ".png" else None
        if w is not None and w <= width:
            made[f] = p
        else:
            todo[f] = p
    exe = shutil.which("ffmpeg")
    if not exe or not todo:
        return made
    dest_dir.mkdir(parents=True, exist_ok=True)
    items = sorted(todo.items())
    for i in range(0, len(items), BATCH):
        batch = items[i:i + BATCH]
        argv = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        for _, src in batch:
            argv += ["-i", str(src)]
        for n, (frame, _) in enumerate(batch):
            argv += ["-map", f"{n}:v:0", "-vf", f"scale='min({width},iw)':-2",
                     "-frames:v", "1", "-q:v", "5", str(dest_dir / f"{frame}.jpg")]
        try:
            subprocess.run(argv, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for frame, _ in batch:
            out = dest_dir / f"{frame}.jpg"
            if out.is_file() and out.stat().st_size > 0:
                made[frame] = out
    return made
