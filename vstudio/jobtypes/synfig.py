"""``synfig`` tasks: times always carry the ``f`` suffix (a bare number means seconds)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from vstudio.jobtypes.base import Event, Invocation, TaskError, TaskSpec, resolve_file

FORMATS = {"png": ".png", "exr": ".exr", "jpeg": ".jpg", "jpg": ".jpg"}


def _size(value: object, what: str) -> int | None:
    if value in (None, "", 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 32768:
        raise TaskError(f"{what} must be a whole number of pixels from 1 to 32768")
    return value


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    sif = resolve_file(spec, task_dir / "files", str(p.get("file", "")), what="Synfig file")
    fmt = str(p.get("format") or "png").lower()
    if fmt not in FORMATS:
        raise TaskError(f"Synfig output format {fmt} is not one of {', '.join(FORMATS)}")
    if spec.frames != list(range(spec.start, spec.end + 1)):
        raise TaskError("Synfig renders contiguous frame ranges only; use a chunk without steps")
    if spec.start < 0:
        raise TaskError("Synfig frames start at 0")
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)  # synfig exits 0 without writing otherwise
    ext = FORMATS[fmt]
    outputs = {f: out_dir / f"frame.{f:04d}{ext}" for f in spec.frames}
    # One frame is written without a number: name that file exactly.
    target = outputs[spec.start] if len(spec.frames) == 1 else out_dir / f"frame{ext}"
    argv = [shutil.which("synfig") or "synfig", str(sif), "-t", fmt.replace("jpg", "jpeg"),
            "-o", str(target), "--sequence-separator", ".",
            "--start-time", f"{spec.start}f", "--end-time", f"{spec.end}f"]
    w, h = _size(p.get("width"), "width"), _size(p.get("height"), "height")
    if w:
        argv += ["-w", str(w)]
    if h:
        argv += ["-h", str(h)]
    return Invocation(argv=argv, cwd=sif.parent, outputs=outputs,
                      parser=SynfigParser(spec.frames), label="synfig",
                      names={f: o.name for f, o in outputs.items()})


_PROGRESS = re.compile(r"Frame\s+(\d+)\s+of\s+(\d+)\s*\((\d+)%\)")
_DONE = re.compile(r"[./](\d+)\.\w+:\s*DONE")
_ERROR = re.compile(r"\berror\b|Unable to|Can't|cannot", re.I)


class SynfigParser:
    """Reads ``path: Frame N of M (P%)`` (carriage-return separated) and ``path: DONE``."""

    def __init__(self, frames: list[int]) -> None:
        self.frames = frames

    def feed(self, line: str) -> Event:
        m = _PROGRESS.search(line)
        if m:
            # N counts frames of the range, not frame numbers; only the percent is reliable
            return Event(progress=float(m[3]), keep=False)
        if _DONE.search(line):
            return Event(progress=100.0)
        if " info: " in line or "LADSPA" in line or not line.strip():
            return Event(keep=False)
        if _ERROR.search(line):
            return Event(error=line.strip())
        return Event()
