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
from pathlib import Path
from typing import Any

from vstudio.errors import VStudioError
from vstudio.render.model import SceneInfo
from vstudio.render.project import Profile


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
    if renderer == "blender":
        params["format"] = "PNG"
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
    elif renderer == "synfig":  # PNG is the synfig job type's only output here
        w, h = (scene.width, scene.height) if scene else (0, 0)
        if s.get("width") and s.get("height"):
            w, h = int(s["width"]), int(s["height"])
        elif pct and w and h:
            w, h = max(1, round(w * pct / 100)), max(1, round(h * pct / 100))
        if w and h:
            params["width"], params["height"] = w, h
    return {"id": 0, "type": renderer, "params": params, "frames": frames,
            "trusted": False, "inputs": []}


def run_chunk(task: dict[str, Any], work_dir: Path,
              remap: list[tuple[str, str]] | None = None) -> dict[int, Path]:
    """Render one chunk into ``work_dir``; frame -> output file. Raises RenderFailed."""
    work_dir.mkdir(parents=True, exist_ok=True)
    label = Path(task["params"]["file"]).name
    copy = None
    if remap and task["type"] == "synfig":
        copy = _remapped_sif(Path(task["params"]["file"]), remap, work_dir.name)
        task = {**task, "params": {**task["params"], "file": str(copy)}}
    try:
        return _run(task, work_dir, label, remap)
    finally:
        if copy is not None:
            copy.unlink(missing_ok=True)


def _run(task: dict[str, Any], work_dir: Path, label: str,
         remap: list[tuple[str, str]] | None) -> dict[int, Path]:
    from vstudio.jobtypes import TaskError, build

    try:
        inv = build(task, work_dir)
    except TaskError as e:
        raise RenderFailed(f"{label}: {e.message}") from None
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


def chunks(frames: list[int], size: int) -> list[list[int]]:
    return [frames[i:i + size] for i in range(0, len(frames), size)]
