"""``krita`` tasks: Krita itself exports the frames (``krita --export`` / ``--export-sequence``).

A still document gives the same picture on every frame: Krita exports it once and every
frame of the task is that file. An animated one is exported frame by frame (``main``, run
as the task's process): ``krita --export`` of a copy whose current time is that frame,
with file layers pointing at their absolute paths so the copy can live in the task
folder. ``krita --export-sequence`` would start Krita once, but Krita 5.1 ends it with
"Failed to render animation frames!" and no files on a loaded machine (seen here with
load 8 on 2 cores, after it worked at a lower load), so it is not relied upon.

Krita on Linux always opens an X display, so a render node without ``DISPLAY`` runs it
under a private Xvfb (``xserver``); a machine without Krita or a way to give it a display
does not offer the job type (``installed``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

from vstudio.jobtypes import xserver
from vstudio.jobtypes.base import (
    Invocation,
    PlainParser,
    TaskError,
    TaskSpec,
    local_path,
    resolve_file,
)

INSTALL = "apt-get install krita xvfb"
_RANGE = re.compile(rb"<range\b[^>]*>")
_TIME = re.compile(rb"<currentTime\b[^>]*>")
_SOURCE = re.compile(rb'(<layer\b[^>]*\bsource=")([^"]*)(")')


def installed() -> bool:
    return shutil.which("krita") is not None and (
        bool(os.environ.get("DISPLAY")) or shutil.which("Xvfb") is not None)


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    kra = resolve_file(spec, task_dir / "files", str(spec.params.get("file", "")),
                       what="Krita file")
    krita = shutil.which("krita")
    if krita is None or not installed():
        raise TaskError(f"this worker cannot run Krita (install it: {INSTALL})")
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {f: f"frame_{f:06d}.png" for f in spec.frames}
    animated, sources = _document(kra)
    _check_sources(spec, kra, sources, task_dir / "files")
    if not animated:
        still = out_dir / "still.png"
        argv = xserver.wrap([krita, "--export", "--export-filename", str(still), str(kra)])
        outputs = {f: still for f in spec.frames}
    else:
        outputs = {f: out_dir / names[f] for f in spec.frames}
        argv = [sys.executable, "-m", "vstudio.jobtypes.krita", str(kra), str(task_dir / "work"),
                *(f"{f}={o}" for f, o in outputs.items())]
    return Invocation(argv=argv, cwd=task_dir, outputs=outputs,
                      parser=PlainParser(), label="krita", names=names)


def _maindoc(kra: Path) -> bytes:
    try:
        with zipfile.ZipFile(kra) as z:
            return z.read("maindoc.xml")
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise TaskError(f"{kra.name} is not a Krita document ({e})") from None


def _document(kra: Path) -> tuple[bool, list[str]]:
    """Whether any layer has keyframes (Krita refuses to export a sequence otherwise), and
    the files the file layers show."""
    try:
        root = ET.fromstring(_maindoc(kra))
    except ET.ParseError as e:
        raise TaskError(f"{kra.name} is not a Krita document (maindoc.xml: {e})") from None
    layers = [el for el in root.iter() if el.tag.endswith("layer")]
    return (any(el.get("keyframes") for el in layers),
            [str(el.get("source")) for el in layers if el.get("source")])


def _check_sources(spec: TaskSpec, kra: Path, sources: list[str], files: Path) -> None:
    """File layers may only show files sent with the task, unless the worker allows
    local paths: Krita would read (and export) any file of this machine otherwise."""
    if spec.local_paths:
        return
    top = files.resolve()
    for source in sources:
        if not (kra.parent / source).resolve().is_relative_to(top):
            local_path(spec, source, f"file layer of {kra.name}")


def stage_range(kra: Path, dest: Path, start: int, end: int) -> None:
    """Copy ``kra`` to ``dest`` with its animation range ``start``-``end``, current time
    ``start``, and file layers' relative sources made absolute."""

    def patch(data: bytes) -> bytes:
        data = _RANGE.sub(lambda m: re.sub(rb'\bto="-?\d+"', f'to="{end}"'.encode(), re.sub(
            rb'\bfrom="-?\d+"', f'from="{start}"'.encode(), m[0])), data)
        data = _TIME.sub(lambda m: re.sub(rb'\bvalue="-?\d+"', f'value="{start}"'.encode(),
                                          m[0]), data)
        return _SOURCE.sub(lambda m: m[1] + _absolute(kra.parent, m[2]) + m[3], data)

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(kra) as src, zipfile.ZipFile(dest, "w") as out:
            for info in src.infolist():
                data = src.read(info)
                if info.filename == "maindoc.xml" or info.filename.endswith(
                        "/animation/index.xml"):
                    data = patch(data)
                elif info.filename != "mimetype":
                    info.compress_type = zipfile.ZIP_STORED  # a copy: speed over size
                out.writestr(info, data)
    except (zipfile.BadZipFile, OSError) as e:
        raise TaskError(f"{kra.name} is not a Krita document ({e})") from None


def _absolute(folder: Path, source: bytes) -> bytes:
    from xml.sax.saxutils import escape, unescape

    path = Path(unescape(source.decode("utf-8", "replace")))
    return escape(str(path if path.is_absolute() else folder / path), {'"': "&quot;"}).encode()


def main(args: list[str]) -> int:
    """``python -m vstudio.jobtypes.krita DOC.kra WORKDIR FRAME=OUT.png...``: export each
    frame of an animated document with Krita; exit 1 at the first frame Krita fails."""
    if len(args) < 3:
        print("usage: python -m vstudio.jobtypes.krita DOC.kra WORKDIR FRAME=OUT.png...",
              file=sys.stderr)
        return 2
    kra, work = Path(args[0]), Path(args[1])
    krita = shutil.which("krita")
    if krita is None or not installed():
        print(f"error: this machine cannot run Krita (install it: {INSTALL})", file=sys.stderr)
        return 1
    for item in args[2:]:
        frame_s, _, out = item.partition("=")
        frame = int(frame_s)
        staged = work / f"{frame}-{kra.name}"
        try:
            stage_range(kra, staged, frame, frame)
        except TaskError as e:
            print(f"error: {e.message}", file=sys.stderr)
            return 1
        print(f"krita: exporting frame {frame}", flush=True)
        proc = subprocess.run(xserver.wrap([krita, "--export", "--export-filename", out,
                                            str(staged)]), stdin=subprocess.DEVNULL)
        staged.unlink(missing_ok=True)
        if proc.returncode != 0 or not Path(out).is_file():
            print(f"error: krita failed to export frame {frame} (exit {proc.returncode})",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
