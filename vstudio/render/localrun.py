"""Rendering a planned project on this machine: its chunks on a pool of renderer processes.

``ProjectRender.plan()`` (``engine``) decides what renders; ``LocalRun`` renders it. A chunk
of a file that reads another file's render starts as soon as the frames it reads are
written (frame by frame), not when that whole render is done, and chunks of later files
(the users) go first, so an edit's first frames appear while the shots still render.
Each finished chunk is stored at once (an interrupted run resumes after it); a file whose
chunks are all done is finished by the engine once what it reads is finished too.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from vstudio.errors import VStudioError
from vstudio.render import media, outputs, reads, writer
from vstudio.render.project import RENDER_DIR, Profile
from vstudio.render.runner import WarmPool, run_chunk, task_for

if TYPE_CHECKING:
    from vstudio.render.engine import Item, ProjectRender

# what a chunk reads of each render it needs: the frames, or None for "all of it"
Needs = dict[str, set[int] | None]
Waiting = tuple["Item", list[int], Needs]  # a chunk not started: its file, frames, needs


class LocalRun:
    """One run of ``todo`` (in dependency order); ``by_file`` holds every planned item."""

    def __init__(self, job: ProjectRender, todo: list[Item], by_file: dict[str, Item]) -> None:
        self.job, self.todo, self.by_file = job, todo, by_file
        self.slots = max(1, job.jobs)
        self.order = {item.file: n for n, item in enumerate(todo)}  # dependency order
        self.waiting: list[Waiting] = []
        self.running: dict[Future[dict[int, Path]], tuple[Item, list[int], float]] = {}
        self.left: dict[str, int] = {}  # chunks of each file not finished yet
        self.unfinished: list[Item] = []  # all chunks rendered; waits for its inputs' renders
        # frames of each file written where its users read them, and the files some
        # other file of this run reads
        self.ready: dict[str, set[int]] = {}
        self.early = {dep for item in todo for dep in item.deps}
        self.sessions: WarmPool | None = None

    def run(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="vstudio-render-"))
        self._queue()
        warm = sum(1 for i in self.todo if i.renderer == "blender"
                   for _ in self.job.todo_chunks(i))
        self.sessions = WarmPool(work, min(self.slots, warm)) if warm else None
        try:
            with ThreadPoolExecutor(max_workers=self.slots) as pool:
                while self.waiting or self.running or self.unfinished:
                    moved = self._settle()  # anything finished or started this round
                    ready, dropped = self._ready_chunks()
                    moved = self._start(pool, work, ready) or dropped or moved
                    if not self.running:
                        if not moved:  # stuck: cannot happen with an acyclic graph
                            self._give_up()
                        continue
                    self._collect()
        finally:
            if self.sessions is not None:
                self.sessions.close()
            shutil.rmtree(work, ignore_errors=True)

    def _queue(self) -> None:
        for item in self.todo:
            self.job.log(f"render {item.file} ({item.frames} frames, "
                         f"{item.chunks} chunks, profile {item.profile})")
            todo_chunks = self.job.todo_chunks(item)
            self.left[item.file] = len(todo_chunks)
            self.ready[item.file] = set()
            if item.file in self.early:
                self._write_saved(item)
            if not todo_chunks:  # every chunk was stored by an earlier run
                self.unfinished.append(item)
            self.waiting += [(item, c, self._needs(item, c)) for c in todo_chunks]

    def _settle(self) -> bool:
        """Finish files whose chunks are done once what they read is finished."""
        moved = False
        for item in list(self.unfinished):
            state = self.deps_state(item)
            if state == "wait":
                continue
            self.unfinished.remove(item)
            moved = True
            if state != "ok":
                item.status, item.error = "failed", state
            elif item.status != "failed":
                self.job.finish(item)
        return moved

    def _ready_chunks(self) -> tuple[list[Waiting], bool]:
        """Chunks whose reads are written, users first; drops (and says whether it
        dropped) the chunks of files that failed or read a failed file."""
        ready, dropped = [], False
        for entry in list(self.waiting):
            item, _, needs = entry
            state = self._chunk_state(item, needs)
            if state == "wait":
                continue
            if state == "ok" and item.status != "failed":
                ready.append(entry)
                continue
            self.waiting.remove(entry)
            dropped = True
            if item.status != "failed":
                item.status, item.error = "failed", state
        ready.sort(key=lambda e: (-self.order[e[0].file], e[1][0]))
        return ready, dropped

    def _start(self, pool: ThreadPoolExecutor, work: Path, ready: list[Waiting]) -> bool:
        """Start ready chunks on the free slots; whether any left the queue."""
        moved = False
        for item, chunk, needs in ready[:max(0, self.slots - len(self.running))]:
            self.waiting.remove((item, chunk, needs))
            moved = True
            missing = reads.missing_now(self.job, item, chunk)
            if missing:  # never render a chunk that would read nothing
                item.status, item.error = "failed", missing
                continue
            item.started = item.started or time.monotonic()
            early = [d for d in needs if self.by_file[d].status == "planned"]
            if early:
                self.job.log(f"{item.file} frames {chunk[0]}-{chunk[-1]}: start with "
                             f"the frames they read of {', '.join(early)}")
            task = task_for(item.path, item.renderer, self.job.graph.nodes[item.file].scene,
                            item.profile_obj or Profile("default"), chunk)
            fut = pool.submit(run_chunk, task, work / item.key[:16] / str(chunk[0]),
                              self._remap(item), self.sessions, item.key)
            self.running[fut] = (item, chunk, time.monotonic())
        return moved

    def _collect(self) -> None:
        """Wait for a chunk to end; store its frames and hand them to their readers."""
        done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
        for fut in done:
            item = self.running.pop(fut)[0]
            item.seconds = time.monotonic() - item.started  # wall time
            self.left[item.file] -= 1
            try:
                files = fut.result()
                item.blank = item.blank and all(media.png_blank(f) for f in files.values())
                item.saved.update(outputs.save_chunk(
                    self.job.store, self.job.scope, item.key, files))
                self._publish_frames(item, files)
            except VStudioError as e:
                item.status, item.error = "failed", e.message
            if self.left[item.file] == 0 and item.status != "failed":
                self.unfinished.append(item)

    def _give_up(self) -> None:
        for item in [e[0] for e in self.waiting] + self.unfinished:
            item.status, item.error = "failed", "its dependencies never finished"
        self.waiting.clear()
        self.unfinished.clear()

    def _needs(self, item: Item, chunk: list[int]) -> Needs:
        """Per render it reads: the frames ``chunk`` reads, or None for "all of it"."""
        out: Needs = {d: set() for d in item.deps if d in self.by_file}
        seen: set[str] = set()
        for r in reads.reads_of(self.job, item.file):
            if r.dep not in out:
                continue
            d = self.by_file[r.dep]
            frames = reads.frames_read(r, chunk) if r.output and r.output.kind == "frames" \
                else None
            if self.job.stream:
                seen.add(r.dep)
            known = out[r.dep]
            out[r.dep] = None if frames is None or known is None else (
                known | (frames & set(d.frame_list)))
        # a render read in a way not traced to a use here: wait for all of it
        return {dep: (frames if dep in seen else None) for dep, frames in out.items()}

    def _chunk_state(self, item: Item, needs: Needs) -> str:
        for dep, frames in needs.items():
            d = self.by_file[dep]
            if d.status == "failed":
                return f"not rendered: it needs {dep}, which failed"
            if d.status == "planned" and (frames is None or not frames <= self.ready[dep]):
                return "wait"
        return "ok"

    def deps_state(self, item: Item) -> str:
        for dep in item.deps:
            d = self.by_file.get(dep)
            if d is None:
                continue
            if d.status == "failed":
                return f"not rendered: it needs {dep}, which failed"
            if d.status == "planned":
                return "wait"
        return "ok"

    def _publish_frames(self, item: Item, files: dict[int, Path]) -> None:
        """Move a chunk's frames where its users read them, if any user renders now."""
        outs = [o for o in item.outs if o.kind == "frames"]
        if item.file not in self.early or not outs:
            for f in files.values():
                f.unlink(missing_ok=True)  # in the store now
            return
        root, put = self.job.project.root, self.job.files.put
        plain = [o for o in outs if not o.channel]
        for frame, f in files.items():
            for o in outs:
                if o.channel:  # extract_alpha: the colour or the alpha of the frame
                    put(root / o.frame_file(frame), None, partial(media.channel_png, f, o.channel))
            for o in plain[1:]:
                put(root / o.frame_file(frame), None, partial(shutil.copyfile, f))
            if plain:
                self.job.files.move_in(f, root / plain[0].frame_file(frame))
            else:
                f.unlink(missing_ok=True)  # in the store
            self.ready[item.file].add(frame)

    def _write_saved(self, item: Item) -> None:
        """Frames an earlier, interrupted run stored: on disk for users reading them now."""
        outs = [o for o in item.outs if o.kind == "frames"]
        if not item.saved or not outs:
            return
        try:
            for frame, oid in item.saved.items():
                for o in outs:
                    self.job.files.put(self.job.project.root / o.frame_file(frame),
                                       *writer.source(self.job.store, oid, o.channel))
                self.ready[item.file].add(frame)
        except VStudioError as e:
            item.status, item.error = "failed", e.message

    def _remap(self, item: Item) -> list[tuple[str, str]] | None:
        """For a named profile, reads of render/<dep>.* go to render/<profile>/<dep>.*."""
        if item.profile_obj is None or item.profile_obj.is_default or not item.deps:
            return None
        base = self.job.project.root / RENDER_DIR
        return [(f"{base / dep}.", f"{base / item.profile / dep}.") for dep in item.deps]
