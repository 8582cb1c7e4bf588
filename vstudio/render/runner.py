"""Local rendering of one chunk: the worker's job types build the argv, we run it here.

The task payload is the farm's own shape (``vstudio.jobtypes``), with absolute file paths
because locally the sources are on this disk. A non-default profile's dependent (an edit
reading ``render/...``) gets its reads redirected to ``render/<profile>/...``.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

from vstudio.errors import VStudioError
from vstudio.jobtypes.base import Invocation
from vstudio.render.model import SceneInfo
from vstudio.render.project import Profile
from vstudio.worker.warm import BlenderSession, WarmRun


class RenderFailed(VStudioError):
    """A render failed."""


# Redirects sequencer strips, images and movie clips that read one folder to another.
_REMAP = r"""
import bpy, json
remap = json.loads(%r)
def _re(p):
    a = bpy.path.abspath(p)
    for old, new in remap:
        if a.startswith(old):
            return new + a[len(old):]
    return None
sc = bpy.context.scene
if sc.sequence_editor:
    for st in sc.sequence_editor.sequences_all:
        if st.type == "IMAGE":
            n = _re(st.directory)
            if n:
                st.directory = n
        elif hasattr(st, "filepath"):
            n = _re(st.filepath)
            if n:
                st.filepath = n
for d in list(bpy.data.images) + list(bpy.data.movieclips):
    n = _re(d.filepath)
    if n:
        d.filepath = n
"""


def task_for(path: Path, renderer: str, scene: SceneInfo | None, profile: Profile,
             frames: list[int]) -> dict[str, Any]:
    """A farm task payload for ``frames`` of ``path`` under ``profile``."""
    s = profile.settings
    params: dict[str, Any] = {"file": str(path)}
    pct = s.get("resolution")
    exr = profile.format == "exr"  # RenderChan's FORMAT=exr: OpenEXR frames
    if renderer == "blender":
        params["format"] = "OPEN_EXR" if exr else "PNG"
        if s.get("samples"):
            params["samples"] = int(s["samples"])
        w, h = (int(s["width"]), int(s["height"])) if s.get("width") and s.get("height") \
            else (scene.width, scene.height) if scene and pct else (0, 0)
        if pct and w and h:
            # an exact size at 100%: a percentage would scale an edit's strips (renders
            # already at that percentage) a second time
            w, h = max(4, round(w * pct / 100)), max(4, round(h * pct / 100))
        if w and h:
            params["resolution"] = [w, h]
        elif pct:
            params["resolution_percentage"] = int(pct)
        if s.get("engine"):
            params["engine"] = str(s["engine"]).upper()
        if s.get("color_mode"):
            params["overrides"] = {"render.image_settings.color_mode": str(s["color_mode"])}
    elif renderer in ("synfig", "inkscape", "gimp", "pencil2d"):  # PNG only here
        w, h = (scene.width, scene.height) if scene else (0, 0)
        if s.get("width") and s.get("height"):
            w, h = int(s["width"]), int(s["height"])
        elif pct and w and h:
            w, h = max(1, round(w * pct / 100)), max(1, round(h * pct / 100))
        if w and h:
            params["width"], params["height"] = w, h
        if renderer == "synfig" and exr:
            params["format"] = "exr"
        if renderer == "pencil2d" and s.get("transparency"):
            params["transparency"] = True
    return {"id": 0, "type": renderer, "params": params, "frames": frames,
            "trusted": False, "inputs": []}


def run_chunk(task: dict[str, Any], work_dir: Path,
              remap: list[tuple[str, str]] | None = None,
              sessions: WarmPool | None = None, version: str = "") -> dict[int, Path]:
    """Render one chunk into ``work_dir``; frame -> output file. Raises RenderFailed.

    With ``sessions``, a Blender chunk renders in one of the pool's warm Blender sessions;
    ``version`` (the render key of the file with all it reads) tells a session whether the
    file it has open is still the one to render.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    label = Path(task["params"]["file"]).name
    copy = None
    if remap and task["type"] == "synfig":
        copy = _remapped_sif(Path(task["params"]["file"]), remap, work_dir.name)
        task = {**task, "params": {**task["params"], "file": str(copy)}}
    try:
        return _run(task, work_dir, label, remap, sessions, version)
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)


def _run(task: dict[str, Any], work_dir: Path, label: str,
         remap: list[tuple[str, str]] | None, sessions: WarmPool | None,
         version: str) -> dict[int, Path]:
    from vstudio.jobtypes import TaskError, build

    # the project's files are on this machine's disk, rendered by their own user
    try:
        inv = build(task, work_dir, allow_local_paths=True)
    except TaskError as e:
        raise RenderFailed(f"{label}: {e.message}") from None
    if sessions is not None and inv.warm is not None:
        inv.warm.update(version=version, post=_REMAP % json.dumps(remap) if remap else None)
        done = sessions.render(inv, f"{label} frames {task['frames'][0]}-{task['frames'][-1]}")
        if done is not None:
            return done
        inv = build(task, work_dir, allow_local_paths=True)  # the session died: a fresh one
    argv = list(inv.argv)
    if remap and task["type"] == "blender":
        # Blender runs its arguments in order: the remap must come before the settings
        # script (which checks that every input exists) and before -o/-a.
        at = argv.index("--python-expr")
        argv[at:at] = ["--python-expr", _REMAP % json.dumps(remap)]
    env = {**os.environ, **(inv.env or {})}
    try:
        proc = subprocess.run(argv, cwd=inv.cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    except FileNotFoundError:
        raise RenderFailed(f"{label}: {argv[0]} is not installed "
                           f"(apt-get install {Path(argv[0]).name})") from None
    log = proc.stdout.replace("\r", "\n")
    errors = [e for e in (inv.parser.feed(line).error for line in log.splitlines()) if e]
    missing = [f for f, p in inv.outputs.items() if not p.is_file() or p.stat().st_size == 0]
    if proc.returncode != 0 or missing:
        why = "; ".join(errors[-3:]) or "\n".join(log.splitlines()[-5:])
        what = (f"exit code {proc.returncode}" if proc.returncode
                else f"no output for frames {missing}")
        raise RenderFailed(f"{label} frames {task['frames'][0]}-{task['frames'][-1]} failed "
                           f"({what}): {why}")
    return dict(inv.outputs)


_SIF_REFS = re.compile(r'(<string>)([^<]+)(</string>)|(use=")([^"#]+)(#)')


def _remapped_sif(sif: Path, remap: list[tuple[str, str]], tag: str) -> Path:
    """A copy of ``sif`` beside it (so relative references still resolve) whose
    references into one render folder point into another."""
    raw = sif.read_bytes()
    packed = raw[:2] == b"\x1f\x8b"
    text = (gzip.decompress(raw) if packed else raw).decode("utf-8")

    def sub(m: re.Match[str]) -> str:
        head, ref, tail = (m[1], m[2], m[3]) if m[1] else (m[4], m[5], m[6])
        target = os.path.normpath(os.path.join(sif.parent, html.unescape(ref)))
        for old, new in remap:
            if target.startswith(old):
                moved = os.path.relpath(new + target[len(old):], sif.parent)
                return head + html.escape(moved.replace(os.sep, "/"), quote=True) + tail
        return m[0]

    out = _SIF_REFS.sub(sub, text).encode("utf-8")
    copy = sif.with_name(f".vstudio-{tag}-{os.getpid()}-{sif.name}")
    copy.write_bytes(gzip.compress(out) if packed else out)
    return copy


class WarmPool:
    """Warm Blender sessions (:mod:`vstudio.worker.warm`, as render nodes use) for a local
    render: one per slot, each rendering chunk after chunk without a new process.

    Sessions start at once, so Blender's start-up overlaps planning and the first cold
    chunks. A chunk takes the free session that has its file open if there is one. Local
    files are never trusted: sessions open them with autoexec off.
    """

    def __init__(self, workdir: Path, slots: int) -> None:
        threads = max(1, (os.cpu_count() or 1) // slots) if slots > 1 else None
        self._free = [BlenderSession(workdir / f"warm-{n}", threads).start()
                      for n in range(slots)]
        self._all = list(self._free)
        self._lock = threading.Condition()

    def _take(self, file: str) -> BlenderSession:
        with self._lock:
            self._lock.wait_for(lambda: bool(self._free))
            best = next((s for s in self._free if s.file == file), self._free[0])
            self._free.remove(best)
            return best

    def _give(self, session: BlenderSession) -> None:
        with self._lock:
            self._free.append(session)
            self._lock.notify()

    def render(self, inv: Invocation, what: str) -> dict[int, Path] | None:
        """Render ``inv`` warm; None when the session died (render it cold then)."""
        assert inv.warm is not None
        session = self._take(inv.warm["file"])
        try:
            if not session.alive:
                session.close(grace=0)
                session.start()
            run = WarmRun(session, inv)
            res = run.wait()
            if run.session_lost:
                session.close(grace=0)
                session.start()  # for the next chunk; this one renders cold
                return None
        finally:
            self._give(session)
        if res.error:
            raise RenderFailed(f"{what} failed ({res.error})")
        return dict(inv.outputs)

    def close(self) -> None:
        for s in self._all:
            s.close(grace=1.0)


def chunks(frames: list[int], size: int) -> list[list[int]]:
    return [frames[i:i + size] for i in range(0, len(frames), size)]
