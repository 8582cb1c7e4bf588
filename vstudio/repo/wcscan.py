"""The scan of a working copy against its index: which files are new or have another
stat than the index remembers, which are gone, and which folders are empty.

Standard library only, like ``wcindex``: ``vstudio status``'s fast path runs it. Each
folder is listed through one descriptor (each stat an ``fstatat`` of a bare name);
folders the folder cache (``wccache``) vouches for are not listed again.
"""

from __future__ import annotations

import os
import stat as st
import time

from vstudio.repo.wcindex import META, Ignore, Index, Table, read_ignore

# Not ``typing.TYPE_CHECKING``: importing typing costs the fast status path ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Scan:
    """What a scan found: files that are new or whose stat changed, and what was seen."""

    def __init__(self) -> None:
        self.changed: dict[str, os.stat_result] = {}  # not in the index, or stat differs
        self.links: list[str] = []  # symbolic links: never committed
        self.seen = bytearray()  # per index entry: 1 when found on disk
        # Folders listed (not answered by the folder cache): rel -> (folder mtime_ns,
        # clean: only indexed or ignored entries, subfolders); feeds ``wccache.rebuild``.
        self.listed: dict[str, tuple[int, bool, list[str]]] = {}
        self.st_modes: dict[int, int] = {}  # index position -> st_mode seen when listing
        self.hits: list[str] = []  # folders answered by the folder cache
        self.empty: list[str] = []  # folders (not the top) holding nothing not ignored
        self.start = time.time_ns()


def _cached_dir(fd: int, rel: str, c: tuple[int, int, int, list[str]], table: Table,
                cmodes: memoryview, seen: bytearray, subdirs: list[str]) -> bool:
    """Answer a folder from the cache: True when its mtime is unchanged (no entry added,
    removed or renamed since the cache was made) and each indexed file's stat matches."""
    mtime, first, count, subs = c
    if os.fstat(fd).st_mtime_ns != mtime:
        return False
    end = first + count
    k = len(rel) + 1 if rel else 0
    stat = os.stat
    try:
        got = [(s.st_size, s.st_mtime_ns, s.st_mode) for s in
               [stat(p[k:], dir_fd=fd, follow_symlinks=False) for p in table.paths[first:end]]]
    except OSError:
        return False
    stats = table.stats
    if got != list(zip(stats[2 * first:2 * end:2], stats[2 * first + 1:2 * end:2],
                       cmodes[first:end], strict=True)):
        return False
    seen[first:end] = b"\x01" * count
    subdirs.extend(subs)
    return True


def _scan_dirs(root: str, dirs: list[str], ign: Ignore, table: Table, out: Scan,
               subdirs: list[str], cache: dict[str, Any] | None) -> None:
    """Scan ``dirs`` (not recursively), comparing each file's stat with the index."""
    cdirs = cache["dirs"] if cache else {}
    cmodes = memoryview(cache["st_modes"]).cast("I") if cache else memoryview(b"")
    for rel in dirs:
        # A folder descriptor: each stat is an fstatat() of a bare name, so the kernel
        # does not walk the whole path again for every file.
        try:
            fd = os.open(root + "/" + rel if rel else root, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            c = cdirs.get(rel)
            if c is not None and _cached_dir(fd, rel, c, table, cmodes, out.seen, subdirs):
                out.hits.append(rel)
                if rel and not c[2] and not c[3]:  # no files, no folders
                    out.empty.append(rel)
                continue
            _list_dir(fd, rel, ign, table, out, subdirs)
        finally:
            os.close(fd)


def _list_dir(fd: int, rel: str, ign: Ignore, table: Table, out: Scan,
              subdirs: list[str]) -> None:
    """List one folder (open as ``fd``): new files and files whose stat changed go to
    ``out.changed``, its subfolders to ``subdirs``; ``out.listed`` records the folder."""
    # Locals, not attribute look-ups, in the loop that runs once per file.
    pos, stats, modes = table.pos, table.stats, table.modes
    seen, changed, st_modes = out.seen, out.changed, out.st_modes
    names, suffixes = ign.files.names, ign.files.suffixes
    slow = bool(ign.files.other) or bool(ign.extra)
    dir_mtime = os.fstat(fd).st_mtime_ns
    hidden = rel in ign.hidden  # an ignored folder entered for its tracked files
    clean = True
    held = False  # anything not ignored in it
    mine: list[str] = []
    try:
        it = os.scandir(fd)
    except OSError:
        return
    with it:
        for e in it:
            name = e.name
            r = rel + "/" + name if rel else name
            if (hidden or name in names or (suffixes and name.endswith(suffixes))) \
                    and r not in pos and not ign.holds_tracked(r, table):
                continue  # ignored (file or folder): no stat needed
            try:
                # One stat call gives the type too: cheaper than is_symlink()/is_dir().
                s = e.stat(follow_symlinks=False)
            except FileNotFoundError:  # vanished during the scan: counts as absent
                clean = False
                continue
            kind = s.st_mode & 0o170000
            if kind != 0o100000:  # not a regular file
                if kind == 0o040000:
                    if not (not rel and name == META) and (
                            not (hidden or ign.skip_dir(r, name))
                            or ign.enter_ignored(r, table)):
                        subdirs.append(r)
                        mine.append(r)
                else:
                    clean, held = False, True
                    if kind == 0o120000:
                        out.links.append(r)
                continue
            if (slow or hidden) and r not in pos and (hidden or ign.skip_file(r, name)):
                continue  # a tracked file is never ignored
            held = True
            i = pos.get(r)
            if i is None:
                changed[r] = s
                clean = False
                continue
            seen[i] = 1
            st_modes[i] = s.st_mode
            if (stats[2 * i] != s.st_size or stats[2 * i + 1] != s.st_mtime_ns
                    or modes[i] != (1 if s.st_mode & 0o100 else 0)):
                changed[r] = s
    out.listed[rel] = (dir_mtime, clean, mine)
    if rel and not held and not mine:
        out.empty.append(rel)


def walk(root: str, index: Index, under: str = "") -> Scan:
    """Scan the working copy (below ``under``) against the index, folder by folder.

    Folders whose mtime has not changed since the folder cache was made are not listed
    again (as git's untracked cache does): their indexed files are still each stat-ed.
    """
    patterns = read_ignore(root)
    ign = Ignore(patterns, set(index.conflicts.values()))
    table = index.table()
    out = Scan()
    out.seen = bytearray(len(table.paths))
    if under and not os.path.isdir(os.path.join(root, under)):
        try:
            s = os.lstat(os.path.join(root, under))
        except FileNotFoundError:
            return out
        if st.S_ISLNK(s.st_mode):
            out.links.append(under)
            return out
        i = table.pos.get(under)
        if i is not None:
            out.seen[i] = 1
        if i is None or table.entry(i)[1:3] != (s.st_size, s.st_mtime_ns) or \
                table.modes[i] != (1 if s.st_mode & 0o100 else 0):
            out.changed[under] = s
        return out
    cache = index.dcache
    if cache is not None and (cache.get("ignore") != patterns
                              or cache.get("conflicts") != index.conflicts
                              or len(cache.get("st_modes", b"")) != 4 * len(table.paths)):
        cache = index.dcache = None  # made under other ignore rules or conflicts
    # One thread: measured here, splitting the folders between threads was slower, as
    # each stat is too short to pay for handing the GIL over.
    level = [under]
    while level:
        nxt: list[str] = []
        _scan_dirs(root, level, ign, table, out, nxt, cache)
        level = nxt
    return out
