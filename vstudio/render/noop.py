"""The no-op fast path of ``vstudio render``: nothing changed, so nothing is even imported.

A local render that succeeded records a *stamp* in the user's cache folder: the stat of
every file its plan read (sources, what they use, settings files and the absence of the
ones not there, the renderers' programs, the studio) as the plan saw it, the stat of every
output it left beside the sources, and what a no-op run prints. The next ``vstudio render``
with the same files, options and environment compares stats only (no click, no store, no
hashing: start-up is most of a no-op's cost) and prints that; any difference, a file
changed within ``RACY_NS`` of being planned, or an option the stamp does not cover
declines, and the full command runs (and records a new stamp).

This module imports only the standard library at module level; ``record`` is called by the
full command after a render.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from vstudio.render import RENDER_VERSION

if TYPE_CHECKING:
    from vstudio.render.engine import ProjectRender

STAMP_VERSION = 1
RACY_NS = 2_000_000_000  # as the stat cache's: a change in the same tick goes unseen
ROOT_FILES = ("vstudio.toml", "project.conf", "remake.conf")  # project.ROOT_FILES
# and a working copy's metadata, which roots a project with none of those (find_root)
ROOT_MARKS = (*ROOT_FILES, os.path.join(".vstudio", "wc.json"))
WALL = "\0wall\0"  # where the summary line's wall time goes
_VALUED = {"--studio": "studio", "--profile": "profile", "-j": "jobs", "--jobs": "jobs"}


def _stat(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _which(name: str) -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = os.path.join(folder or ".", name)
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return None


def programs(renderers: list[str]) -> dict[str, str]:
    """Renderer -> the real path of the program that renders it (keys.program's choice)."""
    out = {}
    for r in sorted(set(renderers)):
        exe = os.environ.get(f"VSTUDIO_{r.upper()}", r)
        found = exe if os.sep in exe else _which(exe)
        out[r] = os.path.realpath(found) if found else ""
    return out


def _code() -> list[Any]:
    """What the render code is: its version and its files' stats (an edited vstudio does
    not trust stamps of the old one)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return [RENDER_VERSION, sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(here)
                                   if e.name.endswith(".py"))]


def stamp_path(paths: list[str], studio: str, profile: str | None, as_json: bool) -> str:
    env = sorted((k, v) for k, v in os.environ.items()
                 if k.startswith("VSTUDIO_") or k in ("PATH", "HOME", "XDG_CACHE_HOME"))
    ident = json.dumps([STAMP_VERSION, [os.path.abspath(p) for p in paths],
                        os.path.abspath(studio), profile, as_json, env, _code()])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = hashlib.blake2b(ident.encode(), digest_size=16).hexdigest()
    return os.path.join(base, "vstudio", "noop", name + ".json")


def studio_of(studio: str | None) -> str | None:
    """The studio folder a render names (the stamp covers only an explicit one)."""
    return studio or os.environ.get("VSTUDIO_STUDIO") or None


# -- the fast path


def parse(args: list[str]) -> dict[str, Any] | None:
    """``render`` options the stamp covers; None for anything else."""
    opts: dict[str, Any] = {"paths": [], "json": False, "profile": None, "studio": None}
    it = iter(args)
    for a in it:
        name, eq, value = a.partition("=")
        if a == "--json":
            opts["json"] = True
        elif a == "--local":
            continue
        elif name in _VALUED:
            got = value if eq else next(it, None)
            if got is None:
                return None
            opts[_VALUED[name]] = got
        elif a.startswith("-"):
            return None  # --force, --dry-run, --farm ...: the full command
        else:
            opts["paths"].append(a)
    if not opts["paths"] or any(os.path.isdir(p) for p in opts["paths"]):
        return None  # a folder's sources may have grown
    return opts


def main(args: list[str]) -> int | None:
    opts = parse(args)
    studio = studio_of(opts["studio"]) if opts else None
    if opts is None or studio is None:
        return None
    path = stamp_path(opts["paths"], studio, opts["profile"], opts["json"])
    try:
        with open(path, encoding="utf-8") as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or not _holds(stamp):
        return None
    for line in stamp["stderr"]:
        sys.stderr.write(line + "\n")
    sys.stdout.write(stamp["stdout"].replace(WALL, "0.0"))
    return 0


def _holds(stamp: dict[str, Any]) -> bool:
    """Every recorded file is as recorded (absent ones still absent), programs too."""
    for p, want in stamp["inputs"].items():
        have = _stat(p)
        if (have is None) != (want is None) or (have and have != want[:3]):
            return False
    for p, want in stamp["outputs"].items():
        if _stat(p) != want:
            return False
    progs = programs(list(stamp["programs"]))
    return all(progs[r] == exe and _stat(exe) == st
               for r, (exe, st) in stamp["programs"].items())


# -- recording, by the full command


def planned(job: ProjectRender, studio: str) -> dict[str, Any] | None:
    """What the plan read, as it read it (call right after ``plan``); None when a file
    changed too recently for its stat to be trusted."""
    import time

    now = time.time_ns()
    root = str(job.project.root)
    nodes = {str(n.path) for n in job.graph.nodes.values()}
    inputs: dict[str, list[int] | None] = {}
    for node in job.graph.nodes.values():
        entry = job.cache.files.get(str(node.path))
        if not entry or entry[1] >= entry[4] - RACY_NS:
            return None
        inputs[str(node.path)] = list(entry[:3])
        for name in (".conf", ".toml"):
            inputs[str(node.path) + name] = _stat(str(node.path) + name)
        for use in node.uses:
            rel = job.project.rel(use.path)
            if rel.split("/", 1)[0] != "render" and rel not in job.graph.nodes:
                # a folder of a sequence may gain frames; a font not there may appear
                seen = os.path.dirname(use.path) if use.kind == "sequence" else use.path
                inputs[seen] = _stat(seen)
    for p in job.paths:
        folder = os.path.dirname(os.path.abspath(p))
        while True:  # where find_root and RenderChan's project.conf look
            for name in ROOT_MARKS:
                inputs[os.path.join(folder, name)] = _stat(os.path.join(folder, name))
            if os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    if any(st is not None and st[1] >= now - RACY_NS for p, st in inputs.items()
           if p not in nodes and not p.startswith(root + "/render/")):
        return None
    # a studio made again is another store (not racy: it is made just before a render)
    toml = os.path.join(os.path.abspath(studio), "studio.toml")
    inputs[toml] = _stat(toml)
    progs = programs([i.renderer for i in job.items])
    return {"inputs": inputs, "programs": {r: [exe, _stat(exe)] for r, exe in progs.items()}}


def record(job: ProjectRender, plan: dict[str, Any] | None, studio: str,
           profile: str | None, as_json: bool, stdout: str, stderr: list[str]) -> None:
    """Write the stamp of a render that succeeded; remove a stale one otherwise."""
    from vstudio.render.layout import files_of

    path = stamp_path([str(p) for p in job.paths], studio, profile, as_json)
    ok = plan is not None and all(i.status in ("cached", "rendered") and not i.warning
                                  for i in job.items)
    if not ok or plan is None:
        if os.path.exists(path):
            os.remove(path)
        return
    outputs: dict[str, list[int] | None] = {}
    for item in job.items:
        for out in item.outs:
            for rel in files_of(out, item.frame_list):
                outputs[str(job.project.root / rel)] = _stat(str(job.project.root / rel))
    for rel in job.graph.conversions:
        outputs[str(job.project.root / rel)] = _stat(str(job.project.root / rel))
    stamp = {**plan, "outputs": outputs, "stdout": stdout, "stderr": stderr}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(stamp, f)
    os.replace(tmp, path)


def as_noop(items: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """Items as a run with nothing to do reports them."""
    return [{**i, "status": "cached", "seconds": 0.0, "reason": reason, "chunks": 0,
             "error": "", "warning": ""} for i in items]
