"""``pencil2d`` tasks: a Pencil2D animation (.pclx, .pcl) exported to PNG frames.

As RenderChan's Pencil2D module does (Pencil2D 0.6.1 and later): ``pencil2d FILE -o
PREFIX --width W --height H --start S --end E [--transparency]``; Pencil2D writes
``PREFIX0001.png`` and on. It runs on Qt's ``offscreen`` platform: no X display needed.

Pencil2D opens a dialog, and so never exits, when it cannot load a file, so it runs under
this module, which ends it when it has not begun exporting within ``LOAD_SECONDS`` and
says so in one line:

    python -m vstudio.jobtypes.pencil2d PENCIL2D FILE PREFIX START END W H TRANSPARENT
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from vstudio.jobtypes.base import (
    Invocation,
    MissingInput,
    PlainParser,
    TaskError,
    TaskSpec,
    resolve_file,
)
from vstudio.jobtypes.synfig import size_param

LOAD_SECONDS = 60.0
ENV = {"QT_QPA_PLATFORM": "offscreen"}


def check_file(path: Path) -> None:
    """Refuse a damaged file, or a .pcl whose key frame files are missing."""
    from vstudio.render.model import Use
    from vstudio.render.scan_pencil2d import scan_pencil2d
    from vstudio.render.scanners import ScanError

    try:
        missing = [r.path for r in scan_pencil2d(path) if isinstance(r, Use) and not r.exists]
    except ScanError as e:
        raise TaskError(e.message) from None
    except (OSError, ValueError) as e:
        raise TaskError(f"{path.name} is not a readable Pencil2D file ({e})") from None
    if missing:
        names = sorted(Path(p).relative_to(path.parent).as_posix() for p in missing)
        raise MissingInput(f"missing input files of {path.name}: {', '.join(names[:5])}")


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    src = resolve_file(spec, task_dir / "files", str(p.get("file", "")),
                       what="Pencil2D file")
    check_file(src)
    if spec.frames != list(range(spec.start, spec.end + 1)):
        raise TaskError("Pencil2D renders contiguous frame ranges only")
    if spec.start < 1:
        raise TaskError("Pencil2D frames start at 1")
    exe = shutil.which("pencil2d")
    if exe is None:
        raise TaskError("pencil2d is not installed (apt-get install pencil2d)")
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {f: out_dir / f"frame{f:04d}.png" for f in spec.frames}
    w = size_param(p.get("width"), "width") or -1  # -1: the camera's size
    h = size_param(p.get("height"), "height") or -1
    argv = [sys.executable, "-m", "vstudio.jobtypes.pencil2d", exe, str(src),
            str(out_dir / "frame"), str(spec.start), str(spec.end), str(w), str(h),
            "1" if p.get("transparency") else "0"]
    return Invocation(argv=argv, cwd=src.parent, outputs=outputs, parser=PlainParser(),
                      env=dict(ENV), label="pencil2d",
                      names={f: o.name for f, o in outputs.items()})


def main(argv: list[str]) -> int:
    if len(argv) != 8:
        print("usage: python -m vstudio.jobtypes.pencil2d PENCIL2D FILE PREFIX START END "
              "W H TRANSPARENT", file=sys.stderr)
        return 2
    exe, src, prefix, start, end, w, h, transparent = argv
    cmd = [exe, src, "-o", prefix, "--width", w, "--height", h, "--start", start,
           "--end", end] + (["--transparency"] if transparent == "1" else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env={**os.environ, **ENV})
    assert proc.stdout is not None
    exporting = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("Exporting"):
                exporting.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    name = Path(src).name
    if not exporting.wait(LOAD_SECONDS) and proc.poll() is None:
        proc.kill()
        proc.wait()
        print(f"error: Pencil2D could not open {name} (no export after "
              f"{LOAD_SECONDS:.0f} s: a damaged file?)")
        return 1
    code = proc.wait()
    reader.join(5)
    frames = range(int(start), int(end) + 1)
    missing = [f for f in frames if not Path(f"{prefix}{f:04d}.png").is_file()]
    if code or missing:
        why = next((ln for ln in reversed(lines) if "error" in ln.lower()), "")
        print(f"error: Pencil2D did not render {name}"
              + (f" frames {missing[0]}-{missing[-1]}" if missing else "")
              + f" (exit code {code}){': ' + why if why else ''}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
