"""Plan and run a project render: scan, key, look up the cache, render what is new.

``plan()`` decides from stat calls and cache look-ups only; ``run()`` renders the planned
files in dependency order with a pool of ``jobs`` renderer processes, stores each output
under its render key, and assembles every target's output beside the sources.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput, VStudioError
from vstudio.render import cachescope, media, outputs, reads, writer
from vstudio.render.graph import Graph, build
from vstudio.render.keys import KeyMaker
from vstudio.render.layout import Output, files_of
from vstudio.render.project import DEFAULTS, RENDER_DIR, Profile, Project, find_root
from vstudio.render.runner import WarmPool, chunks, run_chunk, task_for
from vstudio.render.statcache import FileCache
from vstudio.render.writer import Writer
from vstudio.store.api import ObjectStore

CACHED = "an output for this render key is in the studio's store"


@dataclass
class Item:
    """One file considered: what was decided and what happened."""

    file: str
    key: str
    status: str  # planned (dry run) | cached | rendered | failed
    frames: int
    seconds: float = 0.0
    profile: str = "default"
    output: str = ""
    reason: str = ""
    error: str = ""
    chunks: int = 0
    warning: str = ""
    # not printed
    path: Path = field(default=Path(), repr=False)
    profile_obj: Profile | None = field(default=None, repr=False)
    frame_list: list[int] = field(default_factory=list, repr=False)
    renderer: str = field(default="", repr=False)
    deps: list[str] = field(default_factory=list, repr=False)
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    inputs: dict[str, str] = field(default_factory=dict, repr=False)
    saved: dict[int, str] = field(default_factory=dict, repr=False)  # frame -> oid stored
    outs: list[Output] = field(default_factory=list, repr=False)  # where it is written
    started: float = field(default=0.0, repr=False)  # when its first chunk started
    blank: bool = field(default=True, repr=False)  # every frame rendered so far is empty

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("path", "profile_obj", "frame_list", "renderer", "deps", "manifest", "inputs",
                  "saved", "outs", "started", "blank"):
            d.pop(k)
        d["seconds"] = round(self.seconds, 3)
        return d


def _quiet(msg: str) -> None:
    pass


@dataclass
class ProjectRender:
    paths: list[Path]
    store: ObjectStore
    profile: str | None = None
    force: bool = False
    jobs: int = 1
    log: Callable[[str], None] = _quiet
    stream: bool = True  # False: a file waits for the whole renders it reads (round-1 way)
    overwrite: bool = False  # replace files under render/ that vstudio did not write
    project: Project = field(init=False)
    files: Writer = field(init=False)  # writes under render/, never over others' files
    cache: FileCache = field(init=False)
    scope: str = field(init=False)  # whose render cache entries these are (cachescope)
    graph: Graph = field(init=False)
    items: list[Item] = field(default_factory=list, init=False)
    # while rendering: frames of each file written where its users read them, and the
    # files some other file of this run reads
    _ready: dict[str, set[int]] = field(default_factory=dict, init=False, repr=False)
    _early: set[str] = field(default_factory=set, init=False, repr=False)

    def plan(self) -> list[Item]:
        if not self.paths:
            raise BadInput("name at least one file or folder to render")
        self.project = Project(find_root(self.paths[0].resolve()))
        for p in self.paths[1:]:
            if self.project.rel(p.resolve()).startswith("/"):
                raise BadInput(f"{p} is outside the project {self.project.root}: "
                               "render one project at a time")
        name = self.project.check_profile(self.profile)
        self.scope = cachescope.scope_for(self.project.root, self.store)
        self.cache = FileCache(self.project.cache_path)
        self.files = Writer(self.project.root, self.cache, self.overwrite)
        self.graph = build(self.project, self.paths, self.cache)
        self.graph.check()
        profiles: dict[str, Profile] = {}

        def profile_of(rel: str) -> Profile:
            if rel not in profiles:
                profiles[rel] = self.project.profile(name, rel)
            return profiles[rel]

        keys = KeyMaker(self.graph, profile_of)
        self.items = [self._item(rel, keys, profile_of(rel)) for rel in self.graph.targets()]
        reads.attach(self)
        self.cache.save()
        return self.items

    def _item(self, rel: str, keys: KeyMaker, profile: Profile) -> Item:
        node = self.graph.nodes[rel]
        if node.scene is None or not node.renderer:
            raise BadInput(f"{rel} has no scene to render")
        start = int(profile.settings.get("start", node.scene.start))
        end = int(profile.settings.get("end", node.scene.end))
        if profile.settings.get("single") is not None:
            start = end = int(profile.settings["single"])
        if end < start:
            raise BadInput(f"{rel}: frame range {start}-{end} is empty")
        key = keys.render_key(rel)
        item = Item(file=rel, key=key, status="planned", frames=end - start + 1,
                    profile=profile.name, path=node.path,
                    profile_obj=profile, frame_list=list(range(start, end + 1)),
                    renderer=node.renderer, deps=list(node.render_deps))
        item.inputs = keys.inputs(rel)
        manifest = None if self.force else outputs.lookup(self.store, self.scope, key)
        if manifest is not None:
            item.status, item.manifest = "cached", manifest
            item.reason = CACHED
        elif self.force:
            item.reason = "--force"
        else:
            item.reason = self._why(item, item.inputs)
        if manifest is None:
            # Chunks an interrupted run already stored are not rendered again.
            item.saved = {} if self.force else outputs.saved_chunks(self.store, self.scope, key)
            todo = self.todo_chunks(item)
            item.chunks = len(todo)
            if item.saved and item.frames:
                item.reason += f" (resuming: {len(item.saved)} frames already rendered)"
        return item

    def todo_chunks(self, item: Item) -> list[list[int]]:
        return [c for c in chunks(item.frame_list, self.chunk_size(item))
                if not all(f in item.saved for f in c)]

    def chunk_size(self, item: Item) -> int:
        """A chunk size the project sets is kept. The default lets vstudio choose: about one
        chunk per slot (start-up and opening the file are paid per chunk), from the default
        up to 4x it, so that frames still reach their users, and interrupted runs resume,
        in steps."""
        size = item.profile_obj.chunk if item.profile_obj else DEFAULTS["chunk"]
        if size != DEFAULTS["chunk"]:
            return size
        even = -(-len(item.frame_list) // max(1, self.jobs))
        return max(size, min(even, 4 * size))

    def _why(self, item: Item, now: dict[str, str]) -> str:
        before = self.cache.last.get(f"{item.profile}:{item.file}")
        if not before:
            return "never rendered with these inputs and settings"
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if not changed:
            return "its output is no longer in the studio's store"
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more"
                                          if len(changed) > 5 else "")
        return f"changed since its last render here: {shown}"

    def _remember(self, item: Item) -> None:
        self.cache.last[f"{item.profile}:{item.file}"] = item.inputs
        self.cache.dirty = True

    # -- running

    def run(self) -> list[Item]:
        items = self.plan() if not self.items else self.items
        reads.convert_audio(self)  # render/X.flac.wav and the like, before what reads them
        by_file = {i.file: i for i in items}
        for item in items:
            if item.status == "cached":
                self.assemble_item(item)
        todo = [i for i in items if i.status == "planned"]
        if todo:
            self._render(todo, by_file)
        self.cache.save()
        return items

    def assemble_item(self, item: Item) -> None:
        assert item.manifest is not None
        tag = item.key + "".join(f"|{o.kind}:{o.pattern}:{o.read}:{o.channel}"
                                 for o in item.outs)
        dests = [self.project.root / o.path for o in item.outs]
        whole = all(os.path.exists(self.project.root / rel)  # a frame deleted: put back
                    for o in item.outs for rel in files_of(o, item.frame_list))
        if whole and all(self.cache.assembled.get(str(d)) == tag for d in dests):
            if self.cache.last.get(f"{item.profile}:{item.file}") != item.inputs:
                self._remember(item)
            return
        try:
            writer.assemble(self.store, item.manifest, item.outs, self.project.root,
                            self.files, lambda out: writer.video_of(self, item, out))
        except VStudioError as e:
            item.status, item.error = "failed", e.message
            return
        for d in dests:
            self.cache.assembled[str(d)] = tag
        self._remember(item)

    def _render(self, todo: list[Item], by_file: dict[str, Item]) -> None:
        """Render chunks on a pool; a chunk of a file that reads another file's render
        starts as soon as the frames it reads are written (frame by frame), not when
        that whole render is done. Chunks of later files (the users) go first, so an
        edit's first frames appear while the shots are still rendering."""
        work = Path(tempfile.mkdtemp(prefix="vstudio-render-"))
        order = {item.file: n for n, item in enumerate(todo)}  # dependency order
        waiting: list[tuple[Item, list[int], dict[str, set[int] | None]]] = []
        running: dict[Future[dict[int, Path]], tuple[Item, list[int], float]] = {}
        left: dict[str, int] = {}
        unfinished: list[Item] = []  # all chunks rendered; waits for its inputs' renders
        self._ready = {}
        self._early = {dep for item in todo for dep in item.deps}
        for item in todo:
            self.log(f"render {item.file} ({item.frames} frames, "
                     f"{item.chunks} chunks, profile {item.profile})")
            todo_chunks = self.todo_chunks(item)
            left[item.file] = len(todo_chunks)
            self._ready[item.file] = set()
            if item.file in self._early:
                self._write_saved(item)
            if not todo_chunks:  # every chunk was stored by an earlier run
                unfinished.append(item)
            waiting += [(item, c, self._needs(item, c, by_file)) for c in todo_chunks]
        slots = max(1, self.jobs)
        warm = sum(1 for i in todo if i.renderer == "blender" for _ in self.todo_chunks(i))
        sessions = WarmPool(work, min(slots, warm)) if warm else None
        try:
            with ThreadPoolExecutor(max_workers=slots) as pool:
                while waiting or running or unfinished:
                    moved = False  # anything finished or started this round
                    for item in list(unfinished):
                        state = self.deps_state(item, by_file)
                        if state == "wait":
                            continue
                        unfinished.remove(item)
                        moved = True
                        if state != "ok":
                            item.status, item.error = "failed", state
                        elif item.status != "failed":
                            self._finish(item)
                    ready = []
                    for entry in list(waiting):
                        item, chunk, needs = entry
                        state = self._chunk_state(item, needs, by_file)
                        if state == "wait":
                            continue
                        if state == "ok" and item.status != "failed":
                            ready.append(entry)
                            continue
                        waiting.remove(entry)  # its file or a file it reads failed
                        moved = True
                        if item.status != "failed":
                            item.status, item.error = "failed", state
                    ready.sort(key=lambda e: (-order[e[0].file], e[1][0]))
                    for item, chunk, needs in ready[:max(0, slots - len(running))]:
                        waiting.remove((item, chunk, needs))
                        moved = True
                        missing = reads.missing_now(self, item, chunk)
                        if missing:  # never render a chunk that would read nothing
                            item.status, item.error = "failed", missing
                            continue
                        item.started = item.started or time.monotonic()
                        early = [d for d in needs if by_file[d].status == "planned"]
                        if early:
                            self.log(f"{item.file} frames {chunk[0]}-{chunk[-1]}: start with "
                                     f"the frames they read of {', '.join(early)}")
                        task = task_for(item.path, item.renderer, self.graph.nodes[
                            item.file].scene, item.profile_obj or Profile("default"), chunk)
                        fut = pool.submit(run_chunk, task, work / item.key[:16] / str(chunk[0]),
                                          self._remap(item), sessions, item.key)
                        running[fut] = (item, chunk, time.monotonic())
                    if not running:
                        if not moved:  # stuck: cannot happen with an acyclic graph
                            for item in [e[0] for e in waiting] + unfinished:
                                item.status, item.error = "failed", ("its dependencies never "
                                                                     "finished")
                            waiting.clear()
                            unfinished.clear()
                        continue
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in done:
                        item, chunk, _ = running.pop(fut)
                        item.seconds = time.monotonic() - item.started  # wall time
                        left[item.file] -= 1
                        try:
                            files = fut.result()
                            item.blank = item.blank and all(
                                media.png_blank(f) for f in files.values())
                            item.saved.update(outputs.save_chunk(
                                self.store, self.scope, item.key, files))
                            self._publish_frames(item, files)
                        except VStudioError as e:
                            item.status, item.error = "failed", e.message
                        if left[item.file] == 0 and item.status != "failed":
                            unfinished.append(item)
        finally:
            if sessions is not None:
                sessions.close()
            shutil.rmtree(work, ignore_errors=True)

    def _needs(self, item: Item, chunk: list[int],
               by_file: dict[str, Item]) -> dict[str, set[int] | None]:
        """Per render it reads: the frames ``chunk`` reads, or None for "all of it"."""
        out: dict[str, set[int] | None] = {d: set() for d in item.deps if d in by_file}
        seen: set[str] = set()
        for r in reads.reads_of(self, item.file):
            if r.dep not in out:
                continue
            d = by_file[r.dep]
            frames = reads.frames_read(r, chunk) if r.output and r.output.kind == "frames" \
                else None
            if self.stream:
                seen.add(r.dep)
            known = out[r.dep]
            out[r.dep] = None if frames is None or known is None else (
                known | (frames & set(d.frame_list)))
        # a render read in a way not traced to a use here: wait for all of it
        return {dep: (frames if dep in seen else None) for dep, frames in out.items()}

    def _chunk_state(self, item: Item, needs: dict[str, set[int] | None],
                     by_file: dict[str, Item]) -> str:
        for dep, frames in needs.items():
            d = by_file[dep]
            if d.status == "failed":
                return f"not rendered: it needs {dep}, which failed"
            if d.status == "planned" and (frames is None or not frames <= self._ready[dep]):
                return "wait"
        return "ok"

    def _publish_frames(self, item: Item, files: dict[int, Path]) -> None:
        """Move a chunk's frames where its users read them, if any user renders now."""
        outs = [o for o in item.outs if o.kind == "frames"]
        if item.file not in self._early or not outs:
            for f in files.values():
                f.unlink(missing_ok=True)  # in the store now
            return
        plain = [o for o in outs if not o.channel]
        for frame, f in files.items():
            for o in outs:
                if o.channel:  # extract_alpha: the colour or the alpha of the frame
                    self.files.put(self.project.root / o.frame_file(frame), None,
                                   partial(media.channel_png, f, o.channel))
            for o in plain[1:]:
                self.files.put(self.project.root / o.frame_file(frame), None,
                               partial(shutil.copyfile, f))
            if plain:
                self.files.move_in(f, self.project.root / plain[0].frame_file(frame))
            else:
                f.unlink(missing_ok=True)  # in the store
            self._ready[item.file].add(frame)

    def _write_saved(self, item: Item) -> None:
        """Frames an earlier, interrupted run stored: on disk for users reading them now."""
        outs = [o for o in item.outs if o.kind == "frames"]
        if not item.saved or not outs:
            return
        try:
            for frame, oid in item.saved.items():
                for o in outs:
                    self.files.put(self.project.root / o.frame_file(frame),
                                   *writer.source(self.store, oid, o.channel))
                self._ready[item.file].add(frame)
        except VStudioError as e:
            item.status, item.error = "failed", e.message

    def deps_state(self, item: Item, by_file: dict[str, Item]) -> str:
        for dep in item.deps:
            d = by_file.get(dep)
            if d is None:
                continue
            if d.status == "failed":
                return f"not rendered: it needs {dep}, which failed"
            if d.status == "planned":
                return "wait"
        return "ok"

    def _finish(self, item: Item) -> None:
        profile = item.profile_obj or Profile("default")
        scene = self.graph.nodes[item.file].scene
        fps = scene.fps if scene else 24.0
        info = {"file": item.file, "profile": profile.name, "renderer": item.renderer,
                "seconds": round(item.seconds, 3)}
        ids = {f: item.saved[f] for f in item.frame_list}
        # frames only: videos are encoded from them when assembled (writer.video_of)
        item.manifest = outputs.publish(self.store, self.scope, item.key, info, ids,
                                        "exr" if profile.format == "exr" else "png", fps)
        item.status = "rendered"
        self.assemble_item(item)
        self._check_blank(item)
        if item.status == "rendered":
            self.log(f"rendered {item.file} -> {item.output} ({item.seconds:.1f} s)")

    def judge_stored(self, item: Item) -> None:
        """The empty-output check for a render made elsewhere (the farm): its frames are
        read back from the store until one is not empty (mostly the first)."""
        assert item.manifest is not None
        frames = sorted((int(f), str(oid)) for f, oid in item.manifest["frames"])
        with tempfile.TemporaryDirectory(prefix="vstudio-blank-") as tmp:
            for f, oid in frames:
                path = Path(tmp) / f"{f}.png"
                try:
                    self.store.get_file(oid, path)
                except (OSError, VStudioError):
                    return  # not judged; assembling it has already said what is wrong
                if not media.png_blank(path):
                    item.blank = False
                    return
        item.blank = bool(frames)
        if item.blank:
            self._check_blank(item, whole=True)

    def _check_blank(self, item: Item, whole: bool = False) -> None:
        """Loudly warn when every frame came out empty although what it reads is not."""
        if not item.blank or (not whole and len(item.saved) < len(item.frame_list)):
            return
        by_file = {i.file: i for i in self.items}
        # a render taken from the cache was not looked at: it counts as not empty
        inputs = [d for d in item.deps if d in by_file and (
            by_file[d].status == "cached" or not by_file[d].blank)] + [
            f for f in self.graph.nodes[item.file].file_deps if not f.endswith(".blend")]
        if inputs:
            item.warning = (f"every frame of {item.file} is empty (all pixels 0: fully "
                            f"transparent) although it reads {', '.join(inputs[:3])}")
            self.log("WARNING: " + item.warning)

    def _remap(self, item: Item) -> list[tuple[str, str]] | None:
        """For a named profile, reads of render/<dep>.* go to render/<profile>/<dep>.*."""
        if item.profile_obj is None or item.profile_obj.is_default or not item.deps:
            return None
        base = self.project.root / RENDER_DIR
        return [(f"{base / dep}.", f"{base / item.profile / dep}.") for dep in item.deps]
