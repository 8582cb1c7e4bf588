"""Rendering on the farm: one job per file, submitted in dependency order.

Render nodes share no disk, so every job carries its inputs as store objects at their
paths relative to the project root: the file, everything it uses (recursively), and the
frames of the renders it reads, put where the file expects them (``render/<dep>.png/``).
A file that reads another file's render can only list those frames once they exist, so
it is submitted when the jobs it needs are done; independent files run at the same time.
Outputs come back as object ids and are recorded in the render cache without a download.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from vstudio.errors import BadInput, NotFound, ServerError, VStudioError
from vstudio.render import outputs
from vstudio.render.engine import Item, ProjectRender
from vstudio.render.outputs import FRAME_NAME
from vstudio.render.project import Profile
from vstudio.render.runner import task_for

FINAL = ("done", "failed", "canceled")


class FarmTimeout(VStudioError):
    """``render --farm --timeout`` ran out with jobs still unfinished."""


class FarmClient:
    """The few farm calls project rendering needs; HTTP errors become vstudio errors."""

    def __init__(self, url: str, token: str | None) -> None:
        import httpx

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise BadInput(f"--farm {url}: give the server's http(s)://host:port")
        self.base = f"{parts.scheme}://{parts.netloc}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=60)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, json=body)
        except httpx.HTTPError as e:
            raise ServerError(f"cannot reach the farm at {self.base}: {e}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            cls = NotFound if r.status_code == 404 else ServerError
            raise cls(f"farm {method} {path}: {r.status_code} {detail}")
        return r.json() if r.content else None


def run_on_farm(job: ProjectRender, url: str, token: str | None, poll: float = 1.0,
                timeout: float | None = None) -> None:
    """Render ``job``'s planned items as farm jobs; updates the items in place.

    With ``timeout`` (seconds), jobs still unfinished then are canceled on the farm, their
    files (and the files waiting for them) marked failed, and ``FarmTimeout`` raised naming
    each stuck job and what its tasks were doing.
    """
    client = FarmClient(url, token)
    deadline = None if timeout is None else time.monotonic() + timeout
    items = job.items
    by_file = {i.file: i for i in items}
    for item in items:
        if item.status == "cached":
            job.assemble_item(item)
    pending = [i for i in items if i.status == "planned"]
    running: dict[int, tuple[Item, float]] = {}
    seen: dict[int, str] = {}  # last status told, to tell only changes
    while pending or running:
        for item in list(pending):
            state = job.deps_state(item, by_file)
            if state == "wait":
                continue
            pending.remove(item)
            if state != "ok":
                item.status, item.error = "failed", state
                continue
            try:
                spec = _job_spec(job, item, by_file)
                job_id = int(client.call("POST", "/api/jobs", spec)["id"])
            except VStudioError as e:
                item.status, item.error = "failed", e.message
                continue
            job.log(f"submitted {item.file} as farm job {job_id}")
            running[job_id] = (item, time.monotonic())
        if not running:
            for item in pending:  # cannot happen with an acyclic graph
                item.status, item.error = "failed", "its dependencies never finished"
            pending.clear()
            continue
        if deadline is not None and time.monotonic() >= deadline:
            _time_out(job, client, running, pending, timeout or 0.0)
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
        for job_id, (item, started) in list(running.items()):
            status = client.call("GET", f"/api/jobs/{job_id}")["status"]
            if status not in FINAL:
                if status != seen.get(job_id):
                    job.log(f"farm job {job_id} ({item.file}): {status}")
                    seen[job_id] = status
                continue
            del running[job_id]
            item.seconds = time.monotonic() - started
            if status != "done":
                item.status, item.error = "failed", f"farm job {job_id} {status}"
                continue
            _collect(job, item, client.call("GET", f"/api/jobs/{job_id}/outputs"))
    job.cache.save()


def _time_out(job: ProjectRender, client: FarmClient, running: dict[int, tuple[Item, float]],
              pending: list[Item], timeout: float) -> None:
    """Cancel the unfinished jobs, mark their files failed and raise ``FarmTimeout``."""
    lines = []
    for job_id, (item, started) in sorted(running.items()):
        item.seconds = time.monotonic() - started
        try:
            lines.append(f"farm job {job_id} ({item.file}): "
                         + _stuck(client.call("GET", f"/api/jobs/{job_id}")))
            client.call("POST", f"/api/jobs/{job_id}/cancel")
        except VStudioError as e:  # the farm went away: still report what we know
            lines.append(f"farm job {job_id} ({item.file}): {e.message}")
        item.status, item.error = "failed", f"timed out: farm job {job_id} did not finish"
    for item in pending:
        item.status, item.error = "failed", "timed out before its dependencies finished"
    job.cache.save()
    n = len(running)
    raise FarmTimeout(f"render --farm timed out after {timeout:g} s with {n} farm job"
                      f"{'s' if n != 1 else ''} unfinished (canceled on the farm); "
                      f"{len(pending)} more file(s) never submitted:\n  " + "\n  ".join(lines))


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
    if tasks and not busy and all(t["status"] in ("queued", "blocked") for t in tasks):
        text += ": no render node took them (are workers running, with the right tags?)"
    return text


def _job_spec(job: ProjectRender, item: Item, by_file: dict[str, Item]) -> dict[str, Any]:
    profile = item.profile_obj or Profile("default")
    node = job.graph.nodes[item.file]
    params = task_for(item.path, item.renderer, node.scene, profile, item.frame_list)["params"]
    params["file"] = item.file
    inputs = _inputs(job, item, by_file)
    blocks: list[dict[str, Any]] = [{
        "name": "render", "type": item.renderer, "params": params,
        "frames": f"{item.frame_list[0]}-{item.frame_list[-1]}", "chunk": profile.chunk}]
    if profile.format == "mp4":
        fps = node.scene.fps if node.scene else 24.0
        blocks.append({"name": "encode", "type": "ffmpeg",
                       "params": {"block": "render", "fps": fps, "output": "video.mp4"}})
    return {"name": f"render {item.file} [{item.profile}]"[:200], "inputs": inputs,
            "blocks": blocks}


def _inputs(job: ProjectRender, item: Item, by_file: dict[str, Item]) -> list[dict[str, str]]:
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
    node = graph.nodes[item.file]
    for use in node.uses:  # frames of the renders it reads, where it reads them
        dep = job.project.source_of_output(use.path, lambda p: p.is_file())
        manifest = by_file[dep].manifest if dep in by_file else None
        if manifest is None:
            continue
        rel = job.project.rel(use.path)
        if manifest.get("video") and use.kind != "sequence":
            out[rel] = str(manifest["video"])
        else:
            folder = rel.rsplit("/", 1)[0]
            for frame, oid in manifest["frames"]:
                out[f"{folder}/{FRAME_NAME.format(int(frame))}"] = str(oid)
    return [{"path": p, "oid": oid} for p, oid in sorted(out.items())]


def _collect(job: ProjectRender, item: Item, rows: list[dict[str, Any]]) -> None:
    profile = item.profile_obj or Profile("default")
    scene = job.graph.nodes[item.file].scene
    ids = {int(r["frame"]): str(r["oid"]) for r in rows
           if r["block"] == "render" and r.get("frame") is not None}
    video = next((str(r["oid"]) for r in rows if r["block"] == "encode"), None)
    missing = sorted(set(item.frame_list) - set(ids))
    if missing or (profile.format == "mp4" and not video):
        item.status = "failed"
        item.error = f"the farm job returned no output for frames {missing[:10]}"
        return
    info = {"file": item.file, "profile": profile.name, "renderer": item.renderer,
            "seconds": round(item.seconds, 3), "farm": True}
    item.manifest = outputs.record(job.store, item.key, info, ids, video, profile.format,
                                   scene.fps if scene else 24.0)
    item.status = "rendered"
    job.assemble_item(item)
    job.log(f"rendered {item.file} on the farm -> {item.output} ({item.seconds:.1f} s)")
