"""Render keys, and renderer versions cached by binary path and mtime.

dependency key(file) = H(content id, sorted dependency keys of the files it uses,
                         sorted render keys of the renders it uses)
render key(source, profile) = H(dependency key, profile settings, renderer + version,
                                RENDER_VERSION)
Paths are not in the keys, so a copy of the project elsewhere has the same keys.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import blake3

from vstudio.render import RENDER_VERSION
from vstudio.render.graph import Graph
from vstudio.render.project import Profile, cache_dir

# Renderer name -> program to run and the argument that prints its version.
PROGRAMS: dict[str, tuple[str, str]] = {
    "blender": ("blender", "--version"),
    "synfig": ("synfig", "--version"),
    "krita": ("krita", "--version"),
    "pencil2d": ("pencil2d", "--version"),
}
# What a program needs to print its version without an X display.
ENV: dict[str, dict[str, str]] = {"pencil2d": {"QT_QPA_PLATFORM": "offscreen"}}


def _h(*parts: str) -> str:
    return blake3.blake3("\0".join(parts).encode()).hexdigest()


def program(renderer: str) -> str | None:
    name = PROGRAMS.get(renderer, (renderer, ""))[0]
    return shutil.which(os.environ.get(f"VSTUDIO_{renderer.upper()}", name))


def renderer_version(renderer: str) -> str:
    """'blender 3.4.1'-like identity; 'blender missing' when the program is absent."""
    exe = program(renderer)
    if exe is None:
        return f"{renderer} missing"
    real = os.path.realpath(exe)
    st = os.stat(real)
    ident = f"{real}:{st.st_mtime_ns}:{st.st_size}"
    path = cache_dir() / "renderers.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if ident in known:
        return str(known[ident])
    try:
        out = subprocess.run([exe, PROGRAMS.get(renderer, ("", "--version"))[1]],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, **ENV.get(renderer, {})}).stdout
    except (OSError, subprocess.SubprocessError):
        return f"{renderer} unusable"
    first = next((line.strip() for line in out.splitlines() if line.strip()), "unknown")
    version = f"{renderer} {first.split()[-1] if first.split() else first}"
    known[ident] = version
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".renderers.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # only costs a --version run next time
    return version


class KeyMaker:
    """Memoised keys over one graph; ``profile_of(rel)`` gives each source's settings."""

    def __init__(self, graph: Graph, profile_of: object) -> None:
        self.graph = graph
        self.profile_of = profile_of
        self._dep: dict[str, str] = {}
        self._render: dict[str, str] = {}
        self._versions: dict[str, str] = {}

    def version(self, renderer: str) -> str:
        if renderer not in self._versions:
            self._versions[renderer] = renderer_version(renderer)
        return self._versions[renderer]

    def dep_key(self, rel: str) -> str:
        if rel not in self._dep:
            node = self.graph.nodes[rel]
            files = sorted(self.dep_key(d) for d in node.file_deps)
            renders = sorted(self.render_key(d) for d in node.render_deps)
            self._dep[rel] = _h("dep", node.cid, ",".join(files), ",".join(renders))
        return self._dep[rel]

    def inputs(self, rel: str) -> dict[str, str]:
        """What ``rel``'s render key is made of, by name, to tell what changed."""
        node = self.graph.nodes[rel]
        profile: Profile = self.profile_of(rel)  # type: ignore[operator]
        out = {"profile settings": json.dumps(profile.key_settings(), sort_keys=True),
               "renderer": self.version(node.renderer or "none")}
        todo, seen = [rel], set()
        while todo:
            f = todo.pop()
            if f not in seen:
                seen.add(f)
                out[f] = self.graph.nodes[f].cid
                todo += self.graph.nodes[f].file_deps
        for dep in node.render_deps:
            out[f"render of {dep}"] = self.render_key(dep)
        return out

    def render_key(self, rel: str) -> str:
        if rel not in self._render:
            node = self.graph.nodes[rel]
            profile: Profile = self.profile_of(rel)  # type: ignore[operator]
            renderer = node.renderer or "none"
            self._render[rel] = _h(
                "render", RENDER_VERSION, self.dep_key(rel),
                json.dumps(profile.key_settings(), sort_keys=True),
                self.version(renderer))
        return self._render[rel]
