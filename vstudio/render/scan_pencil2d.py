"""Scanner for Pencil2D animations: ``.pclx`` (a zip) and the older ``.pcl`` (plain XML).

A ``.pclx`` holds ``main.xml`` and the key frames' files under ``data/``
(``002.001.png`` for a bitmap key, ``.vec`` for a vector key, sounds); a ``.pcl`` is the
XML alone with those files in the folder ``NAME.pcl.data`` beside it, which is what
RenderChan lists as its dependencies. ``main.xml``'s ``<document><object>`` holds one
``<layer type=N>`` per layer (1 bitmap, 2 vector, 4 sound, 5 camera); every key element
has ``frame=`` and, but for camera keys, ``src=``. The camera layer's ``width`` and
``height`` are the export size; frames run from 1 to the last key (Pencil2D's
``--end last``).

Pencil2D shows a dialog, and waits for ever, when it cannot open a file, so a damaged
.pclx (a truncated zip, a missing key file) is refused here, before it runs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import Record, ScanError, scanner

CAMERA = "5"
KINDS = {"1": "image", "2": "image", "4": "sound"}


def _damaged(path: Path, why: str) -> ScanError:
    return ScanError(f"{path} is a damaged Pencil2D file: {why}")


def _read_pclx(path: Path) -> tuple[bytes, set[str]]:
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()  # reads every member: a cut or altered zip fails here
            if bad is not None:
                raise _damaged(path, f"{bad} is corrupt")
            names = set(z.namelist())
            if "main.xml" not in names:
                raise _damaged(path, "no main.xml in it")
            return z.read("main.xml"), names
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _damaged(path, f"not a readable zip ({e})") from None


@scanner(".pclx", ".pcl", renderer="pencil2d")
def scan_pencil2d(path: Path) -> Iterator[Record]:
    # Pencil2D tells the two apart by content (a zip or not); a cut .pclx is no zip
    packed = path.suffix.lower() == ".pclx" or zipfile.is_zipfile(path)
    if packed:
        xml, names = _read_pclx(path)
    else:
        xml, names = path.read_bytes(), set()
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        raise _damaged(path, f"main.xml is not XML ({e})") from None
    obj = root.find("object") if root.tag == "document" else root
    if obj is None:
        raise _damaged(path, "main.xml has no <object>")
    width = height = 0
    last = 1
    data = path.parent / (path.name + ".data")
    for layer in obj.iter("layer"):
        kind = layer.get("type", "")
        if kind == CAMERA and not width:
            width, height = int(layer.get("width") or 0), int(layer.get("height") or 0)
        for key in layer:
            frame = key.get("frame")
            if frame is not None and frame.lstrip("-").isdigit():
                last = max(last, int(frame))
            src = key.get("src")
            if not src or kind == CAMERA:
                continue
            if packed:
                if f"data/{src}" not in names:
                    raise _damaged(path, f"data/{src} ({layer.get('name', '')} frame "
                                         f"{frame}) is not in it")
            else:
                target = data / src
                yield Use(str(target), KINDS.get(kind, "image"), target.is_file(),
                          f"{layer.get('name', '')} frame {frame}")
    fps = 12.0  # Pencil2D's default
    for el in root.iter("fps"):
        if (el.get("value") or "").isdigit():
            fps = float(el.get("value", "12"))
    yield SceneInfo(renderer="pencil2d", start=1, end=last, fps=fps, width=width,
                    height=height)
