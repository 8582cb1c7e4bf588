"""What each render must write so that the files reading it find every file they read.

``attach`` gives every planned item its outputs (``layout.Output``) from the paths other
files read, and fails a reader at once when it reads a render path that no render writes
(a misnamed strip, a frame past the end of a shot): never a silent empty render.
``missing_now`` checks, right before a chunk runs, that each file it reads is on disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from vstudio.errors import BadInput
from vstudio.render import layout
from vstudio.render.layout import Output
from vstudio.render.model import Use

if TYPE_CHECKING:
    from vstudio.render.engine import Item, ProjectRender


@dataclass(frozen=True)
class Read:
    """One use of another file's render by a file."""

    use: Use
    dep: str  # the source whose render is read
    path: str  # project-relative path read
    output: Output | None  # the output it asks for (None: no render writes such a path)


def reads_of(job: ProjectRender, rel: str) -> Iterator[Read]:
    project = job.project
    by_file = {i.file: i for i in job.items}
    for use in job.graph.nodes[rel].uses:
        dep = project.source_of_output(use.path, lambda p: p.is_file())
        if dep is None:
            continue
        node = job.graph.nodes.get(dep)
        d = by_file.get(dep)
        single = d.profile_obj.settings.get("single") if d and d.profile_obj else None
        read = project.rel(use.path)
        yield Read(use, dep, read, layout.output_read(
            read, dep, use.kind, node.renderer if node else None, single))


def _rebase(out: Output, base: str) -> Output:
    if base == layout.RENDER_DIR:
        return out
    return replace(out, path=base + out.path[len(layout.RENDER_DIR):])


def attach(job: ProjectRender) -> None:
    """Set each item's outputs; fail the items whose reads no render would write."""
    wanted: dict[str, list[Output]] = {}
    errors: dict[str, str] = {}
    for rel in job.graph.nodes:
        for r in reads_of(job, rel):
            if r.output is None:
                errors.setdefault(rel, f"{r.path} is read by {rel} ({_what(r.use)}) but no "
                                       f"render writes it: {r.dep} renders "
                                       "render/PATH.png/NAME.png frames or "
                                       "render/PATH.mp4|avi|mov")
            elif replace(r.output, read=True) not in wanted.setdefault(r.dep, []):
                wanted[r.dep].append(replace(r.output, read=True))
    for item in job.items:
        profile = item.profile_obj
        base = layout.base_dir(item.profile, profile is not None and not profile.is_default)
        single = profile.settings.get("single") if profile else None
        fmt = profile.format if profile else "png"
        default = layout.default_output(
            item.file, fmt, item.renderer, job.project.renderchan, layout.RENDER_DIR, single,
            still=len(item.frame_list) == 1)
        outs = wanted.get(item.file) or [default]
        if profile is not None and profile.settings.get("extract_alpha"):
            if all(o.channel == "alpha" for o in outs):  # only render/a.sif-alpha.png read:
                outs = [*outs, default]  # the colour frames are written as RenderChan does
            outs = layout.extract_alpha(outs)
        item.outs = [_rebase(o, base) for o in outs]
        item.output = item.outs[0].path
        clash = _clash(item.outs)
        if clash:
            _fail(item, f"{clash} is read both as one file and as a folder of frames")
        want = "exr" if fmt == "exr" else "png"
        if want == "exr" and any(o.channel for o in item.outs):
            _fail(item, f"{item.file}: extract_alpha writes PNG frames; it cannot be "
                        "combined with FORMAT=exr")
            continue
        other = next((o for o in item.outs if layout.image_ext(o) not in ("", want)
                      or (want == "exr" and o.kind == "video")), None)
        if other is not None:
            # the frames are rendered in one format, set before anything is read
            read = (layout.image_ext(other) or "video").upper()
            _fail(item, f"{other.path} is read as {read}, but {item.file} renders "
                        f"{want.upper()} frames (FORMAT={fmt}): set FORMAT in "
                        f"{item.file}.conf to what its readers read")
    by_file = {i.file: i for i in job.items}
    for item in job.items:
        error = errors.get(item.file) or _past_the_end(job, item, by_file)
        if error:
            _fail(item, error)


def _fail(item: Item, error: str) -> None:
    item.status, item.error, item.manifest, item.chunks = "failed", error, None, 0


def _what(use: Use) -> str:
    return f"{use.kind} {use.detail}".strip()


def _clash(outs: list[Output]) -> str:
    files = {o.path for o in outs if o.kind in ("video", "single", "list")}
    folders = {o.frames_dir for o in outs if o.kind in ("frames", "list")}
    both = files & folders
    return sorted(both)[0] if both else ""


def frames_read(r: Read, frames: list[int]) -> set[int] | None:
    """The frame numbers of the render that ``frames`` of the reader read (None: all)."""
    if r.output is None or r.output.kind not in ("frames", "list"):
        return None
    if r.use.kind == "sequence":
        shown = r.use.frames_for(frames)
        if shown is not None:
            return shown
        first = layout.frame_number(r.path)
        return {first} if first is not None else None
    n = layout.frame_number(r.path)
    return {n} if n is not None else None


def _past_the_end(job: ProjectRender, item: Item, by_file: dict[str, Item]) -> str:
    for r in reads_of(job, item.file):
        d = by_file.get(r.dep)
        if d is None or r.output is None:
            continue
        if r.output.kind == "single":
            if d.profile_obj and d.profile_obj.settings.get("single") is None and \
                    len(d.frame_list) != 1:
                return (f"{r.path} is read by {item.file} as one image, but {r.dep} renders "
                        f"{len(d.frame_list)} frames (set SINGLE=N in {r.dep}.conf)")
            continue
        wanted = frames_read(r, item.frame_list)
        if wanted is None:
            continue
        beyond = sorted(wanted - set(d.frame_list))
        if beyond:
            have = f"{d.frame_list[0]}-{d.frame_list[-1]}" if d.frame_list else "none"
            return (f"{r.output.frame_file(beyond[0])} is read by {item.file} "
                    f"({_what(r.use)}) but no render writes it: {r.dep} renders frames {have}")
    return ""


def missing_now(job: ProjectRender, item: Item, chunk: list[int]) -> str:
    """A file that ``chunk`` of ``item`` reads and that is not on disk, named; else ""."""
    by_file = {i.file: i for i in job.items}
    root = job.project.root
    for r in reads_of(job, item.file):
        d = by_file.get(r.dep)
        if d is None or r.output is None:
            continue
        out = next((o for o in d.outs if o.kind == r.output.kind and (
            o.pattern == r.output.pattern)), None) or r.output
        wanted = frames_read(r, chunk)
        frames = sorted(set(d.frame_list) & wanted) if wanted is not None else d.frame_list
        for rel in layout.files_of(out, frames):
            if not os.path.exists(root / rel):
                return (f"{rel} is missing: {item.file} reads it ({_what(r.use)}) and the "
                        f"render of {r.dep} did not write it")
    return ""


def video_spec(item: Item, out: Output) -> dict[str, Any]:
    """How ``out`` is encoded: lossless when another file reads it, else the profile's."""
    s = item.profile_obj.settings if item.profile_obj else {}
    codec = str(s.get("codec", "h264"))
    if out.read and not codec.startswith("lossless"):
        codec = "lossless"
    return {"container": out.container, "codec": codec,
            "crf": None if codec.startswith("lossless") else s.get("crf"),
            "audio_rate": int(s.get("audio_rate", 48000))}


def reads_video(job: ProjectRender, item: Item, dep: str) -> bool:
    """Whether ``item`` reads ``dep``'s render as one file (a video, a list, an image)."""
    return any(r.dep == dep and r.output is not None and r.output.kind != "frames"
               for r in reads_of(job, item.file))


def cached_inputs(job: ProjectRender, item: Item) -> dict[str, str]:
    """Renders of finished files that ``item`` reads, where it reads them: path -> id
    (a farm task gets them as inputs)."""
    from vstudio.render.writer import list_text, video_of

    by_file = {i.file: i for i in job.items}
    out: dict[str, str] = {}
    for use in job.graph.nodes[item.file].uses:  # converted sound files it reads
        converted = job.project.rel(use.path)
        if converted in job.graph.conversions:
            out[converted] = job.store.put_file(job.project.root / converted)
    for r in reads_of(job, item.file):
        d = by_file.get(r.dep)
        if d is None or d.manifest is None or r.output is None:
            continue
        frames = {int(f): str(oid) for f, oid in d.manifest["frames"]}
        if r.output.kind == "video":
            out[r.path] = video_of(job, d, next(
                (o for o in d.outs if o.kind == "video" and o.path == r.output.path),
                r.output))
        elif r.output.kind == "single":
            one = r.output.single if r.output.single in frames else min(frames)
            out[r.path] = frames[one]
        else:  # frames, or a list of them: the list goes with its frames
            for f, oid in frames.items():
                out[r.output.frame_file(f)] = oid
            if r.output.kind == "list":
                out[r.path] = job.store.put_bytes(list_text(d.manifest, r.output).encode())
    return out


def convert_audio(job: ProjectRender) -> None:
    """Write ``render/X.wav`` for each sound file X that a file reads that way, at the
    profile's AUDIO_RATE, as RenderChan does (its flac, mp3 and vorbis modules)."""
    import shutil
    import subprocess
    from functools import partial

    ffmpeg = shutil.which("ffmpeg")
    for dest, source in sorted(job.graph.conversions.items()):
        node = job.graph.nodes[source]
        rate = int(job.project.profile(job.profile or job.project.default_profile, source)
                   .settings.get("audio_rate", 48000))
        if not ffmpeg:
            raise BadInput(f"{dest}: converting {source} needs ffmpeg "
                           "(apt-get install ffmpeg)")
        tag = f"{node.cid}:{rate}"
        job.files.put(job.project.root / dest, tag,
                      partial(_to_wav, ffmpeg, subprocess, node.path, rate))


def _to_wav(ffmpeg: str, subprocess: Any, source: Any, rate: int, dest: Any) -> None:
    proc = subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(source), "-ar",
                           str(rate), "-c:a", "pcm_s16le", "-f", "wav", str(dest)],
                          capture_output=True, text=True, errors="replace")
    if proc.returncode != 0:
        raise BadInput(f"cannot convert {source} to WAV: {proc.stderr.strip()[-300:]}")
