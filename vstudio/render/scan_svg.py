"""Scanner for Inkscape drawings (.svg, .svgz): the images they link, and their size.

An ``<image>`` links a file by ``xlink:href`` (SVG 1.1) or ``href`` (SVG 2), relative to
the drawing or as a ``file://`` URI; Inkscape also records the absolute path it was
linked from (``sodipodi:absref``) and uses it when the relative one is missing, as
RenderChan's scanner does. Embedded (``data:``) and web images use no file. ``<use>`` of
another file's element (``other.svg#id``) uses that file.
"""

from __future__ import annotations

import gzip
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import Record, resolve, scanner, suffix_of

_SVG = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}href"
_ABSREF = "{http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd}absref"
# user units per unit (CSS: 96 px per inch)
_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54,
          "mm": 96 / 25.4, "q": 96 / 101.6}
_LENGTH = re.compile(r"^\s*([0-9.]+(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$")


@scanner(".svg", ".svgz", renderer="inkscape")
def scan_svg(path: Path) -> Iterator[Record]:
    data = path.read_bytes()
    if suffix_of(path) == ".svgz" or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    root = ET.fromstring(data)
    seen: set[str] = set()
    for el in root.iter():
        if el.tag not in (f"{_SVG}image", f"{_SVG}use"):
            continue
        href = el.get(_XLINK) or el.get("href") or ""
        kind = "image" if el.tag == f"{_SVG}image" else "canvas"
        target = _local(path, href, el.get(_ABSREF), kind)
        if target is not None and str(target) not in seen:
            seen.add(str(target))
            yield Use(str(target), kind, target.exists(), el.get("id", ""))
    width, height = _size(root)
    yield SceneInfo(renderer="inkscape", start=1, end=1, width=width, height=height)


def _local(svg: Path, href: str, absref: str | None, kind: str) -> Path | None:
    """The file ``href`` names, or None for embedded data, web links and own elements."""
    href = href.strip()
    if kind == "canvas":
        href = href.split("#", 1)[0]
    if not href or href.startswith("#"):
        return None
    parts = urlsplit(href)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme and len(parts.scheme) > 1:  # data:, http:, ... (not a drive letter)
        return None
    target = resolve(svg.parent, unquote(href))
    if not target.exists() and absref and Path(absref).exists():
        return Path(absref)
    return target


def _size(root: ET.Element) -> tuple[int, int]:
    """Pixel size Inkscape exports at 96 dpi: width/height, else the viewBox."""
    box = (root.get("viewBox") or "").replace(",", " ").split()
    out = []
    for n, attr in enumerate(("width", "height")):
        m = _LENGTH.match(root.get(attr) or "")
        if m and m[2].lower() in _UNITS:
            out.append(round(float(m[1]) * _UNITS[m[2].lower()]))
        elif len(box) == 4:
            out.append(round(float(box[2 + n])))
        else:
            out.append(0)
    return out[0], out[1]
