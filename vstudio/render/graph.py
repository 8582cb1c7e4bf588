"""The dependency graph of a project: nodes are files, edges are uses.

Two kinds of edge: a *file* use needs the bytes of another file (a library, a texture);
a *render* use needs another source's render output (an edit's strip reading
``render/shots/s1.blend.png/``). Targets of a folder are its roots (sources no other
file uses) plus the sources their render uses reach, so a library is never a target.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vstudio.errors import BadInput
from vstudio.render.model import SceneInfo, Use
from vstudio.render.project import RENDER_DIR, Project
from vstudio.render.scanners import (
    expand_sequence,
    has_scanner,
    installed_font,
    renderer_for,
)
from vstudio.render.statcache import FileCache


class MissingFiles(BadInput):
    """Files that the project uses do not exist."""


class CycleError(BadInput):
    """The files use each other in a cycle."""


@dataclass
class Node:
    path: Path
    rel: str
    cid: str = ""
    renderer: str | None = None
    scene: SceneInfo | None = None
    uses: list[Use] = field(default_factory=list)
    file_deps: list[str] = field(default_factory=list)  # rels of files whose bytes it needs
    render_deps: list[str] = field(default_factory=list)  # rels of sources whose render it needs


@dataclass
class Missing:
    path: str  # relative to the project root when inside it
    used_by: str
    kind: str
    detail: str

    def message(self) -> str:
        what = f" ({self.kind} {self.detail})" if self.detail else f" ({self.kind})"
        return f"{self.path} is missing, used by {self.used_by}{what}"


@dataclass
class Graph:
    project: Project
    nodes: dict[str, Node] = field(default_factory=dict)
    missing: list[Missing] = field(default_factory=list)
    explicit: list[str] = field(default_factory=list)  # sources named on the command line
    found: list[str] = field(default_factory=list)  # sources found in the folders named
    warnings: list[str] = field(default_factory=list)
    # render/X.wav read by a file -> X, the sound file converted there (RenderChan's way)
    conversions: dict[str, str] = field(default_factory=dict)

    def users(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {rel: set() for rel in self.nodes}
        for node in self.nodes.values():
            for dep in (*node.file_deps, *node.render_deps):
                out.setdefault(dep, set()).add(node.rel)
        return out

    def check(self) -> None:
        """Raise for missing files (naming each and its user) and for cycles other than
        Blender's library cycles, which are broken with a warning."""
        if self.missing:
            lines = [m.message() for m in self.missing]
            raise MissingFiles("missing files:\n  " + "\n  ".join(lines))
        self.break_library_cycles()
        cycle = self.find_cycle()
        if cycle:
            raise CycleError("dependency cycle: " + " -> ".join(cycle))

    def break_library_cycles(self) -> None:
        """Blender lets .blend files link each other in a cycle (a library linking back
        to its user); drop the edge back so keys and order stay defined, and say so."""
        while True:
            cycle = self.find_cycle()
            if not cycle or not all(r.endswith(".blend") for r in cycle):
                return
            a, b = cycle[-2], cycle[-1]
            if b not in self.nodes[a].file_deps:
                return  # a render read in the cycle: a real error
            self.nodes[a].file_deps.remove(b)
            self.warnings.append(f"library cycle {' -> '.join(cycle)}: Blender allows it; "
                                 f"the link from {a} back to {b} is left out of its key")

    def find_cycle(self) -> list[str] | None:
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        stack: list[str] = []

        def visit(rel: str) -> list[str] | None:
            state[rel] = 1
            stack.append(rel)
            node = self.nodes[rel]
            for dep in (*node.file_deps, *node.render_deps):
                if state.get(dep) == 1:
                    return [*stack[stack.index(dep):], dep]
                if dep not in state:
                    found = visit(dep)
                    if found:
                        return found
            stack.pop()
            state[rel] = 2
            return None

        for rel in sorted(self.nodes):
            if rel not in state:
                found = visit(rel)
                if found:
                    return found
        return None

    def targets(self) -> list[str]:
        """Sources to render, dependencies first."""
        users = self.users()
        start = list(self.explicit) + [r for r in self.found if not users.get(r)]
        order: list[str] = []
        seen: set[str] = set()

        def visit(rel: str) -> None:
            if rel in seen:
                return
            seen.add(rel)
            for dep in self.nodes[rel].render_deps:
                visit(dep)
            order.append(rel)

        for rel in start:
            visit(rel)
        return order


def build(project: Project, paths: Iterable[Path], cache: FileCache,
          any_file: bool = False) -> Graph:
    """Scan the given files and folders and everything they use, recursively.

    ``any_file`` accepts named files that are not sources (``vstudio deps list.lst``).
    """
    graph = Graph(project)
    queue: list[Path] = []
    for p in paths:
        p = Path(os.path.abspath(p))
        if p.is_dir():
            for f in _sources_in(p, project):
                graph.found.append(project.rel(f))
                queue.append(f)
        elif p.exists():
            if not renderer_for(p) and not any_file:
                raise BadInput(f"{p} is not a file vstudio can render "
                               "(.blend, .sif, .sifz, .kra)")
            graph.explicit.append(project.rel(p))
            queue.append(p)
        else:
            raise BadInput(f"{p} does not exist")
    while queue:
        path = queue.pop()
        rel = project.rel(path)
        if rel in graph.nodes:
            continue
        node = graph.nodes[rel] = Node(path, rel, renderer=renderer_for(path))
        node.cid = cache.stat_id(path)
        if not has_scanner(path):
            continue
        scan = cache.scan(path, node.cid)
        node.scene = scan.scene
        node.uses = scan.uses
        for use in scan.uses:
            _add_use(graph, node, use, queue)
    return graph


def _add_use(graph: Graph, node: Node, use: Use, queue: list[Path]) -> None:
    project = graph.project
    sound = project.audio_source(use.path)
    if sound is not None:  # made before rendering (reads.convert_audio), keyed by its source
        graph.conversions[project.rel(use.path)] = sound
        if sound not in node.file_deps:
            node.file_deps.append(sound)
        if sound not in graph.nodes:
            queue.append(project.root / sound)
        return
    source = project.source_of_output(use.path, lambda p: p.is_file())
    if source is not None:
        if source not in node.render_deps:
            node.render_deps.append(source)
        if source not in graph.nodes:
            queue.append(project.root / source)
        return
    files = expand_sequence(use.path) if use.kind == "sequence" else [use.path]
    files = [f for f in files if os.path.isfile(f)]
    if not files and use.kind == "font" and installed_font(os.path.basename(use.path)):
        # Synfig and Blender fall back to the installed font of that name (RenderChan's
        # own template names fonts that way)
        graph.warnings.append(f"{project.rel(use.path)} (font used by {node.rel}) is not "
                              f"there; the installed {installed_font(os.path.basename(use.path))}"
                              " is used")
        return
    if not files:
        graph.missing.append(Missing(project.rel(use.path), node.rel, use.kind, use.detail))
        return
    for f in files:
        rel = project.rel(f)
        if rel not in node.file_deps:
            node.file_deps.append(rel)
        if rel not in graph.nodes:
            queue.append(Path(f))


def _sources_in(folder: Path, project: Project) -> list[Path]:
    out: list[Path] = []
    render_dir = project.root / RENDER_DIR
    for dirpath, dirnames, filenames in os.walk(folder):
        # Hidden folders hold caches and working-copy metadata; render/ holds outputs.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and Path(dirpath, d) != render_dir)
        out += [Path(dirpath, f) for f in sorted(filenames)
                if not f.startswith(".") and renderer_for(f)]
    return out
