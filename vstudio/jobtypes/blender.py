"""``blender`` tasks: argv for a frame chunk, and a parser of Blender 2.8-4.x output.

Blender processes its arguments in order, so the settings script (``--python-expr``)
comes after the file and before ``-a``/``-f``, and ``--python-exit-code`` before the script.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from vstudio.jobtypes.base import (
    Event,
    Invocation,
    TaskError,
    TaskSpec,
    contiguous,
    progress_of,
    resolve_file,
)

FORMATS = {"PNG": ".png", "OPEN_EXR": ".exr", "JPEG": ".jpg"}
ENGINES = {"CYCLES", "BLENDER_EEVEE", "BLENDER_EEVEE_NEXT", "BLENDER_WORKBENCH"}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
PAD = 6

# Runs inside Blender before rendering. It refuses missing images, libraries, sounds and
# clips (Blender itself renders them magenta/empty and exits 0), turns denoising off
# (Debian builds have no OpenImageDenoise) and applies the typed settings. The marker is
# built at run time so that Blender's echo of a failed script is never mistaken for it.
_SCRIPT = r"""
import bpy, json, os
s = json.loads(__SETTINGS__)
sc = bpy.context.scene
def _missing():
    out = []
    for coll in (bpy.data.images, bpy.data.sounds, bpy.data.movieclips):
        for d in coll:
            if getattr(d, "source", "FILE") not in {"FILE", "SEQUENCE", "MOVIE"}:
                continue
            if getattr(d, "packed_file", None) is not None or not d.filepath:
                continue
            p = bpy.path.abspath(d.filepath, library=d.library)
            if "#" in p or "<UDIM>" in p:
                continue
            if not os.path.exists(p):
                out.append(d.filepath)
    for lib in bpy.data.libraries:
        if not os.path.exists(bpy.path.abspath(lib.filepath)):
            out.append(lib.filepath)
    # sequencer strips read files that are no datablock (an edit's shots, movies): those
    # the frames of this task show (s["frames"]: first, last)
    first, last = s.get("frames") or (0, -1)
    strips = sc.sequence_editor.sequences_all if sc.sequence_editor else []
    for st in strips:
        lo, hi = max(first, st.frame_final_start), min(last, st.frame_final_end - 1)
        if st.mute or lo > hi:
            continue
        if st.type == "IMAGE":
            folder = bpy.path.abspath(st.directory)
            shown = {st.strip_elem_from_frame(f) for f in range(lo, hi + 1)} \
                if hi - lo < 100000 else set(st.elements)
            for e in shown:
                if e is not None and not os.path.exists(os.path.join(folder, e.filename)):
                    out.append(st.directory + e.filename)
        elif st.type == "MOVIE" and not os.path.exists(bpy.path.abspath(st.filepath)):
            out.append(st.filepath)
    return sorted(set(out))
m = _missing()
if m:
    more = " and %d more" % (len(m) - 5) if len(m) > 5 else ""
    print("vstudio" + ": missing input files: " + ", ".join(m[:5]) + more, flush=True)
    raise SystemExit(3)
if s.get("scene") and sc.name != s["scene"]:
    print("vstudio" + ": scene %r is not in the file" % s["scene"], flush=True)
    raise SystemExit(4)
if s.get("camera"):
    cam = bpy.data.objects.get(s["camera"])
    if cam is None or cam.type != "CAMERA":
        print("vstudio" + ": camera %r is not in the file" % s["camera"], flush=True)
        raise SystemExit(4)
    sc.camera = cam
if hasattr(sc, "cycles"):
    sc.cycles.use_denoising = False
    for vl in sc.view_layers:
        if hasattr(vl, "cycles"):
            vl.cycles.use_denoising = False
if s.get("samples"):
    if sc.render.engine == "CYCLES":
        sc.cycles.samples = s["samples"]
    elif hasattr(sc, "eevee"):
        sc.eevee.taa_render_samples = s["samples"]
r = s.get("resolution") or {}
if "x" in r:
    sc.render.resolution_x, sc.render.resolution_y = r["x"], r["y"]
    sc.render.resolution_percentage = 100
if "percent" in r:
    sc.render.resolution_percentage = r["percent"]
for path, value in s.get("overrides", {}).items():
    *head, last = path.split(".")
    obj = sc
    try:
        for part in head:
            obj = getattr(obj, part)
        if not hasattr(obj, last):
            raise AttributeError("no such property")
        setattr(obj, last, value)
    except (AttributeError, TypeError, ValueError) as e:
        print("vstudio" + ": override scene.%s = %r failed: %s" % (path, value, e), flush=True)
        raise SystemExit(4)
sc.render.use_overwrite = True
sc.render.use_placeholder = False
"""


def parse_resolution(value: Any) -> dict[str, int] | None:
    """``50``/``"50%"`` -> percent; ``"1920x1080"``/``[1920, 1080]`` -> size."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        pct = int(value)
        if not 1 <= pct <= 1000:
            raise TaskError(f"resolution {value}% is out of range 1-1000")
        return {"percent": pct}
    if isinstance(value, list | tuple) and len(value) == 2:
        x, y = int(value[0]), int(value[1])
    elif isinstance(value, dict) and "x" in value:
        x, y = int(value["x"]), int(value["y"])
    else:
        text = str(value).strip().lower()
        if text.endswith("%"):
            return parse_resolution(int(text[:-1]))
        m = re.fullmatch(r"(\d+)\s*[x×]\s*(\d+)", text)
        if not m:
            raise TaskError(f"resolution {value!r} is not a percent or WxH")
        x, y = int(m[1]), int(m[2])
    if not (4 <= x <= 32768 and 4 <= y <= 32768):
        raise TaskError(f"resolution {x}x{y} is out of range")
    return {"x": x, "y": y}


def check_overrides(overrides: Any) -> dict[str, Any]:
    """Scene property paths (``render.fps``) set to plain values; nothing that runs code."""
    if not overrides:
        return {}
    if not isinstance(overrides, dict):
        raise TaskError("overrides must be a mapping of scene property paths to values")
    for key, value in overrides.items():
        if not _IDENT.match(str(key)) or any(p.startswith("_") for p in str(key).split(".")):
            raise TaskError(f"override {key!r} is not a scene property path like 'render.fps'")
        if not isinstance(value, bool | int | float | str) or value is None:
            raise TaskError(f"override {key} must be a number, string or boolean")
    return dict(overrides)


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    blend = resolve_file(spec, task_dir / "files", str(p.get("file", "")), what=".blend file")
    fmt = str(p.get("format") or "PNG").upper()
    if fmt not in FORMATS:
        raise TaskError(f"output format {fmt} is not one of {', '.join(FORMATS)}")
    engine = str(p.get("engine") or "").upper() or None
    if engine and engine not in ENGINES:
        raise TaskError(f"engine {engine} is not one of {', '.join(sorted(ENGINES))}")
    samples = p.get("samples")
    if samples is not None and not (isinstance(samples, int) and 1 <= samples <= 1_000_000):
        raise TaskError("samples must be a whole number from 1")
    resolution = parse_resolution(p.get("resolution")) or {}
    if p.get("resolution_percentage"):
        resolution.update(parse_resolution(int(p["resolution_percentage"])) or {})
    settings = {"camera": p.get("camera"), "scene": p.get("scene"), "samples": samples,
                "resolution": resolution,
                "overrides": check_overrides(p.get("overrides"))}
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("blender") or "blender"
    argv = [exe, "-b", str(blend), "-y" if spec.trusted else "-Y", "--python-exit-code", "1"]
    if p.get("scene"):
        argv += ["-S", str(p["scene"])]
    if engine:
        argv += ["-E", engine]
    # the frames tell the input check which strip files this chunk shows; a warm session
    # (below) opens the file once for many chunks and gets no frames
    frames = [min(spec.frames), max(spec.frames)]
    argv += ["--python-expr", settings_script({**settings, "frames": frames})]
    argv += ["-o", str(out_dir / ("frame_" + "#" * PAD)), "-F", fmt, "-x", "1"]
    if contiguous(spec.frames):
        argv += ["-s", str(spec.start), "-e", str(spec.end), "-a"]
    else:
        argv += ["-f", ",".join(str(f) for f in spec.frames)]
    ext = FORMATS[fmt]
    outputs = {f: out_dir / f"frame_{f:0{PAD}d}{ext}" for f in spec.frames}
    # the same render for a warm Blender session (vstudio.worker.warm), which applies these
    # in the order the argv above does
    rel = str(p.get("file", "")).replace("\\", "/").lstrip("/")
    warm = {
        "file": rel if rel in spec.inputs else str(blend), "trusted": spec.trusted,
        "inputs": dict(spec.inputs), "files_dir": str(task_dir / "files"),
        "settings": settings, "engine": engine,
        "out": str(out_dir / ("frame_" + "#" * PAD)), "format": fmt}
    return Invocation(argv=argv, cwd=task_dir, outputs=outputs, parser=BlenderParser(spec.frames),
                      label="blender", names={f: o.name for f, o in outputs.items()}, warm=warm)


def settings_script(settings: dict[str, Any]) -> str:
    """The Python that checks inputs and applies the typed settings inside Blender."""
    return _SCRIPT.replace("__SETTINGS__", repr(json.dumps(settings)))


_FRA = re.compile(r"^Fra:\s*(-?\d+)\b")
_PEAK = re.compile(r"\bPeak:?\s*([\d.]+)\s*([KMG])", re.I)
_SAMPLE = re.compile(r"\bSample\s+(\d+)\s*/\s*(\d+)")  # Cycles 2.8-4.x
_EEVEE = re.compile(r"\bRendering\s+(\d+)\s*/\s*(\d+)\s+samples")  # Eevee
_TILE = re.compile(r"\bTile\s+(\d+)\s*/\s*(\d+)")  # 2.7x-2.9x tiles
_SAVED = re.compile(r"^Saved:\s*['\"]?(.+?)['\"]?\s*$")
_TIME = re.compile(r"^\s*Time:\s*(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")
_ERROR = re.compile(r"^(Error|ERROR|Traceback|RuntimeError|Warning: .*missing|.*\bFailed to\b)")
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class BlenderParser:
    """Reads ``Fra:``, ``Sample a/b``, ``Saved: '...'`` and `` Time:`` lines."""

    def __init__(self, frames: list[int]) -> None:
        self.total = len(frames)
        self.done = 0
        self.frame: int | None = None
        self.peak = 0
        self.last_saved: int | None = None
        self._last_fraction = -1.0

    def feed(self, line: str) -> Event:
        if line.startswith("vstudio: "):
            return Event(error=line[len("vstudio: "):].strip())
        m = _FRA.match(line)
        if m:
            frame = int(m[1])
            if frame != self.frame:
                self.frame, self.peak, self._last_fraction = frame, 0, -1.0
            pk = _PEAK.search(line)
            if pk:
                self.peak = max(self.peak, int(float(pk[1]) * _UNITS[pk[2].upper()]))
            s = _SAMPLE.search(line) or _EEVEE.search(line) or _TILE.search(line)
            fraction = int(s[1]) / max(1, int(s[2])) if s else None
            keep = "Finished" in line or (fraction is not None and fraction >= 1.0
                                          and fraction != self._last_fraction)
            if fraction is None:
                return Event(frame=frame, keep=keep)
            self._last_fraction = fraction
            return Event(frame=frame, progress=progress_of(self.done, fraction, self.total),
                         keep=keep)
        m = _SAVED.match(line)
        if m:
            self.done += 1
            self.last_saved = self.frame if self.frame is not None else self._guess(m[1])
            return Event(saved=self.last_saved, progress=progress_of(self.done, 0, self.total),
                         peak_mem=self.peak or None)
        m = _TIME.match(line)
        if m and self.last_saved is not None:
            secs = int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3])
            frame, self.last_saved = self.last_saved, None
            return Event(saved=frame, seconds=secs)
        if _ERROR.match(line.strip()):
            return Event(error=line.strip())
        return Event()

    @staticmethod
    def _guess(path: str) -> int | None:
        m = re.search(r"(\d+)\.\w+$", path)
        return int(m[1]) if m else None
