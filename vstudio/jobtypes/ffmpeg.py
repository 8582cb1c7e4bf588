"""``ffmpeg`` tasks: encode a frame sequence to MP4/WebM, or concatenate chunk videos.

Inputs come as fetched files (the render block's frames, named by the manager) or, on a
farm with a shared disk, as a local image2 pattern (``params.pattern``). Images are linked
into one numbered sequence in frame order, so any naming of the rendered frames works.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from vstudio.jobtypes.base import (
    Event,
    Invocation,
    TaskError,
    TaskSpec,
    local_path,
    progress_of,
    resolve_file,
    safe_relpath,
)

IMAGES = {".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp"}
VIDEOS = {".mp4", ".webm", ".mkv", ".mov"}
AUDIO = {".wav", ".flac", ".ogg", ".mp3", ".aac", ".m4a", ".opus"}
CODECS = {
    "h264": (".mp4", ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                      "-pix_fmt", "yuv420p", "-movflags", "+faststart"]),
    "vp9": (".webm", ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "33", "-deadline", "realtime",
                      "-cpu-used", "8", "-pix_fmt", "yuv420p"]),
}
AUDIO_CODEC = {"h264": ["-c:a", "aac", "-b:a", "160k"], "vp9": ["-c:a", "libopus", "-b:a", "128k"]}
# yuv420p needs even sizes; renders at odd sizes are cropped by one pixel at most
EVEN = "scale=trunc(iw/2)*2:trunc(ih/2)*2"
_NUM = re.compile(r"(\d+)(?=\D*$)")


def _frame_no(name: str) -> int:
    m = _NUM.search(Path(name).stem)
    return int(m[1]) if m else 0


def _output_name(spec: TaskSpec, ext: str) -> str:
    name = str(spec.params.get("output") or spec.params.get("output_name") or "video")
    name = Path(safe_relpath(name)).name
    if not name.lower().endswith(ext):
        name = Path(name).stem + ext
    return name


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    codec = str(p.get("codec") or "h264").lower()
    if codec not in CODECS:
        raise TaskError(f"codec {codec} is not one of {', '.join(CODECS)}")
    fps = p.get("fps") or 24
    if not isinstance(fps, int | float) or isinstance(fps, bool) or not 0 < fps <= 1000:
        raise TaskError("fps must be a number from 1 to 1000")
    ext, vargs = CODECS[codec]
    files = task_dir / "files"
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    fetched = _fetched(spec)
    videos = [f for f in fetched if Path(f).suffix.lower() in VIDEOS]
    images = [f for f in fetched if Path(f).suffix.lower() in IMAGES]
    audio = p.get("audio")
    audio_path = resolve_file(spec, files, str(audio), what="audio file") if audio else None
    exe = shutil.which("ffmpeg") or "ffmpeg"
    argv = [exe, "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
            "-progress", "pipe:1", "-nostats"]
    output = out_dir / _output_name(spec, ext)
    copy = bool(videos and (p.get("concat") or not images))
    if copy:  # chunks share codec and size: no re-encode
        listing = task_dir / "concat.txt"
        listing.write_text("".join(f"file '{(files / f).as_posix()}'\n" for f in videos))
        argv += ["-f", "concat", "-safe", "0", "-i", str(listing)]
        total = 0
    else:
        pattern, start, total = _sequence(spec, task_dir, files, images)
        argv += ["-framerate", str(fps), "-start_number", str(start), "-i", pattern,
                 "-frames:v", str(total)]
    if audio_path:
        argv += ["-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0", "-shortest",
                 *AUDIO_CODEC[codec]]
    if copy:
        argv += ["-c:v", "copy"] if audio_path else ["-c", "copy"]
    else:
        argv += ["-vf", EVEN, *vargs, "-r", str(fps)]
    argv.append(str(output))
    frame = spec.start
    return Invocation(argv=argv, cwd=task_dir, outputs={frame: output},
                      parser=FfmpegParser(total), label="ffmpeg", names={frame: output.name})


def _fetched(spec: TaskSpec) -> list[str]:
    """The fetched input files to encode, in frame order (none for a pattern)."""
    if spec.upstream:  # another block's outputs, in frame order
        ref = spec.params.get("block")
        return [rel for block, _, rel, _ in sorted(spec.upstream, key=lambda u: (u[1], u[2]))
                if ref in (None, block)]
    if spec.params.get("pattern"):
        return []
    return sorted(spec.inputs, key=lambda f: (_frame_no(f), f))  # frames uploaded with the job


def _sequence(spec: TaskSpec, task_dir: Path, files: Path,
              images: list[str]) -> tuple[str, int, int]:
    """The frames as one image2 pattern: (pattern, first frame number, frame count)."""
    seq = task_dir / "seq"
    seq.mkdir(exist_ok=True)
    if images:
        suffix = Path(images[0]).suffix.lower()
        for i, rel in enumerate(images):
            _link(files / rel, seq / f"{i:06d}{suffix}")
        return str(seq / f"%06d{suffix}"), 0, len(images)
    if not spec.params.get("pattern"):
        raise TaskError("the encode task has no input frames")
    # an image2 pattern among the job's inputs, or (shared disk) an absolute one
    raw = str(spec.params["pattern"])
    pattern = (str(local_path(spec, raw, "frame pattern")) if Path(raw).is_absolute()
               else str(files / safe_relpath(raw)))
    try:
        first = Path(pattern % spec.start)
    except (TypeError, ValueError):
        raise TaskError(f"pattern {raw!r} needs one %d-style frame number") from None
    if not first.is_file():
        raise TaskError(f"first frame {first.name} of pattern {raw} is missing")
    return pattern, spec.start, len(spec.frames)


def _link(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise TaskError(f"input frame {src.name} is missing")
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    os.symlink(src, dest)


class FfmpegParser:
    """Reads ``-progress pipe:1`` key=value lines; everything else is an error line."""

    def __init__(self, total_frames: int) -> None:
        self.total = total_frames

    def feed(self, line: str) -> Event:
        key, sep, value = line.strip().partition("=")
        if sep and key.replace("_", "").isalnum() and " " not in key:
            if key == "frame" and value.strip().isdigit() and self.total:
                return Event(progress=progress_of(int(value), 0, self.total), keep=False)
            if key == "progress" and value.strip() == "end":
                return Event(progress=100.0, keep=False)
            return Event(keep=False)
        return Event(error=line.strip() or None, keep=bool(line.strip()))
