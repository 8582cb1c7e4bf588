"""Repository paths: normalised, relative, '/'-separated, confined to the project."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable

from vstudio.errors import BadInput

META_DIR = ".vstudio"  # a working copy's metadata folder; never a repository path
_META_KEY = META_DIR.casefold()
_META_UPPER = META_DIR.upper()
MAX_PATH = 1000


class BadPath(BadInput):
    """Bad repository path."""


def normalise(path: str) -> str:
    """Return the canonical form of a path inside a project, or raise ``BadPath``.

    No absolute paths, no ``..``, no empty names, no control characters or backslashes
    (a Windows artist's ``a\\b`` would mean something else there), and no folder or file
    named ``.vstudio`` at any depth in any case: a committed ``sub/.vstudio/wc.json``
    would make that folder of every checkout a working copy of a server the committer
    chose, and ``vstudio update`` run there would send the artist's token to it.
    """
    if not isinstance(path, str) or not path:
        raise BadPath("empty path")
    # isprintable() is False for control characters (and other invisible ones that
    # would confuse artists), checked in C: this runs for every path of a checkout.
    if not path.isprintable() or "\\" in path:
        raise BadPath(f"bad path {path!r}: control characters and backslashes are not allowed")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise BadPath(f"bad path {path!r}: absolute paths are not allowed")
    parts = path.split("/")
    if "" in parts or "." in parts:
        parts = [p for p in parts if p not in ("", ".")]
    if not parts:
        raise BadPath(f"bad path {path!r}: names no file")
    if ".." in parts:
        raise BadPath(f"bad path {path!r}: '..' is not allowed")
    # Every spelling of the reserved name starts with a dot: most paths skip the loop.
    if (path[0] == "." or "/." in path) and any(_reserved(p) for p in parts):
        raise BadPath(f"bad path {path!r}: {META_DIR} (in any case) is the name of a "
                      "working copy's own folder, reserved at every depth")
    out = "/".join(parts)
    if len(out.encode("utf-8", "surrogateescape")) > MAX_PATH:
        raise BadPath(f"path too long ({len(out)} characters): {out[:60]}...")
    return out


def _reserved(name: str) -> bool:
    """Would this name be the working copy's folder on some artist's file system?

    Windows drops trailing dots and spaces (".vstudio." is ".vstudio" there); case-
    insensitive file systems also fold "ſ" to "s" and "ı" to "I", hence both foldings.
    """
    if len(name) < len(META_DIR):
        return False
    name = name.rstrip(". ")
    return name.casefold() == _META_KEY or name.upper() == _META_UPPER


def parent(path: str) -> str:
    return posixpath.dirname(path)


def ancestors(path: str) -> Iterable[str]:
    """Folders containing ``path``, innermost first, ending with '' (the root)."""
    d = posixpath.dirname(path)
    while d:
        yield d
        d = posixpath.dirname(d)
    yield ""


def check_case_collisions(paths: Iterable[str], folders: Iterable[str],
                          new: Iterable[str]) -> None:
    """Refuse new paths that differ from another path (or its folders) only by case.

    ``paths`` are the files and ``folders`` the folders already in the tree.
    """
    new = list(new)
    if not new:
        return
    seen = {p.casefold(): p for p in paths}
    seen.update((f.casefold(), f) for f in folders if f)
    checked_dirs: set[str] = set()
    for p in new:
        cands = [p]
        d = posixpath.dirname(p)
        while d and d not in checked_dirs:  # each folder is checked once
            checked_dirs.add(d)
            cands.append(d)
            d = posixpath.dirname(d)
        for cand in cands:
            other = seen.setdefault(cand.casefold(), cand)
            if other != cand:
                raise BadPath(f"{p!r} collides with {other!r}: the names differ only by case, "
                              "which Windows and macOS artists cannot check out")


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    """Glob match on the whole path or, for patterns without '/', on the file name."""
    name = posixpath.basename(path)
    for pat in patterns:
        if fnmatch.fnmatchcase(path, pat) or ("/" not in pat and fnmatch.fnmatchcase(name, pat)):
            return True
    return False
