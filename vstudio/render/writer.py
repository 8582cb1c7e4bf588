"""Writing renders beside the sources, never touching what vstudio did not write.

Every file vstudio writes under ``render/`` is recorded (path, size, mtime) in the
project's render cache. A file in the way that is not in that record (a RenderChan render,
an artist's file) is left alone: when its bytes are the ones vstudio would write it is
adopted, otherwise the render fails naming it (``--overwrite`` replaces it). Stale frames
are removed only when vstudio wrote them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vstudio.errors import VStudioError
from vstudio.render import media
from vstudio.render.layout import Output
from vstudio.render.statcache import FileCache, content_id
from vstudio.store.api import ObjectStore

if TYPE_CHECKING:
    from vstudio.render.engine import Item, ProjectRender


class Foreign(VStudioError):
    """A file where the render goes was not written by vstudio."""


class Writer:
    def __init__(self, root: Path, cache: FileCache, overwrite: bool = False) -> None:
        self.root = root
        self.cache = cache
        self.overwrite = overwrite

    def ours(self, path: Path) -> bool:
        entry = self.cache.written.get(str(path))
        if not entry:
            return False
        try:
            st = path.stat()
        except OSError:
            return False
        return [st.st_size, st.st_mtime_ns] == list(entry[:2])

    def note(self, path: Path, oid: str | None = None) -> None:
        st = path.stat()
        self.cache.written[str(path)] = [st.st_size, st.st_mtime_ns, *([oid] if oid else [])]
        self.cache.dirty = True

    def _foreign(self, path: Path) -> Foreign:
        rel = os.path.relpath(path, self.root)
        return Foreign(f"{rel} was not written by vstudio (a RenderChan render, or someone's "
                       "file): move it away, or pass --overwrite to replace it")

    def _clear(self, path: Path, oid: str | None) -> bool:
        """Make room for a file at ``path``; True when it already holds ``oid``'s bytes."""
        if path.is_dir() and not path.is_symlink():
            inside = sorted(path.rglob("*"), reverse=True)  # files before their folders
            for f in inside:
                if not f.is_dir() and not (self.ours(f) or self.overwrite):
                    raise self._foreign(f)
            for f in inside:
                f.rmdir() if f.is_dir() else f.unlink()
            path.rmdir()
            return False
        if not (path.exists() or path.is_symlink()):
            return False
        if self.ours(path):
            return False
        if oid is not None and path.is_file() and content_id(path) == oid:
            self.note(path, oid)  # the same bytes: adopt it
            return True
        if not self.overwrite:
            raise self._foreign(path)
        return False

    def _folder(self, folder: Path) -> None:
        if folder.is_dir():
            return
        if folder.exists() or folder.is_symlink():  # a file where a folder goes
            self._clear(folder, None)
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, path: Path, oid: str | None, fill: Callable[[Path], Any]) -> None:
        """Write ``path`` through ``fill(tmp)`` unless it already holds ``oid``'s bytes."""
        if oid is not None and self.ours(path) and \
                self.cache.written[str(path)][2:] == [oid]:
            return  # vstudio wrote these very bytes
        if self._clear(path, oid):
            return
        self._folder(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fill(tmp)
        os.replace(tmp, path)
        self.note(path, oid)

    def move_in(self, src: Path, path: Path) -> None:
        """Move a freshly rendered file to ``path`` (streaming frames to their readers)."""
        self.put(path, None, lambda tmp: os.replace(src, tmp))

    def prune(self, folder: Path, keep: set[str]) -> None:
        """Remove vstudio's own frames of an earlier, longer render from ``folder``."""
        if not folder.is_dir():
            return
        for old in folder.iterdir():
            if old.is_file() and old.name not in keep and old.suffix == ".png" \
                    and self.ours(old):
                old.unlink()
                self.cache.written.pop(str(old), None)


def assemble(store: ObjectStore, manifest: dict[str, Any], outs: list[Output], root: Path,
             writer: Writer, video: Callable[[Output], str]) -> None:
    """Write a cached render as each of ``outs`` (``video(out)`` gives a video's id)."""
    frames = {int(f): str(oid) for f, oid in manifest["frames"]}
    keep: dict[Path, set[str]] = {}  # per frames folder: the names some output writes
    for out in outs:
        dest = root / out.path
        if out.kind in ("frames", "list"):
            folder = root / out.frames_dir
            writer._folder(folder)
            names = keep.setdefault(folder, set())
            for f, oid in sorted(frames.items()):
                name = out.pattern.format(f)
                names.add(name)
                writer.put(folder / name, *source(store, oid, out.channel))
            if out.kind == "list":
                writer.put(dest, None, partial(_write_text, list_text(manifest, out)))
        elif out.kind == "single":
            frame = out.single if out.single in frames else min(frames)
            writer.put(dest, *source(store, frames[frame], out.channel))
        else:
            oid = video(out)
            writer.put(dest, oid, partial(_fetch, store, oid))
    for folder, names in keep.items():
        writer.prune(folder, names)


def source(store: ObjectStore, oid: str, channel: str = "") -> tuple[str, Callable[[Path], Any]]:
    """What ``Writer.put`` takes to write stored frame ``oid`` as ``channel`` ("" as
    rendered): a tag of the bytes written and how to write them."""
    if not channel:
        return oid, partial(_fetch, store, oid)
    return f"{oid}:{channel}", partial(_fetch_channel, store, oid, channel)


def _fetch_channel(store: ObjectStore, oid: str, channel: str, dest: Path) -> None:
    rgba = dest.with_name(dest.name + ".rgba")
    try:
        store.get_file(oid, rgba)
        media.channel_png(rgba, channel, dest)
    finally:
        rgba.unlink(missing_ok=True)


def list_text(manifest: dict[str, Any], out: Output) -> str:
    """RenderChan's image list: ``FPS n``, then each frame file from the list's folder."""
    fps = manifest.get("fps") or 24
    folder = out.frames_dir.rsplit("/", 1)[-1]
    return f"FPS {fps:g}\n" + "".join(
        f"{folder}/{out.pattern.format(int(f))}\n" for f, _ in sorted(
            manifest["frames"], key=lambda fo: int(fo[0])))


def _fetch(store: ObjectStore, oid: str, dest: Path) -> None:
    store.get_file(oid, dest)


def _write_text(text: str, dest: Path) -> None:
    dest.write_text(text, encoding="utf-8")


def make_video(store: ObjectStore, manifest: dict[str, Any], container: str, codec: str,
               crf: int | None, audio: str | None, audio_rate: int, fps: float) -> str:
    """Encode the manifest's frames (and sound) as one video in the store; its id."""
    with tempfile.TemporaryDirectory(prefix="vstudio-encode-") as tmp:
        files = []
        for f, oid in sorted((int(f), str(o)) for f, o in manifest["frames"]):
            files.append(Path(tmp) / f"in{f:08d}.png")
            store.get_file(oid, files[-1])
        wav = None
        if audio:
            wav = Path(tmp) / "sound.wav"
            store.get_file(audio, wav)
        out = media.encode(files, fps, Path(tmp) / f"video.{container}", codec, crf, wav,
                           audio_rate)
        return store.put_file(out)


def video_of(job: ProjectRender, item: Item, out: Output) -> str:
    """The store id of ``item``'s render encoded as ``out`` (made once, then cached in
    its manifest), with the sound of a Blender scene that has any."""
    from vstudio.render import outputs, reads

    manifest = item.manifest
    assert manifest is not None
    spec = reads.video_spec(item, out)
    sound = item.renderer == "blender" and any(
        u.kind == "sound" or u.path.lower().endswith(media.AUDIO_EXTS)
        for u in job.graph.nodes[item.file].uses)
    name = json.dumps({**spec, "sound": sound}, sort_keys=True)
    videos = manifest.setdefault("videos", {})
    if name in videos:
        return str(videos[name])
    audio = None
    if sound:
        slot = f"audio:{spec['audio_rate']}"
        if slot not in manifest:
            with tempfile.TemporaryDirectory(prefix="vstudio-sound-") as tmp:
                wav = media.mixdown(item.path, item.frame_list[0], item.frame_list[-1],
                                    spec["audio_rate"], Path(tmp) / "sound.wav")
                manifest[slot] = job.store.put_file(wav)
        audio = str(manifest[slot])
    settings = item.profile_obj.settings if item.profile_obj else {}
    fps = float(settings.get("fps") or manifest.get("fps") or 24)
    videos[name] = make_video(job.store, manifest, spec["container"], spec["codec"],
                              spec["crf"], audio, spec["audio_rate"], fps)
    outputs.save_manifest(job.store, job.scope, item.key, manifest)
    return str(videos[name])
