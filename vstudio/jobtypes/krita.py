"""``krita`` tasks: ``krita --export`` when Krita is installed, else the .kra's merged image.

A .kra is a zip whose ``mergedimage.png`` is the flattened picture Krita saved with it,
so a machine without Krita can still deliver a still (the same image for every frame).
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

from vstudio.jobtypes import xserver
from vstudio.jobtypes.base import Invocation, PlainParser, TaskError, TaskSpec, resolve_file


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    kra = resolve_file(spec, task_dir / "files", str(spec.params.get("file", "")),
                       what="Krita file")
    out_dir = task_dir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    krita = shutil.which("krita")
    single = len(spec.frames) == 1
    outputs = {f: out_dir / f"frame_{f:06d}.png" for f in spec.frames}
    if krita and single:
        argv = [krita, "--export", "--export-filename", str(outputs[spec.start]), str(kra)]
    elif krita:
        # Krita names sequence files base + frame number (4 digits at least)
        argv = [krita, "--export-sequence", "--export-filename", str(out_dir / "frame_.png"),
                str(kra)]
        outputs = {f: out_dir / f"frame_{f:04d}.png" for f in spec.frames}
    else:
        argv = [sys.executable, "-m", "vstudio.jobtypes.krita", str(kra),
                *[str(o) for o in outputs.values()]]
    if krita:  # Krita needs an X display even to export
        argv = xserver.wrap(argv)
    return Invocation(argv=argv, cwd=task_dir, outputs=outputs, parser=PlainParser(),
                      label="krita", names={f: o.name for f, o in outputs.items()})


def extract_merged(kra: Path, dests: list[Path]) -> None:
    """Write the .kra's ``mergedimage.png`` to every destination."""
    try:
        with zipfile.ZipFile(kra) as z:
            data = z.read("mergedimage.png")
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise TaskError(f"{kra.name} is not a Krita file with a merged image ({e})") from None
    for d in dests:
        d.write_bytes(data)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m vstudio.jobtypes.krita FILE.kra OUT.png...", file=sys.stderr)
        return 2
    try:
        extract_merged(Path(argv[0]), [Path(a) for a in argv[1:]])
    except TaskError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    print(f"extracted mergedimage.png from {Path(argv[0]).name} (Krita is not installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
