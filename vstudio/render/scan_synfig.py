"""Scanners for Synfig scenes (.sif, .sifz) and image lists (.lst), read as XML/text."""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import Record, resolve, scanner, suffix_of

# Layer types whose "filename" parameter names a file.
_FILE_LAYERS = {"import": "import", "sound": "sound"}
_FONT_FILES = (".ttf", ".otf", ".ttc", ".pfb")
_TIME_PART = re.compile(r"(-?\d+(?:\.\d+)?)\s*([hmsf]?)")


@scanner(".sif", ".sifz", renderer="synfig")
def scan_sif(path: Path) -> Iterator[Record]:
    data = path.read_bytes()
    if suffix_of(path) == ".sifz" or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    root = ET.fromstring(data)
    seen: set[tuple[str, str]] = set()
    for el in root.iter():
        if el.tag == "layer" and el.get("type") in _FILE_LAYERS:
            for param in el.findall("param"):
                if param.get("name") != "filename":
                    continue
                ref = (param.findtext("string") or "").strip()
                if ref:
                    kind = _FILE_LAYERS[el.get("type", "")]
                    if ref.lower().endswith(".lst"):
                        kind = "list"
                    if (ref, kind) in seen:
                        continue
                    seen.add((ref, kind))
                    detail = el.get("desc") or el.get("type") or ""
                    yield _use(path, ref, kind, detail)
        if el.tag == "layer" and el.get("type") == "text":
            # A family is usually an installed font's name; a path to a font file is a use.
            family = next((str(p.findtext("string") or "").strip() for p in el.findall("param")
                           if p.get("name") == "family"), "")
            if _font_file(path, family) and (family, "font") not in seen:
                seen.add((family, "font"))
                yield _use(path, family, "font", el.get("desc") or "text")
        use = el.get("use")
        # use="file.sif#" is an external canvas, "file.sif#:id" an exported value;
        # "#id" alone points inside this file.
        if use and "#" in use and not use.startswith("#"):
            ref = use.split("#", 1)[0]
            if (ref, "canvas") not in seen:
                seen.add((ref, "canvas"))
                yield _use(path, ref, "canvas", use)
    if root.tag == "canvas":
        yield _scene(root)


def _font_file(path: Path, family: str) -> bool:
    """Whether a text layer's family names a font file. Synfig also takes a file name
    (``DejaVuSans-Bold.ttf``) as a family that fontconfig resolves, so only a path with a
    folder, or a file beside the scene, is a file the scene uses."""
    if not family.lower().endswith(_FONT_FILES):
        return False
    return "/" in family.replace("\\", "/") or resolve(path.parent, family).exists()


def _use(path: Path, ref: str, kind: str, detail: str) -> Use:
    target = resolve(path.parent, ref)
    return Use(str(target), kind, target.exists(), detail)


def parse_time(text: str, fps: float) -> int:
    """A Synfig time ("12f", "1s 6f", "0:00:01.5", "2") as a frame; a bare number is seconds."""
    text = text.strip()
    if not text:
        return 0
    if ":" in text:  # hh:mm:ss(.ff)
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
        return round(seconds * fps)
    total = 0.0
    for value, unit in _TIME_PART.findall(text):
        v = float(value)
        total += {"h": v * 3600 * fps, "m": v * 60 * fps, "s": v * fps, "f": v, "": v * fps}[unit]
    return round(total)


def _scene(canvas: ET.Element) -> SceneInfo:
    fps = float(canvas.get("fps", "24") or 24)
    return SceneInfo(renderer="synfig", start=parse_time(canvas.get("begin-time", "0f"), fps),
                     end=parse_time(canvas.get("end-time", "0f"), fps), fps=fps,
                     width=int(float(canvas.get("width", "480"))),
                     height=int(float(canvas.get("height", "270"))))


@scanner(".lst")
def scan_lst(path: Path) -> Iterator[Record]:
    """An image list: optional ``FPS n`` line, then one file name per line."""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.upper().startswith("FPS"):
            continue
        yield _use(path, line, "image", "list")
