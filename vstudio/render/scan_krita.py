"""Scanner for Krita documents (.kra): a zip whose ``maindoc.xml`` lists the layers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import Record, resolve, scanner


@scanner(".kra", renderer="krita")
def scan_kra(path: Path) -> Iterator[Record]:
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("maindoc.xml"))
        # Krita saves a 0-100 range in every document; only keyframes make an animation
        # (RenderChan's test, and what `krita --export-sequence` refuses without)
        animated = any(n.endswith(".keyframes.xml") for n in z.namelist())
    width = height = 0
    start = end = 0
    fps = 24.0
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]  # maindoc.xml has a default namespace
        if tag == "IMAGE" and not width:
            width, height = int(el.get("width", "0")), int(el.get("height", "0"))
        elif tag == "layer" and el.get("nodetype") == "filelayer" and el.get("source"):
            target = resolve(path.parent, el.get("source", ""))
            yield Use(str(target), "layer", target.exists(), el.get("name", ""))
        elif tag == "range" and el.get("from") is not None and animated:
            start, end = int(el.get("from", "0")), int(el.get("to", "0"))
        elif tag == "framerate" and el.get("value"):
            fps = float(el.get("value", "24"))
    yield SceneInfo(renderer="krita", start=start, end=end, fps=fps, width=width, height=height)
