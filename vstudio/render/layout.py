"""Where a render is written and under which names: vstudio's layout and RenderChan's.

An *output* is one form a render takes beside the sources:

- ``frames``: a folder of PNG frames named by a pattern: vstudio's ``render/a.sif.png/0001.png``
  or RenderChan's ``render/a.blend.png/file.00001.png`` (5 digits for Blender, 4 for the
  others, as their renderers number them);
- ``video``: one file, ``render/a.blend.mp4`` (or ``.avi``, ``.mov``);
- ``single``: one image for one frame, ``render/a.sif.png`` (RenderChan's ``SINGLE=N``, and
  what its GIMP, Inkscape and Krita modules write for an image: ``render/a.xcf.png``);
- ``list``: RenderChan's ``render/a.blend.lst`` (``FPS n`` then the frame files), written
  beside its frames folder.

When a file reads another file's render, the path it reads decides the output: reading
``render/s1.blend.mp4`` asks for a video, ``render/s1.blend.png/file.00001.png`` for
frames named ``file.NNNNN.png``. A render nobody reads takes the project's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

RENDER_DIR = "render"
VIDEO = ("mp4", "avi", "mov")
KINDS = ("frames", "video", "single", "list")
# RenderChan modules that write one image file (render/a.xcf.png), not a frames folder;
# Krita's does so for a still (a document without keyframes)
ONE_IMAGE = ("gimp", "inkscape")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class Output:
    kind: str  # frames | video | single | list
    path: str  # project-relative: the frames folder, the video, the image or the list
    pattern: str = ""  # frames and list: a str.format pattern of one frame number
    single: int | None = None  # single: the frame it shows
    read: bool = False  # another file reads it: videos are then lossless
    # "" as rendered; RenderChan's extract_alpha: "rgb" the colour without alpha, "alpha"
    # the alpha as a grey picture (what Synfig's -x writes)
    channel: str = ""

    def frame_file(self, frame: int) -> str:
        """Project-relative path of ``frame`` in a frames (or list) output."""
        return f"{self.frames_dir}/{self.pattern.format(frame)}"

    @property
    def frames_dir(self) -> str:
        return self.path[:-len(".lst")] + ".png" if self.kind == "list" else self.path

    @property
    def container(self) -> str:
        return self.path.rsplit(".", 1)[-1].lower() if self.kind == "video" else ""

    def describe(self, frames: list[int]) -> str:
        if self.kind in ("frames", "list") and frames:
            return self.frame_file(frames[0]) + (
                f" … {self.pattern.format(frames[-1])}" if len(frames) > 1 else "")
        return self.path


def pattern_of(name: str) -> str | None:
    """``file.00001.png`` -> ``file.{:05d}.png``; None when the name has no number."""
    m = _NUMBERED.match(name)
    if not m:
        return None
    head = m[1].replace("{", "{{").replace("}", "}}")
    tail = m[3].replace("{", "{{").replace("}", "}}")
    return f"{head}{{:0{len(m[2])}d}}{tail}"


def upstream_pattern(read: str) -> str:
    """A frame file read (``render/a.png/file.00001.png``) as a pattern of a named frame
    number (``render/a.png/file.{frame:05d}.png``), as farm blocks name upstream frames."""
    folder, _, name = read.rpartition("/")
    pattern = pattern_of(name) or "{:04d}.png"
    esc = folder.replace("{", "{{").replace("}", "}}")
    return f"{esc}/{pattern.replace('{:', '{frame:')}"


def frame_number(name: str) -> int | None:
    m = _NUMBERED.match(name.rsplit("/", 1)[-1])
    return int(m[2]) if m else None


def base_dir(profile: str, in_folder: bool) -> str:
    """``render`` or, for a named profile kept beside the default, ``render/<profile>``."""
    return f"{RENDER_DIR}/{profile}" if in_folder else RENDER_DIR


def renderchan_pattern(renderer: str | None, ext: str = "png") -> str:
    if renderer == "pencil2d":  # Pencil2D numbers PREFIX0001.png, without a separator
        return "file{:04d}." + ext
    return ("file.{:05d}." if renderer == "blender" else "file.{:04d}.") + ext


def default_output(rel: str, fmt: str, renderer: str | None, renderchan: bool, base: str,
                   single: int | None = None, still: bool = False) -> Output:
    """The output of a render no other file reads (``still``: a Krita still)."""
    ext = "exr" if fmt == "exr" else "png"
    one = renderer in ONE_IMAGE or (renderer == "krita" and still)
    if single is not None or (renderchan and one and fmt not in VIDEO):
        return Output("single", f"{base}/{rel}.{ext}", single=single)
    if fmt in VIDEO:
        return Output("video", f"{base}/{rel}.{fmt}")
    pattern = renderchan_pattern(renderer, ext) if renderchan else "{:04d}." + ext
    return Output("frames", f"{base}/{rel}.{ext}", pattern)


def image_ext(out: Output) -> str:
    """The image format an output's files are in: png or exr ("" for a video)."""
    if out.kind == "video":
        return ""
    name = out.pattern if out.kind in ("frames", "list") else out.path
    return "exr" if name.lower().endswith(".exr") else "png"


def split_read(read: str, dep: str) -> tuple[str, str] | None:
    """A project-relative path read from ``dep``'s render -> (extension, rest after it).

    ``render/s1.blend.png/file.00001.png`` with dep ``s1.blend`` -> ("png", "file.00001.png").
    """
    if not read.startswith(RENDER_DIR + "/"):
        return None
    tail = read[len(RENDER_DIR) + 1:]
    if not tail.startswith(dep + "."):
        return None
    ext, _, rest = tail[len(dep) + 1:].partition("/")
    return ext.lower(), rest


def output_read(read: str, dep: str, kind: str, renderer: str | None,
                single: int | None) -> Output | None:
    """The output of ``dep`` that reading ``read`` (project-relative) asks for, if any.

    RenderChan's separate alpha render, ``render/a.sif-alpha.png/file.0001.png`` (or
    ``render/a.sif-alpha.png``), is the alpha of ``a.sif``'s frames as grey pictures."""
    prefix = f"{RENDER_DIR}/{dep}-alpha."
    if read.startswith(prefix):
        out = output_read(f"{RENDER_DIR}/{dep}.{read[len(prefix):]}", dep, kind, renderer,
                          single)
        if out is None or out.kind not in ("frames", "single"):
            return None
        ext = out.path[len(f"{RENDER_DIR}/{dep}"):]  # ".png"
        return replace(out, path=f"{RENDER_DIR}/{dep}-alpha{ext}", channel="alpha")
    parts = split_read(read, dep)
    if parts is None:
        return None
    ext, rest = parts
    base = f"{RENDER_DIR}/{dep}"
    if ext in VIDEO and not rest:
        return Output("video", f"{base}.{ext}")
    if ext == "lst" and not rest:
        return Output("list", f"{base}.lst", renderchan_pattern(renderer))
    if ext not in ("png", "exr"):
        return None
    if not rest:
        if kind == "sequence":
            return None
        return Output("single", f"{base}.{ext}", single=single)
    if "/" in rest:
        return None
    pattern = pattern_of(rest)
    if pattern is None or not pattern.endswith("." + ext):
        return None
    return Output("frames", f"{base}.{ext}", pattern)


def files_of(output: Output, frames: list[int]) -> list[str]:
    """Every project-relative file ``output`` holds for ``frames``."""
    if output.kind in ("video", "single"):
        return [output.path]
    names = [output.frame_file(f) for f in frames]
    return [*names, output.path] if output.kind == "list" else names


def alpha_pattern(pattern: str) -> str:
    """Synfig's name for the alpha frames (``-x``): ``file.{:04d}.png`` ->
    ``file-alpha.{:04d}.png``, ``{:04d}.png`` -> ``-alpha{:04d}.png``."""
    head, brace, rest = pattern.partition("{")
    return (head[:-1] + "-alpha." if head.endswith(".") else head + "-alpha") + brace + rest


def extract_alpha(outs: list[Output]) -> list[Output]:
    """The outputs of a render with RenderChan's ``extract_alpha``: each frames folder
    holds the colour frames (``file.0001.png``) and the alpha frames
    (``file-alpha.0001.png``) side by side, and a single image ``render/a.sif.png`` gets
    ``render/a.sif-alpha.png``, as RenderChan's Synfig module leaves them. Frames a reader
    reads by their ``-alpha`` name are the alpha; videos stay as rendered."""
    out: list[Output] = []
    for o in outs:
        if o.channel:  # already one channel: RenderChan's render/a.sif-alpha.png
            out.append(o)
        elif o.kind in ("frames", "list") and "-alpha" in o.pattern.partition("{")[0]:
            out.append(replace(o, channel="alpha"))
        elif o.kind in ("frames", "list"):
            out += [replace(o, channel="rgb"),
                    Output("frames", o.frames_dir, alpha_pattern(o.pattern), channel="alpha")]
        elif o.kind == "single":
            stem = o.path[:-len(".png")] if o.path.endswith(".png") else o.path
            out += [replace(o, channel="rgb"),
                    Output("single", f"{stem}-alpha.png", single=o.single, channel="alpha")]
        else:
            out.append(o)
    seen: set[tuple[str, str, str, str]] = set()
    unique = []
    for o in out:
        if (o.kind, o.path, o.pattern, o.channel) not in seen:
            seen.add((o.kind, o.path, o.pattern, o.channel))
            unique.append(o)
    return unique
