"""Make small, real Krita documents (.kra) with Debian's ``krita`` for tests.

Krita converts a PNG into a one-layer document; an animated document is assembled from
such documents' layer data with a keyframes file, the way Krita saves one (each frame's
pixels in ``layerN.fM``, their times in ``layerN.keyframes.xml``). Krita on Linux needs
an X display: ``vstudio.jobtypes.xserver`` gives it one on a machine without.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.render_projects import write_png

KRITA_INSTALL = "apt-get install -y krita xvfb"


def krita_argv() -> list[str]:
    """``krita`` (under a private Xvfb without a display); fails the test when missing."""
    import pytest

    from vstudio.jobtypes import krita, xserver

    exe = shutil.which("krita")
    if not exe or not krita.installed():
        pytest.fail(f"krita or Xvfb is missing: install them with '{KRITA_INSTALL}' "
                    "(make test does)")
    return xserver.wrap([exe])


def make_still(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (32, 18)) -> Path:
    """A one-layer document of one colour, saved by Krita."""
    png = write_png(path.with_suffix(".src.png"), size[0], size[1], rgb)
    proc = subprocess.run([*krita_argv(), "--export", "--export-filename", str(path), str(png)],
                          capture_output=True, text=True, timeout=300)
    png.unlink()
    if proc.returncode != 0 or not path.is_file():
        raise AssertionError(f"krita could not make {path.name}: {proc.stderr[-2000:]}")
    return path


def make_animated(path: Path, colours: list[tuple[int, int, int]],
                  size: tuple[int, int] = (32, 18)) -> Path:
    """A document whose one layer shows ``colours[i]`` at frame ``i`` (range 0..len-1)."""
    stills = [make_still(path.with_name(f"{path.stem}.{i}.kra"), c, size)
              for i, c in enumerate(colours)]
    with zipfile.ZipFile(stills[0]) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    main = entries["maindoc.xml"].decode()
    layer = re.search(r'<layer [^>]*filename="([^"]+)"', main)
    assert layer is not None, main
    name = layer[1]
    folder = next(n for n in entries if n.endswith(f"/layers/{name}")).rsplit("/", 1)[0]
    keys = "".join(f'<keyframe time="{i}" frame="{name}{"" if i == 0 else f".f{i}"}">'
                   '<offset type="point" x="0" y="0"/></keyframe>' for i in range(len(stills)))
    entries[f"{folder}/{name}.keyframes.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<keyframes><channel name="content">'
        f'{keys}</channel></keyframes>\n').encode()
    for i, still in enumerate(stills[1:], start=1):
        with zipfile.ZipFile(still) as z:
            entries[f"{folder}/{name}.f{i}"] = z.read(f"{folder}/{name}")
            entries[f"{folder}/{name}.f{i}.defaultpixel"] = z.read(
                f"{folder}/{name}.defaultpixel")
        still.unlink()
    stills[0].unlink()
    last = len(colours) - 1

    def ranged(xml: bytes) -> bytes:
        return re.sub(rb'<range [^>]*>', f'<range to="{last}" type="timerange" from="0"/>'
                      .encode(), xml)

    entries["maindoc.xml"] = ranged(main.replace(
        f'filename="{name}"', f'filename="{name}" keyframes="{name}.keyframes.xml"').encode())
    index = f"{folder.rsplit('/', 1)[0]}/animation/index.xml"
    entries[index] = ranged(entries[index])
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), entries.pop("mimetype"))
        for n, data in entries.items():
            z.writestr(n, data, zipfile.ZIP_DEFLATED)
    return path


def first_pixel(png: Path) -> tuple[int, ...]:
    """The RGB(A) of a PNG's top-left pixel (8-bit colour types only)."""
    import struct
    import zlib

    data, pos, idat, header = png.read_bytes(), 8, b"", b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + n
    channels = {2: 3, 6: 4}[header[9]]
    return tuple(zlib.decompress(idat)[1:1 + channels])  # row filter byte, then pixels
