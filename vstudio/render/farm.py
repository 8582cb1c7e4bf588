"""Rendering on the farm: the whole plan as ONE farm job, a block per file.

Render nodes share no disk, so the job carries its inputs as store objects at their
paths relative to the project root: the files, everything they use (recursively), and
the frames of cached renders they read, put where the files expect them
(``render/<dep>.png/``). A file reading the render of another file of the same job
depends on that file's block: frame by frame when each of its frames reads the same
frame number of the render (a sequencer strip that lines up, ``Use.spans``), else on the
whole block; the farm hands the upstream frames to the task and the block's
``upstream_paths`` param tells the worker where the file reads them. Outputs come back
as object ids and are recorded in the render cache without a download.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from vstudio.errors import BadInput, PermissionDenied, VStudioError
from vstudio.farm.spec import MAX_BLOCKS
from vstudio.farm.wire import grant_field, remember_rows
from vstudio.render import cachescope, layout, outputs, reads
from vstudio.render.engine import Item, ProjectRender
from vstudio.render.model import Use
from vstudio.render.project import Profile
from vstudio.render.runner import task_for
from vstudio.store.api import ServedStore

FINAL = ("done", "failed", "canceled")


class FarmTimeout(VStudioError):
    """``render --farm --timeout`` ran out with jobs still unfinished."""


class FarmApi(Protocol):
    """What project rendering needs of the farm's server (``vstudio.client.farm``)."""

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any: ...


def run_on_farm(job: ProjectRender, client: FarmApi, poll: float = 1.0,
                timeout: float | None = None) -> None:
    """Render ``job``'s planned items as one farm job; updates the items in place.

    A plan of more files than a job holds blocks (``MAX_BLOCKS``) goes as a few jobs, each
    submitted once the renders it reads from the earlier ones are recorded. With
    ``timeout`` (seconds), a job still unfinished then is canceled on the farm, the
    unfinished files marked failed, and ``FarmTimeout`` raised naming what each file's
    tasks were doing.
    """
    reads.convert_audio(job)
    deadline = None if timeout is None else time.monotonic() + timeout
    for item in job.items:
        if item.status == "cached":
            job.assemble_item(item)
    while True:
        blocks = _plan_blocks(job)
        if not blocks:
            break
        _run_job(job, client, blocks, poll, deadline, timeout)
    job.cache.save()


def _run_job(job: ProjectRender, client: FarmApi, blocks: list[Block], poll: float,
             deadline: float | None, timeout: float | None) -> None:
    """Submit ``blocks`` as one farm job, record each file's render as its blocks finish."""
    spec = _job_spec(job, blocks)
    try:
        job_id = int(client.call("POST", "/api/jobs", spec)["id"])
    except VStudioError as e:
        for b in blocks:
            b.item.status, b.item.error = "failed", e.message
        return
    job.log(f"submitted {len(blocks)} file(s) as farm job {job_id} "
            f"({', '.join(b.item.file for b in blocks[:5])}{' ...' if len(blocks) > 5 else ''})")
    started = time.monotonic()
    seen = ""
    collected: set[str] = set()
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            _time_out(job, client, job_id, blocks, collected, started, timeout or 0.0)
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        try:
            detail = client.call("GET", f"/api/jobs/{job_id}")
        except PermissionDenied as e:  # the right on its project was revoked meanwhile
            _refused(job, job_id, blocks, collected, e)
            return
        status = str(detail["status"])
        if status != seen:
            job.log(f"farm job {job_id}: {status}")
            seen = status
        done = _blocks_done(detail, blocks)
        doomed = _doomed(detail, blocks, done | collected)
        fresh = [b for b in blocks if b.name in done and b.item.file not in collected]
        if fresh:  # a file whose blocks are all done is recorded while the others render
            rows = client.call("GET", f"/api/jobs/{job_id}/outputs")
            remember_rows(job.store, rows)  # read grants for the frames
            for b in fresh:
                collected.add(b.item.file)
                b.item.seconds = time.monotonic() - started
                _collect(job, b, rows)
        if status in FINAL:
            break
        if doomed and all(b.name in doomed or b.item.file in collected for b in blocks):
            # the farm keeps tasks waiting for a failed block; nothing more can finish
            client.call("POST", f"/api/jobs/{job_id}/cancel")
            for b in blocks:
                if b.name in doomed:
                    b.item.status, b.item.error = "failed", doomed[b.name]
            job.log(f"farm job {job_id}: canceled, a block failed")
            return
    for b in blocks:
        if b.item.file not in collected:
            b.item.status = "failed"
            b.item.error = (doomed.get(b.name)
                            or f"farm job {job_id} {status} before {b.name} finished")


def _refused(job: ProjectRender, job_id: int, blocks: list[Block], collected: set[str],
             refused: PermissionDenied) -> None:
    """The job's project may no longer be read by this user: its unfinished files fail
    (the farm cancels the job at its next hand-out, ``Farm.next_task``)."""
    for b in blocks:
        if b.item.file not in collected:
            b.item.status = "failed"
            b.item.error = f"farm job {job_id}: {refused.message}"
    job.log(f"farm job {job_id}: {refused.message}")


@dataclass
class Block:
    """The farm block(s) of one file: ``name`` renders, ``encode`` (mp4) makes its video."""

    item: Item
    name: str
    spec: list[dict[str, Any]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    after: set[str] = field(default_factory=set)  # files of this job whose renders it reads

    @property
    def encode(self) -> str | None:
        return f"{self.name}-encode" if len(self.spec) > 1 else None


def _block_name(n: int, rel: str) -> str:
    return f"b{n}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", rel)[:100]


def _plan_blocks(job: ProjectRender) -> list[Block]:
    """A block per planned file, in dependency order, as many as one job holds; a file
    that cannot go is failed, one reading a render left for a later job waits with it."""
    by_file = {i.file: i for i in job.items}
    blocks: dict[str, Block] = {}
    used = 0
    for item in job.items:
        if item.status != "planned":
            continue
        state = _deps_failed(item, by_file)
        if state:
            item.status, item.error = "failed", state
            continue
        need = 2 if (item.profile_obj and item.profile_obj.format == "mp4") else 1
        # a render read as one file (a video) is made once it is recorded: a later job
        later = [d for d in item.deps if d in by_file and by_file[d].status == "planned"
                 and (d not in blocks or reads.reads_video(job, item, d))]
        if later or used + need > MAX_BLOCKS:
            continue  # the next job: the render it reads is recorded by then
        used += need
        try:
            blocks[item.file] = _block(job, item, len(blocks) + 1, by_file, blocks)
        except VStudioError as e:
            item.status, item.error = "failed", e.message
    return list(blocks.values())


def _deps_failed(item: Item, by_file: dict[str, Item]) -> str:
    for dep in item.deps:
        d = by_file.get(dep)
        if d is not None and d.status == "failed":
            return f"not rendered: it needs {dep}, which failed"
    return ""


def _block(job: ProjectRender, item: Item, n: int, by_file: dict[str, Item],
           upstream: dict[str, Block]) -> Block:
    profile = item.profile_obj or Profile("default")
    node = job.graph.nodes[item.file]
    params = task_for(item.path, item.renderer, node.scene, profile, item.frame_list)["params"]
    params["file"] = item.file
    b = Block(item, _block_name(n, item.file))
    b.inputs = _inputs(job, item, by_file)
    paths: dict[str, str] = {}
    modes: dict[str, str] = {}
    for use in node.uses:  # renders of this job it reads: wait for them, put them in place
        dep = job.project.source_of_output(use.path, lambda p: p.is_file())
        if dep is None or dep not in upstream:
            continue
        up = upstream[dep]
        b.after.add(dep)
        rel = job.project.rel(use.path)
        if up.encode and use.kind != "sequence":  # reads the video
            paths.setdefault(up.encode, rel.replace("{", "{{").replace("}", "}}"))
            modes[up.encode] = "whole"
            continue
        paths.setdefault(up.name, layout.upstream_pattern(rel))
        aligned = use.kind == "sequence" and _lines_up(use, item.frame_list, up.item.frame_list)
        modes[up.name] = "frame" if aligned and modes.get(up.name, "frame") == "frame" \
            else "whole"
    if paths:
        params["upstream_paths"] = paths
    main: dict[str, Any] = {
        "name": b.name, "type": item.renderer, "params": params,
        "frames": f"{item.frame_list[0]}-{item.frame_list[-1]}", "chunk": profile.chunk}
    if modes:
        main["depends_on"] = [{"block": k, "mode": m} for k, m in sorted(modes.items())]
    b.spec.append(main)
    if profile.format == "mp4":
        fps = node.scene.fps if node.scene else 24.0
        b.spec.append({"name": f"{b.name}-encode", "type": "ffmpeg",
                       "params": {"block": b.name, "fps": fps, "output": "video.mp4"}})
    return b


def _lines_up(use: Use, frames: list[int], dep_frames: list[int]) -> bool:
    """Each frame of the user shows the same frame number of the render, or none of it."""
    have = set(dep_frames)
    for f in frames:
        shown = use.frames_for([f])
        if shown is None or not shown <= ({f} & have):
            return False
    return True


def _job_spec(job: ProjectRender, blocks: list[Block]) -> dict[str, Any]:
    inputs: dict[str, str] = {}
    for b in blocks:
        inputs.update(b.inputs)
    files = ", ".join(b.item.file for b in blocks[:3]) + (" ..." if len(blocks) > 3 else "")
    profiles = sorted({b.item.profile for b in blocks})
    return {"name": f"render {files} [{', '.join(profiles)}]"[:200],
            **_project_field(job),
            "inputs": [{"path": p, "oid": oid, **grant_field(job.store, oid)}
                       for p, oid in sorted(inputs.items())],
            "blocks": [s for b in blocks for s in b.spec]}


def _project_field(job: ProjectRender) -> dict[str, str]:
    """``{"project": name}`` for a render of a project of the farm's own server, so that
    the farm holds the job to that project's rights: only its readers see the job and its
    frames, and it stops when its submitter's read right is revoked. A render whose cache
    the server refused (``nocache``: the submitter may not read the project) goes as the
    submitter's own files."""
    scope = cachescope.parse(job.scope)
    if (scope is None or scope.kind != cachescope.PROJECT or job.cache_refused
            or not isinstance(job.store, ServedStore)):
        return {}
    return {"project": scope.name}


def _blocks_done(detail: dict[str, Any], blocks: list[Block]) -> set[str]:
    """Names of the render blocks whose tasks (and encode's) are all done."""
    status: dict[str, set[str]] = {}
    for t in detail.get("tasks") or []:
        status.setdefault(str(t.get("block")), set()).add(str(t["status"]))
    out = set()
    for b in blocks:
        names = [b.name] + ([b.encode] if b.encode else [])
        if all(status.get(n) == {"done"} for n in names):
            out.add(b.name)
    return out


def _doomed(detail: dict[str, Any], blocks: list[Block], finished: set[str]) -> dict[str, str]:
    """Blocks that failed on the farm (retries used up) or read one that did: why."""
    errors: dict[str, str] = {}
    for t in detail.get("tasks") or []:
        if t["status"] == "failed":
            errors.setdefault(str(t.get("block")),
                              f"frames {t.get('frames')}: {t.get('error') or 'failed'}")
    out: dict[str, str] = {}
    for b in blocks:  # in dependency order: a block's upstream is decided before it
        if b.name in finished or b.item.file in finished:
            continue
        own = errors.get(b.name) or (errors.get(b.encode) if b.encode else None)
        if own:
            out[b.name] = f"failed on the farm: {own}"[:1000]
            continue
        bad = next((u for u in blocks if u.item.file in b.after and u.name in out), None)
        if bad is not None:
            out[b.name] = f"not rendered: it needs {bad.item.file}, which failed"
    return out


def _time_out(job: ProjectRender, client: FarmApi, job_id: int, blocks: list[Block],
              collected: set[str], started: float, timeout: float) -> None:
    """Cancel the unfinished job, mark its unfinished files failed, raise ``FarmTimeout``."""
    lines = []
    left = [b for b in blocks if b.item.file not in collected]
    try:
        detail = client.call("GET", f"/api/jobs/{job_id}")
        for b in left:
            names = {b.name, b.encode}
            mine = dict(detail, tasks=[t for t in detail.get("tasks") or []
                                       if t.get("block") in names])
            mine["status"] = _block_status(mine["tasks"]) or detail.get("status")
            lines.append(f"farm job {job_id} ({b.item.file}): " + _stuck(mine))
        client.call("POST", f"/api/jobs/{job_id}/cancel")
    except VStudioError as e:  # the farm went away: still report what we know
        lines.append(f"farm job {job_id}: {e.message}")
    for b in left:
        b.item.seconds = time.monotonic() - started
        b.item.status = "failed"
        b.item.error = f"timed out: farm job {job_id} did not finish {b.name}"
    later = [i for i in job.items if i.status == "planned"]  # left for a next job
    for item in later:
        item.status, item.error = "failed", "timed out before it was submitted"
    job.cache.save()
    n = len(left)
    raise FarmTimeout(f"render --farm timed out after {timeout:g} s with {n} file"
                      f"{'s' if n != 1 else ''} of farm job {job_id} unfinished (canceled on "
                      "the farm)" + (f"; {len(later)} more file(s) never submitted"
                                     if later else "") + ":\n  " + "\n  ".join(lines))


def _block_status(tasks: list[dict[str, Any]]) -> str:
    states = {t["status"] for t in tasks}
    for s in ("running", "failed", "queued", "waiting", "paused"):
        if s in states:
            return s
    return "done" if states == {"done"} else ""


def _stuck(detail: dict[str, Any]) -> str:
    """What a job's tasks are doing, e.g. "running; 1 running on node1 (40%), 3 queued"."""
    tasks = detail.get("tasks") or []
    counts: dict[str, int] = {}
    busy = []
    for t in tasks:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
        if t["status"] == "running":
            busy.append(f"{t.get('worker') or '?'} at {float(t.get('progress') or 0):.0f}%")
    parts = [f"{n} {s}" for s, n in sorted(counts.items())]
    text = f"{detail.get('status')}; tasks: " + (", ".join(parts) or "none")
    if busy:
        text += " (" + ", ".join(busy[:5]) + ")"
    if tasks and not busy and all(t["status"] in ("queued", "waiting") for t in tasks):
        text += ": no render node took them (are workers running, with the right tags?)"
    return text


def _inputs(job: ProjectRender, item: Item, by_file: dict[str, Item]) -> dict[str, str]:
    graph, store = job.graph, job.store
    out: dict[str, str] = {}
    todo, seen = [item.file], set()
    while todo:  # the file and everything it uses, by content id
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        node = graph.nodes[rel]
        if rel.startswith("/"):
            raise BadInput(f"{item.file} uses {rel}, outside the project "
                           f"{job.project.root}: a render node could not find it")
        if not store.has(node.cid):
            store.put_file(node.path)
        out[rel] = node.cid
        todo += node.file_deps
    out.update(reads.cached_inputs(job, item))  # renders it reads, where it reads them
    return out


def _collect(job: ProjectRender, block: Block, rows: list[dict[str, Any]]) -> None:
    item = block.item
    profile = item.profile_obj or Profile("default")
    scene = job.graph.nodes[item.file].scene
    ids = {int(r["frame"]): str(r["oid"]) for r in rows
           if r["block"] == block.name and r.get("frame") is not None}
    video = next((str(r["oid"]) for r in rows if r["block"] == block.encode), None)
    missing = sorted(set(item.frame_list) - set(ids))
    if missing or (profile.format == "mp4" and not video):
        item.status = "failed"
        item.error = f"the farm job returned no output for frames {missing[:10]}"
        return
    info = {"file": item.file, "profile": profile.name, "renderer": item.renderer,
            "seconds": round(item.seconds, 3), "farm": True}
    item.manifest = outputs.record(job.store, job.scope, item.key, info, ids, video,
                                   profile.format, scene.fps if scene else 24.0)
    item.status = "rendered"
    job.assemble_item(item)
    job.judge_stored(item)  # an empty render is a loud warning here too
    job.log(f"rendered {item.file} on the farm -> {item.output} ({item.seconds:.1f} s)")
