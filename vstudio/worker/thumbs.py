"""Small thumbnails of rendered frames, made with ffmpeg (no image library in the worker)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp"}
WIDTH = 160


def thumbnail(src: Path, dest: Path, width: int = WIDTH) -> Path | None:
    """A JPEG at most ``width`` pixels wide, or None (no ffmpeg, not an image, failure)."""
    exe = shutil.which("ffmpeg")
    if not exe or src.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    argv = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
            "-vf", f"scale='min({width},iw)':-2", "-frames:v", "1", "-q:v", "5", str(dest)]
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return dest if proc.returncode == 0 and dest.is_file() else None
