#!/usr/bin/env python3
"""Summarise how vstudio's modules depend on each other, against DESIGN.md's layers.

Prints five counts (and, with ``-v``, what makes them up):

- cross-layer imports: an import from one layer into a layer it must not reach
  (see ``ALLOWED``: imports only go down, the worker reaches the manager over HTTP);
- circles: groups of modules of different layers that import each other, directly or
  through others (strongly connected components of the module graph);
- private imports: ``from x import _y`` or ``x._y`` where ``x`` is another module;
- dead functions: functions and methods whose name is referenced nowhere in vstudio/
  (decorated ones are entry points: routes, commands, fixtures, and count as used);
- web/SQL/HTTP in the domain: imports of fastapi, starlette, sqlalchemy or httpx (or of
  the studio's HTTP client) in repo/, farm/ or render/;
- long modules and long functions: over ``MODULE_LINES`` lines, or a function (or method)
  over ``FUNCTION_LINES`` lines, unless its module lists it in ``SIZE_REASONS`` with why.

Usage: ``python scripts/import_graph.py [-v] [ROOT]`` (ROOT: the checkout, default ``.``).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

# DESIGN.md's layers, by top-level package (or module) of vstudio.
LAYER_OF = {
    "cli": "cli", "web": "transport", "api": "transport", "blender_addon": "transport",
    "repo": "domain", "farm": "domain", "render": "domain",
    "store": "storage", "catalog": "storage",
    "worker": "node", "jobtypes": "node",
    "client": "client",
    "httpapi": "client",  # where the API client lived before vstudio/client/ (old trees)
    "mount": "mount",
    "studio": "wiring", "grants": "wiring",
    "config": "base", "errors": "base", "text": "base", "__init__": "base", "__main__": "cli",
    # modules whose layer is not their folder's
    "store.remote": "client",  # the store's HTTP client
}
# Which layers a layer may import (its own layer is always allowed).
# The node may use pure domain logic (scanners, models): a domain module none of whose
# imports, followed to the end, reaches the catalog or the store (see ``cross_layer``).
ALLOWED = {
    "cli": {"transport", "domain", "storage", "node", "client", "mount", "wiring", "base"},
    "transport": {"domain", "storage", "client", "wiring", "base", "node"},
    "domain": {"storage", "wiring", "base", "node"},
    "storage": {"base"},
    "node": {"client", "base", "domain"},
    "client": {"base", "storage", "domain"},  # a client speaks the domain's types
    "mount": {"domain", "storage", "client", "wiring", "base"},
    "wiring": {"storage", "base"},
    "base": set(),
}
NODE_MAY_NOT_REACH = {"storage", "wiring"}
# Dependency inversion: the farm declares the records and the persistence interface it
# needs, and the catalog implements it, so the catalog may import these two.
DECLARED_INTERFACES = {"vstudio.farm.model", "vstudio.farm.ports"}
DOMAIN_LAYER = "domain"
FORBIDDEN_IN_DOMAIN = ("fastapi", "starlette", "sqlalchemy", "httpx", "vstudio.client",
                       "vstudio.httpapi")


MODULE_LINES = 400
FUNCTION_LINES = 60
# "No module over ~400 lines and no function over ~60 lines without a reason": the reasons.
SIZE_REASONS = {
    "vstudio.catalog.migrations.versions.0003_farm.upgrade":
        "a migration is frozen as it shipped (its table definitions are written out in full)",
}


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: list[tuple[str, int]] = field(default_factory=list)  # (module, line)


def layer(module: str) -> str:
    parts = module.split(".")
    if ".".join(parts[1:3]) in LAYER_OF:
        return LAYER_OF[".".join(parts[1:3])]
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "__init__", "base")


def load(root: Path) -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for path in sorted((root / "vstudio").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        mods[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return mods


def resolve(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if mod.path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def target(mods: dict[str, Module], name: str) -> str | None:
    """The vstudio module an import names (the longest known prefix)."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(mods: dict[str, Module]) -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = defaultdict(dict)
    for mod in mods.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = resolve(mod, node)
                names = [f"{src}.{a.name}" for a in node.names]
            else:
                continue
            for full in names:
                mod.imports.append((full, node.lineno))
                dst = target(mods, full)
                if dst and dst != mod.name:
                    graph[mod.name].setdefault(dst, node.lineno)
    return graph


def reaches(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), {}):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def cross_layer(graph: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for src, dsts in sorted(graph.items()):
        for dst, line in sorted(dsts.items()):
            a, b = layer(src), layer(dst)
            if a == "storage" and dst in DECLARED_INTERFACES:
                continue
            if a != b and b not in ALLOWED[a]:
                out.append(f"{src}:{line} ({a}) -> {dst} ({b})")
            elif a == "node" and b == "domain":
                bad = sorted(m for m in reaches(graph, dst) if layer(m) in NODE_MAY_NOT_REACH)
                if bad:
                    out.append(f"{src}:{line} ({a}) -> {dst} ({b}), which reaches {bad[0]}")
    return out


def components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                    break
                if nxt in on:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    out.append(sorted(comp))
    return out


def circles(graph: dict[str, dict[str, int]]) -> list[str]:
    out = []
    for comp in components(graph):
        layers = {layer(m) for m in comp}
        if len(comp) > 1 and len(layers) > 1:
            out.append(", ".join(comp))
    return out


def private_uses(mods: dict[str, Module]) -> list[str]:
    out = []
    for mod in mods.values():
        aliases: dict[str, str] = {}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.ImportFrom):
                src = resolve(mod, node)
                for a in node.names:
                    full = f"{src}.{a.name}"
                    if full in mods:
                        aliases[a.asname or a.name] = full
                    elif _private(a.name) and src != mod.name:
                        out.append(f"{mod.name}:{node.lineno} from {src} import {a.name}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(mod.tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr)
                    and isinstance(node.value, ast.Name) and node.value.id in aliases):
                out.append(f"{mod.name}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return sorted(out)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


Function = ast.FunctionDef | ast.AsyncFunctionDef


def definitions(mods: dict[str, Module]) -> Iterator[tuple[str, Function]]:
    for mod in mods.values():
        for node in ast.walk(mod.tree):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield mod.name, child


def references(mods: dict[str, Module]) -> dict[str, int]:
    """How often each name is referenced (loaded, called, imported or named in a string)."""
    counts: dict[str, int] = defaultdict(int)
    for mod in mods.values():
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Name):
                counts[node.id] += 1
            elif isinstance(node, ast.Attribute):
                counts[node.attr] += 1
            elif isinstance(node, ast.alias):
                counts[node.name.rpartition(".")[2]] += 1
                if node.asname:
                    counts[node.asname] += 1
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in {"getattr", "hasattr"} and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                counts[str(node.args[1].value)] += 1
            elif isinstance(node, ast.keyword) and node.arg:
                counts[node.arg] += 1
    return counts


def module_uses(mods: dict[str, Module]) -> set[tuple[str, str]]:
    """(module, name) pairs a module-level function is reached by: a load of the name in
    its own module, ``from module import name`` elsewhere, or ``alias.name`` where
    ``alias`` is the module."""
    uses: set[tuple[str, str]] = set()
    for mod in mods.values():
        aliases: dict[str, str] = {}
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Name):
                uses.add((mod.name, node.id))
            elif isinstance(node, ast.ImportFrom):
                src = resolve(mod, node)
                for a in node.names:
                    full = f"{src}.{a.name}"
                    if full in mods:
                        aliases[a.asname or a.name] = full
                    uses.add((src, a.name))
            elif isinstance(node, ast.Import):
                for a in node.names:
                    aliases[a.asname or a.name] = a.name
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Attribute):
                dotted = _dotted(node.value)
                if dotted in aliases:
                    uses.add((aliases[dotted], node.attr))
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in {"getattr", "hasattr"} and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                uses.add(("*", str(node.args[1].value)))
    return uses


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def reexported(mods: dict[str, Module], uses: set[tuple[str, str]], mod: str, name: str) -> bool:
    """A package that imports ``name`` from ``mod`` passes it on: is it used through it?"""
    for pkg in mods.values():
        if pkg.path.name == "__init__.py" and (mod, name) in uses and pkg.name != mod:
            for node in ast.walk(pkg.tree):
                if (isinstance(node, ast.ImportFrom) and resolve(pkg, node) == mod
                        and any(a.name == name for a in node.names)
                        and any(src != pkg.name for src, n in uses if n == name)):
                    return True
    return False


# Methods and functions a framework calls by name: Blender's add-on hooks, FUSE's
# operations, click's group protocol, pydantic's hook, the job-type module protocol
# (``jobtypes/__init__.py`` calls ``module.build``).
FRAMEWORK_CALLBACKS = {
    "register", "unregister", "draw", "draw_header", "execute", "invoke", "poll", "modal",
    "init_with_config", "destroy", "opendir", "releasedir", "readdir", "getxattr",
    "listxattr", "statfs", "lookup", "getattr", "open", "read", "release", "forget",
    "readdir_fuse_3", "rename_fuse_3", "fsyncdir",
    "list_commands", "get_command", "model_post_init", "build",
}


def dead(mods: dict[str, Module]) -> list[str]:
    """Functions nothing in vstudio/ calls. Module-level functions are followed through
    imports; methods by name, so a method name used anywhere counts as a caller."""
    refs = references(mods)
    uses = module_uses(mods)
    root = next(iter(mods.values())).path.parent
    while root.name != "vstudio":
        root = root.parent
    for page in root.rglob("*.html"):  # templates call methods and helpers too
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", page.read_text()):
            refs[word] += 1
    top = {(m, n) for m, mod in mods.items() for n in _top_functions(mod)}
    out = []
    for modname, fn in definitions(mods):
        name = fn.name
        if name in FRAMEWORK_CALLBACKS:
            continue
        entry = name.startswith("__") or name in {"main", "upgrade", "downgrade"}
        registered = any(not _plain(d) for d in fn.decorator_list)
        if (modname, name) in top:
            used = ("*", name) in uses or (modname, name) in uses
        else:  # a method: any use of its name counts
            used = refs.get(name, 0) > 0
        if not (used or entry or registered):  # registered: routes, commands, fixtures
            out.append(f"{modname}:{fn.lineno} {name}")
    return sorted(out)


def _top_functions(mod: Module) -> list[str]:
    return [n.name for n in mod.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _plain(deco: ast.expr) -> bool:
    """Decorators that do not register a function somewhere."""
    name = deco.id if isinstance(deco, ast.Name) else getattr(deco, "attr", "")
    return name in {"staticmethod", "classmethod", "property", "cached_property",
                    "contextmanager", "asynccontextmanager", "lru_cache", "cache",
                    "override", "abstractmethod"}


def domain_leaks(mods: dict[str, Module]) -> list[str]:
    out = []
    for mod in mods.values():
        if layer(mod.name) != DOMAIN_LAYER:
            continue
        for full, line in mod.imports:
            if any(full == f or full.startswith(f + ".") for f in FORBIDDEN_IN_DOMAIN):
                out.append(f"{mod.name}:{line} imports {full}")
    return sorted(set(out))


def long_code(mods: dict[str, Module]) -> list[str]:
    out = []
    for mod in mods.values():
        lines = len(mod.path.read_text().splitlines())
        if lines > MODULE_LINES and mod.name not in SIZE_REASONS:
            out.append(f"{mod.name}: module of {lines} lines")
        for node in ast.walk(mod.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                full = f"{mod.name}.{node.name}"
                if length > FUNCTION_LINES and full not in SIZE_REASONS:
                    out.append(f"{full}: function of {length} lines")
    return sorted(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=".")
    ap.add_argument("-v", "--verbose", action="store_true", help="list what is counted")
    args = ap.parse_args(argv)
    mods = load(Path(args.root))
    graph = edges(mods)
    sections = [
        ("cross-layer imports", cross_layer(graph)),
        ("circles between layers", circles(graph)),
        ("private imports", private_uses(mods)),
        ("dead functions", dead(mods)),
        ("fastapi/sqlalchemy/httpx in the domain", domain_leaks(mods)),
        (f"modules over {MODULE_LINES} or functions over {FUNCTION_LINES} lines without a reason",
         long_code(mods)),
    ]
    print(f"modules: {len(mods)}, import edges: {sum(len(d) for d in graph.values())}")
    for title, items in sections:
        print(f"{title}: {len(items)}")
        if args.verbose:
            for item in items:
                print(f"    {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
