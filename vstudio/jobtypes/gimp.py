"""``gimp`` tasks: a GIMP image (.xcf) flattened to PNG by GIMP in batch mode.

As RenderChan's GIMP module does: load, merge the visible layers (clipped to the canvas,
transparency kept), scale when a size is asked, save as PNG. An image is a still: one
export, copied for every further frame the task asks for.

GIMP's batch mode exits 0 even when the image cannot be loaded (it only prints "batch
command experienced an execution error"), so GIMP runs under this module, which checks
that the PNG was written and turns GIMP's error into one line:

    python -m vstudio.jobtypes.gimp GIMP IMAGE OUT WIDTH HEIGHT [COPY...]

(WIDTH and HEIGHT 0: the image's own size.)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from vstudio.jobtypes.base import Invocation, PlainParser, TaskError, TaskSpec, resolve_file
from vstudio.jobtypes.synfig import size_param


def _string(text: str) -> str:
    """A Script-Fu string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(image: Path, out: Path, width: int, height: int) -> str:
    scale = f"(gimp-image-scale image {width} {height})" if width and height else ""
    return ("(let* ((image (car (gimp-file-load RUN-NONINTERACTIVE {i} {i})))"
            " (drawable (car (gimp-image-merge-visible-layers image CLIP-TO-IMAGE))))"
            " {scale}"
            " (set! drawable (car (gimp-image-get-active-drawable image)))"
            " (file-png-save2 RUN-NONINTERACTIVE image drawable {o} {o} 0 9 0 0 0 1 0 0 0)"
            " (gimp-image-delete image))").format(i=_string(str(image)), o=_string(str(out)),
                                                  scale=scale)


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    xcf = resolve_file(spec, task_dir / "files", str(p.get("file", "")), what="GIMP image")
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {f: out_dir / f"frame_{f:06d}.png" for f in spec.frames}
    exe = shutil.which("gimp")
    if exe is None:
        raise TaskError("gimp is not installed (apt-get install gimp)")
    w = size_param(p.get("width"), "width") or 0
    h = size_param(p.get("height"), "height") or 0
    argv = [sys.executable, "-m", "vstudio.jobtypes.gimp", exe, str(xcf),
            str(outputs[spec.start]), str(w), str(h),
            *[str(o) for f, o in outputs.items() if f != spec.start]]
    return Invocation(argv=argv, cwd=xcf.parent, outputs=outputs, parser=PlainParser(),
                      label="gimp", names={f: o.name for f, o in outputs.items()})


def main(argv: list[str]) -> int:
    if len(argv) < 5:
        print("usage: python -m vstudio.jobtypes.gimp GIMP IMAGE OUT WIDTH HEIGHT [COPY...]",
              file=sys.stderr)
        return 2
    exe, image, out = argv[0], Path(argv[1]), Path(argv[2])
    width, height, copies = int(argv[3]), int(argv[4]), argv[5:]
    # -i: no user interface; -d/-f: no brushes, patterns or fonts (an .xcf keeps its
    # text layers' pixels), which halves start-up
    proc = subprocess.run([exe, "-i", "-d", "-f", "-b", script(image, out, width, height),
                           "-b", "(gimp-quit 0)"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    if not out.is_file() or out.stat().st_size == 0:
        lines = [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith("Error:")), "")
        why = why or next((ln for ln in reversed(lines) if "error" in ln.lower()), "")
        print(f"error: GIMP could not render {image.name}: "
              f"{why.removeprefix('Error: ') or f'exit code {proc.returncode}'}")
        return 1
    for dest in copies:
        shutil.copyfile(out, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
