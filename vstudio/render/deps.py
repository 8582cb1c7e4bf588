"""``vstudio deps``: what a file uses, recursively, as data and as text."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput
from vstudio.render.graph import Graph, build
from vstudio.render.project import Project, find_root
from vstudio.render.scanners import expand_sequence, has_scanner
from vstudio.render.statcache import FileCache


def deps_report(file: Path) -> dict[str, Any]:
    """``{file, scene, uses: [{path, kind, exists, used_by, render_of}], missing, cycle}``."""
    path = file.resolve()
    if not path.is_file():
        raise BadInput(f"{file} does not exist" if not path.exists() else f"{file} is a folder")
    if not has_scanner(path):
        raise BadInput(f"{file}: no scanner for '{path.suffix}' files "
                       "(.blend, .sif, .sifz, .kra, .lst)")
    project = Project(find_root(path))
    cache = FileCache(project.cache_path)
    graph = build(project, [path], cache, any_file=True)
    graph.break_library_cycles()
    cache.save()
    rel = project.rel(path)
    uses: list[dict[str, Any]] = []
    listed: dict[str, dict[str, Any]] = {}
    for node_rel in _reachable(graph, rel):
        node = graph.nodes[node_rel]
        for use in node.uses:
            if use.path in listed:  # once each, however many files, layers or blocks use it
                also = listed[use.path]["also_used_by"]
                if node_rel != listed[use.path]["used_by"] and node_rel not in also:
                    also.append(node_rel)
                continue
            source = project.source_of_output(use.path, lambda p: p.is_file())
            exists = (source is not None or project.rel(use.path) in graph.conversions
                      or (bool(expand_sequence(use.path)) if use.kind == "sequence"
                          else os.path.exists(use.path)))
            listed[use.path] = {"path": project.rel(use.path), "kind": use.kind,
                                "exists": exists, "used_by": node_rel, "also_used_by": [],
                                "detail": use.detail, "render_of": source}
            uses.append(listed[use.path])
    scene = graph.nodes[rel].scene
    return {"file": rel, "root": str(project.root),
            "scene": scene.to_json() if scene else None, "uses": uses,
            "missing": [m.__dict__ for m in graph.missing], "cycle": graph.find_cycle(),
            "warnings": graph.warnings + project.warnings}


def _reachable(graph: Graph, start: str) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()
    stack = [start]
    while stack:
        rel = stack.pop()
        if rel in seen or rel not in graph.nodes:
            continue
        seen.add(rel)
        order.append(rel)
        node = graph.nodes[rel]
        stack.extend(reversed([*node.file_deps, *node.render_deps]))
    return order


def format_flat(report: dict[str, Any]) -> str:
    lines = [report["file"]]
    for u in report["uses"]:
        mark = "" if u["exists"] else "  MISSING"
        via = f"  (render of {u['render_of']})" if u["render_of"] else ""
        users = [x for x in (u["used_by"], *u.get("also_used_by", [])) if x != report["file"]]
        by = f"  [{', '.join(users)}]" if users else ""
        lines.append(f"  {u['kind']:9} {u['path']}{via}{by}{mark}")
    return "\n".join(lines)


def format_tree(report: dict[str, Any]) -> str:
    by_user: dict[str, list[dict[str, Any]]] = {}
    for u in report["uses"]:
        for user in (u["used_by"], *u.get("also_used_by", [])):
            by_user.setdefault(user, []).append(u)
    lines = [report["file"]]

    def walk(rel: str, depth: int, trail: tuple[str, ...]) -> None:
        for u in by_user.get(rel, []):
            child = u["render_of"] or u["path"]
            mark = "" if u["exists"] else "  MISSING"
            via = f" -> render of {u['render_of']}" if u["render_of"] else ""
            lines.append(f"{'  ' * depth}{u['path']} ({u['kind']}){via}{mark}")
            if child in trail:
                lines.append(f"{'  ' * (depth + 1)}(cycle back to {child})")
            elif child in by_user:
                walk(child, depth + 1, (*trail, child))

    walk(report["file"], 1, (report["file"],))
    return "\n".join(lines)
