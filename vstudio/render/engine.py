"""Plan a project render: scan, key, look up the cache; then render what is new.

``plan()`` decides from stat calls and cache look-ups only; ``run()`` renders the planned
files in dependency order on this machine (``localrun``: a pool of ``jobs`` renderer
processes), stores each output under its render key, and assembles every target's output
beside the sources. A server that refuses its render cache to this user (a revoked right,
a worker token) makes this a render without the cache (``nocache``), not a failure.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from vstudio.errors import BadInput, PermissionDenied, VStudioError
from vstudio.render import cachescope, media, nocache, outputs, reads, writer
from vstudio.render.graph import Graph, build
from vstudio.render.keys import KeyMaker
from vstudio.render.layout import Output, files_of
from vstudio.render.localrun import LocalRun
from vstudio.render.project import DEFAULTS, Profile, Project, find_root
from vstudio.render.runner import chunks
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
    # Rendered by the farm, whose nodes read their inputs from ``store`` (a refused cache
    # keeps the store for objects then, not only its cache: ``nocache``).
    farm: bool = False
    warnings: list[str] = field(default_factory=list, init=False)  # one line each
    cache_refused: bool = field(default=False, init=False)  # renders without the cache
    project: Project = field(init=False)
    files: Writer = field(init=False)  # writes under render/, never over others' files
    cache: FileCache = field(init=False)
    scope: str = field(init=False)  # whose render cache entries these are (cachescope)
    graph: Graph = field(init=False)
    items: list[Item] = field(default_factory=list, init=False)

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
        targets = self.graph.targets()
        try:
            self.items = [self._item(rel, keys, profile_of(rel)) for rel in targets]
        except PermissionDenied as e:
            self._without_cache(e)
            self.items = [self._item(rel, keys, profile_of(rel)) for rel in targets]
        reads.attach(self)
        self.cache.save()
        return self.items

    def _without_cache(self, refused: PermissionDenied) -> None:
        """Go on with an empty throwaway store, with a warning naming the refusal."""
        line = nocache.refusal(self.store, refused)
        if line is None:
            raise refused
        self.warnings.append(line)
        self.cache_refused = True
        self.store = (cast(ObjectStore, nocache.RefsInMemory(self.store)) if self.farm
                      else nocache.throwaway(self))

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
            LocalRun(self, todo, by_file).run()
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

    def finish(self, item: Item) -> None:
        """Record a file whose chunks are all stored, and write its output."""
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
