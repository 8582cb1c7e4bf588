"""The scanner registry: one generator per file format, yielding ``Use``/``SceneInfo`` records.

A scanner reads a file without launching any renderer and yields what the file uses
directly (a library's own uses come from scanning the library). Register one with::

    @scanner(".sif", ".sifz", renderer="synfig")
    def scan_sif(path: Path) -> Iterator[Use | SceneInfo]: ...

``renderer`` marks the format as a source (something a renderer turns into frames).
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import string
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from vstudio.errors import BadInput
from vstudio.render.model import ScanResult, SceneInfo, Use

Record = Use | SceneInfo
ScannerFn = Callable[[Path], Iterator[Record]]

_SCANNERS: dict[str, ScannerFn] = {}
_RENDERERS: dict[str, str] = {}
_loaded = False


class ScanError(BadInput):
    """A file could not be read to find what it uses."""


def scanner(*suffixes: str, renderer: str | None = None) -> Callable[[ScannerFn], ScannerFn]:
    """Register the decorated generator for files ending in ``suffixes``."""

    def register(fn: ScannerFn) -> ScannerFn:
        for suffix in suffixes:
            _SCANNERS[suffix.lower()] = fn
            if renderer:
                _RENDERERS[suffix.lower()] = renderer
        return fn

    return register


def _load() -> None:
    # The format modules register themselves on import; importing them here, not at the
    # top, keeps this module free of import cycles and cheap when only stat caches are hit.
    global _loaded
    if not _loaded:
        from vstudio.render import (  # noqa: F401
            scan_blend,
            scan_gimp,
            scan_krita,
            scan_pencil2d,
            scan_svg,
            scan_synfig,
        )

        _loaded = True


def suffix_of(path: str | Path) -> str:
    return os.path.splitext(str(path))[1].lower()


def has_scanner(path: str | Path) -> bool:
    _load()
    return suffix_of(path) in _SCANNERS


def renderer_for(path: str | Path) -> str | None:
    """The renderer of a source file, or None for a file that is only ever an input."""
    _load()
    return _RENDERERS.get(suffix_of(path))


def scan_file(path: Path) -> ScanResult:
    """All the records of ``path``'s scanner; an unknown format uses nothing."""
    _load()
    fn = _SCANNERS.get(suffix_of(path))
    result = ScanResult()
    if fn is None:
        return result
    try:
        for record in fn(path):
            if isinstance(record, Use):
                result.uses.append(record)
            elif result.scene is None:
                result.scene = record
    except ScanError:
        raise
    except FileNotFoundError:
        raise ScanError(f"{path} does not exist") from None
    except Exception as e:  # a damaged file must name itself, not crash the run
        raise ScanError(f"cannot read {path}: {type(e).__name__}: {e}") from None
    return result


def resolve(base_dir: Path, ref: str) -> Path:
    """A reference from a file in ``base_dir``; absolute references are kept."""
    p = Path(ref)
    return Path(os.path.normpath(p if p.is_absolute() else base_dir / p))


def expand_sequence(path: str) -> list[str]:
    """The files of an image sequence given by its first file, a glob or a UDIM pattern."""
    if "<UDIM>" in path:
        path = path.replace("<UDIM>", "*")
    if "*" in path:
        return sorted(glob.glob(path))
    p = Path(path)
    if p.is_dir():
        return sorted(str(f) for f in p.rglob("*") if f.is_file())
    if not p.exists():
        return []
    stem = p.stem.rstrip(string.digits)
    if stem == p.stem:
        return [path]
    pattern = os.path.join(glob.escape(str(p.parent)),
                           glob.escape(stem) + "*" + glob.escape(p.suffix))
    # Only the same prefix followed by digits: "other.png" is not frame 0 of "0001.png".
    frame = re.compile(re.escape(stem) + r"\d+" + re.escape(p.suffix) + "$")
    return sorted(f for f in glob.glob(pattern) if frame.match(os.path.basename(f)))


@functools.cache
def _installed_fonts() -> dict[str, str]:
    """Font files fontconfig knows, by file name."""
    fc_list = shutil.which("fc-list")
    if not fc_list:
        return {}
    try:
        out = subprocess.run([fc_list, "-f", "%{file}\\n"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {os.path.basename(f): f for f in out.splitlines() if f}


def installed_font(name: str) -> str | None:
    """The installed font file named ``name`` (``DejaVuSans-Bold.ttf``), if any: Synfig
    and Blender fall back to it when a scene's font path is not there."""
    return _installed_fonts().get(name)
