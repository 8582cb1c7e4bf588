"""The folder cache of a working copy's index: which folders need not be listed again.

Listing a folder (``scandir``) is only needed to find new files; a folder whose mtime has
not changed has had no entry added, removed or renamed. So, as git's untracked cache
does, the index remembers per *clean* folder (every entry indexed or ignored, no links,
every indexed file present) its mtime, the slice of the index columns holding its files,
their full ``st_mode`` and its subfolders. ``wcscan.walk`` then only stat-s the indexed
files of such a folder by name (each still compared with the index), and lists it again
the moment its mtime differs.

The cache is stored as an optional ``dcache`` key of the index::

    {"ignore": [patterns], "conflicts": {path: copy}, "st_modes": bytes (uint32 per path),
     "dirs": {folder: (mtime_ns, first, count, [subfolders])}}

and dropped whenever the index's entries change (``Index.entries``), or when the ignore
patterns or conflict copies differ from those it was made under.
"""

from __future__ import annotations

from array import array

from vstudio.repo.wcindex import Index, read_ignore
from vstudio.repo.wcscan import Scan

# A folder changed within this long before the scan began is not cached: a later change
# inside the file system's timestamp granularity could leave its mtime unchanged (FAT
# and some network file systems keep 1 or 2 s steps).
RACY_NS = 3_000_000_000


def _groups(paths: list[str]) -> tuple[dict[str, tuple[int, int]], set[str]]:
    """folder -> (first, count) of its files in the index; folders not contiguous."""
    out: dict[str, tuple[int, int]] = {}
    broken: set[str] = set()
    prev = None
    for i, p in enumerate(paths):
        d = p.rpartition("/")[0]
        if d != prev:
            if d in out:
                broken.add(d)  # not contiguous (an index written by an older version)
            else:
                out[d] = (i, 0)
            prev = d
        first, n = out[d]
        out[d] = (first, n + 1)
    for d in broken:
        del out[d]
    return out, broken


def rebuild(root: str, index: Index, scan: Scan) -> bool:
    """Update ``index.dcache`` after a whole-copy scan; True when it changed."""
    old = index.dcache
    limit = scan.start - RACY_NS
    if old is not None and not any(clean and mtime < limit
                                   for mtime, clean, _subs in scan.listed.values()):
        return False  # nothing new to cache (e.g. only folders with new files listed)
    table = index.table()
    n = len(table.paths)
    modes = array("I")
    if old is not None:
        modes.frombytes(old["st_modes"])
    else:
        modes.frombytes(bytes(4 * n))
    for i, m in scan.st_modes.items():
        modes[i] = m
    dirs: dict[str, tuple[int, int, int, list[str]]] = {}
    if old is not None:
        for rel in scan.hits:
            dirs[rel] = old["dirs"][rel]
    groups, broken = _groups(table.paths)
    seen = scan.seen
    for rel, (mtime, clean, subs) in scan.listed.items():
        if not clean or mtime >= limit:
            continue
        if rel in broken:
            continue  # its files are not contiguous in the index
        first, count = groups.get(rel, (0, 0))
        if count and seen[first:first + count].count(0):
            continue  # an indexed file is missing (or ignored): list it each time
        dirs[rel] = (mtime, first, count, sorted(subs))
    new = {"ignore": read_ignore(root), "conflicts": dict(index.conflicts),
           "st_modes": modes.tobytes(), "dirs": dirs}
    if new == old:
        return False
    index.dcache = new
    return True
