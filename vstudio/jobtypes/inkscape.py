"""``inkscape`` tasks: a drawing (.svg, .svgz) exported to PNG by ``inkscape --export-type``.

A drawing is a still: one export, copied for every further frame the task asks for.
Inkscape draws a missing linked image as an empty box and exits 0, so the drawing's links
are checked first. Size: ``width``/``height`` params (pixels), else the drawing's own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
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


def check_links(svg: Path) -> None:
    from xml.etree.ElementTree import ParseError

    from vstudio.render.model import Use
    from vstudio.render.scan_svg import scan_svg

    try:
        missing = [r.path for r in scan_svg(svg) if isinstance(r, Use) and not r.exists]
    except (ParseError, OSError, EOFError, ValueError) as e:
        raise TaskError(f"{svg.name} is not a readable SVG drawing ({e})") from None
    if missing:
        names = sorted({Path(p).relative_to(svg.parent).as_posix()
                        if Path(p).is_relative_to(svg.parent) else p for p in missing})
        raise MissingInput(f"missing input files of {svg.name}: {', '.join(names[:5])}")


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    p = spec.params
    svg = resolve_file(spec, task_dir / "files", str(p.get("file", "")), what="SVG drawing")
    check_links(svg)
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {f: out_dir / f"frame_{f:06d}.png" for f in spec.frames}
    first = outputs[spec.start]
    exe = shutil.which("inkscape")
    if exe is None:
        raise TaskError("inkscape is not installed (apt-get install inkscape)")
    argv = export_argv(exe, svg, first, size_param(p.get("width"), "width"),
                       size_param(p.get("height"), "height"))
    if len(outputs) > 1:  # one export, then the same picture for the other frames
        argv = [sys.executable, "-m", "vstudio.jobtypes.inkscape", *argv, "--copies",
                *[str(o) for f, o in outputs.items() if f != spec.start]]
    return Invocation(argv=argv, cwd=svg.parent, outputs=outputs, parser=PlainParser(),
                      label="inkscape", names={f: o.name for f, o in outputs.items()})


def export_argv(exe: str, svg: Path, out: Path, width: int | None,
                height: int | None) -> list[str]:
    argv = [exe, str(svg), "--export-type=png", f"--export-filename={out}"]
    if width:
        argv.append(f"--export-width={width}")
    if height:
        argv.append(f"--export-height={height}")
    return argv


def main(argv: list[str]) -> int:
    """``python -m vstudio.jobtypes.inkscape INKSCAPE-ARGV... --copies OUT...``"""
    if "--copies" not in argv:
        print("usage: python -m vstudio.jobtypes.inkscape ARGV... --copies OUT...",
              file=sys.stderr)
        return 2
    cut = argv.index("--copies")
    export, copies = argv[:cut], argv[cut + 1:]
    code = subprocess.run(export).returncode
    if code:
        return code
    first = next(a.split("=", 1)[1] for a in export if a.startswith("--export-filename="))
    for dest in copies:
        shutil.copyfile(first, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
