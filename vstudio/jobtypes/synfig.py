"""``synfig`` tasks: times always carry the ``f`` suffix (a bare number means seconds)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from vstudio.jobtypes.base import (
    Event,
    Invocation,
    MissingInput,
    TaskError,
    TaskSpec,
    resolve_file,
)

FORMATS = {"png": ".png", "exr": ".exr", "jpeg": ".jpg", "jpg": ".jpg"}
# Synfig's target names (``-t exr`` names no target: Synfig then writes nothing, exit 0)
TARGETS = {"png": "png", "exr": "openexr", "jpeg": "jpeg", "jpg": "jpeg"}


def size_param(value: object, what: str) -> int | None:
    if value in (None, "", 0):
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 32768:
        raise TaskError(f"{what} must be a whole number of pixels from 1 to 32768")
    return value


def check_uses(sif: Path) -> None:
    """Refuse a scene whose imported images, sounds or external canvases are missing.

    Synfig renders a missing imported image as nothing, with exit code 0.
    """
    from xml.etree.ElementTree import ParseError

    from vstudio.render.model import Use
    from vstudio.render.scan_synfig import scan_sif
    from vstudio.render.scanners import installed_font

    try:
        missing = [r for r in scan_sif(sif) if isinstance(r, Use) and not r.exists
                   and not (r.kind == "font" and installed_font(Path(r.path).name))]
    except (ParseError, OSError, EOFError, ValueError) as e:
        raise TaskError(f"{sif.name} is not a readable Synfig file ({e})") from None
    if missing:
        names = ", ".join(sorted({Path(u.path).relative_to(sif.parent).as_posix()
                                  if Path(u.path).is_relative_to(sif.parent) else u.path
                                  for u in missing})[:5])
        raise MissingInput(f"missing input files of {sif.name}: {names}")


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    sif = resolve_file(spec, task_dir / "files", str(p.get("file", "")), what="Synfig file")
    check_uses(sif)
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
    argv = [shutil.which("synfig") or "synfig", str(sif), "-t", TARGETS[fmt],
            "-o", str(target), "--sequence-separator", ".",
            "--start-time", f"{spec.start}f", "--end-time", f"{spec.end}f"]
    w, h = size_param(p.get("width"), "width"), size_param(p.get("height"), "height")
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
