"""Tree and commit objects in the object store.

A tree is one object per folder (like git), so a commit re-uploads only the folders on
the paths it changed, not the whole 20,000-file tree. A folder object is compact JSON::

    {"t": "tree", "e": [[name, "f", oid, size, mode, mtime] | [name, "d", oid], ...]}

sorted by name. An empty folder is ``[name, "d", EMPTY_OID]``: the empty folder object is
never stored (every reader knows it), so trees written before empty folders were kept read
the same, and a reader that predates them still reads newer trees (it finds no files in
the folder). The flat view (``load_tree``) lists an empty folder as an ``Entry`` with
``is_dir``; a folder holding anything is implied by its contents.

A commit object is JSON with ``project, rev, parent, tree, author, time, message,
changed``; the same bytes are kept in the ref ``projects/<name>/revs/<n>``.
Object ids are BLAKE3-256 of the bytes, so a folder's id is known before uploading it.
"""

from __future__ import annotations

import json
import posixpath
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import blake3

from vstudio.errors import BadInput, CorruptObject
from vstudio.repo.api import EMPTY_FOLDER_OID, Entry, folder_entry
from vstudio.repo.paths import BadPath, ancestors
from vstudio.store.api import ObjectStore, Writer

EMPTY_TREE = b'{"t":"tree","e":[]}'


def oid_of(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def encode_folder(items: list[list[Any]]) -> bytes:
    items.sort(key=lambda it: it[0])
    return json.dumps({"t": "tree", "e": items}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def decode_folder(data: bytes, oid: str) -> list[list[Any]]:
    try:
        doc = json.loads(data)
        if doc.get("t") != "tree":
            raise ValueError("not a tree")
        return list(doc["e"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CorruptObject(f"object {oid} is not a tree: {e}") from None


class TreeCache:
    """Flattened trees by root id. Trees never change, so entries never go stale."""

    def __init__(self, capacity: int = 8) -> None:
        self._lock = threading.Lock()
        self._trees: OrderedDict[str, tuple[dict[str, Entry], dict[str, str]]] = OrderedDict()
        self._capacity = capacity

    def get(self, oid: str) -> tuple[dict[str, Entry], dict[str, str]] | None:
        with self._lock:
            hit = self._trees.get(oid)
            if hit is not None:
                self._trees.move_to_end(oid)
            return hit

    def put(self, oid: str, value: tuple[dict[str, Entry], dict[str, str]]) -> None:
        with self._lock:
            self._trees[oid] = value
            while len(self._trees) > self._capacity:
                self._trees.popitem(last=False)


CACHE = TreeCache()


def load_tree(store: ObjectStore, root_oid: str) -> tuple[dict[str, Entry], dict[str, str]]:
    """(path -> file entry, folder path -> folder object id) of a whole tree."""
    hit = CACHE.get(root_oid)
    if hit is not None:
        return hit
    files: dict[str, Entry] = {}
    folders: dict[str, str] = {}
    todo = [("", root_oid)]
    while todo:
        prefix, oid = todo.pop()
        folders[prefix] = oid
        data = EMPTY_TREE if oid == EMPTY_OID else store.get_bytes(oid)
        for item in decode_folder(data, oid):
            path = f"{prefix}/{item[0]}" if prefix else str(item[0])
            if item[1] == "d" and item[2] == EMPTY_OID:
                folders[path] = EMPTY_OID
                files[path] = folder_entry(path)
            elif item[1] == "d":
                todo.append((path, str(item[2])))
            else:
                files[path] = Entry(path, str(item[2]), int(item[3]), int(item[4]),
                                    float(item[5]))
    CACHE.put(root_oid, (files, folders))
    return files, folders


EMPTY_OID = oid_of(EMPTY_TREE)
assert EMPTY_OID == EMPTY_FOLDER_OID


def canonical(path: str, e: Entry) -> Entry:
    """A committed entry as the tree keeps it: permission bits only, or an empty folder."""
    if e.is_dir:
        if e.oid != EMPTY_OID:
            raise BadInput(f"{path}: a folder entry must name the empty folder {EMPTY_OID}")
        return folder_entry(path)
    if e.mode & 0o170000 not in (0, 0o100000):
        raise BadInput(f"{path}: only files and folders can be committed")
    return Entry(path, e.oid, e.size, e.mode & 0o777 or 0o644, e.mtime)


def build_tree(store: Writer, base_files: Mapping[str, Entry],
               base_folders: Mapping[str, str], changes: Mapping[str, Entry | None],
               created: list[str] | None = None,
               folders_out: dict[str, str] | None = None,
               keep_empty: bool = False) -> tuple[str, dict[str, Entry]]:
    """Apply ``changes`` (path -> entry, or None to remove) to a tree; upload new folders.

    Returns the new root id and the new flat tree. Only folders on a changed path are
    serialised; the others keep their ids. ``store`` is a write batch: one batch for all
    folders of a commit instead of one durable write each. The ids of new folder objects
    are appended to ``created``.

    A folder entry (``Entry.is_dir``) makes an empty folder; removing its path removes it.
    A folder left empty by removals disappears, unless it is (re)added as a folder entry
    in the same change, or ``keep_empty`` (Subversion's way, for imports): then only a
    removal of the folder, or of a folder above it, takes it away.
    """
    files = dict(base_files)
    for path, entry in changes.items():
        if entry is None:
            files.pop(path, None)
        else:
            files[path] = entry
    # A folder entry added or removed: the folder itself is made again (or dropped).
    made = [p for p, e in changes.items() if e is not None and e.is_dir]
    removed = {p for p, e in changes.items() if e is None}
    dirty, gone_dirs = _dirty_folders(changes, made, removed, base_folders)
    if keep_empty and gone_dirs:  # a folder's removal takes all it holds
        pre = tuple(d + "/" for d in gone_dirs)
        for path in [p for p in files if p.startswith(pre)]:
            del files[path]
    folder_names = _folder_names(base_files, base_folders, changes, made)
    new_ids, emptied = _write_folders(store, dirty, files, folder_names, base_folders,
                                      removed, created, keep_empty)
    # A file and a folder cannot share a name.
    clash = sorted(f for f in folder_names - emptied if f in files and not files[f].is_dir)
    if clash:
        raise BadPath(f"{clash[0]!r} cannot be both a file and a folder")
    for d in made + [d for d in dirty if d in base_files]:
        if new_ids.get(d, EMPTY_OID) != EMPTY_OID:
            files.pop(d, None)  # it holds something now: implied by its contents
    root = new_ids.get("", base_folders.get("", EMPTY_OID))
    if folders_out is not None:
        folders_out[""] = root
        for f in folder_names - emptied:
            folders_out[f] = new_ids.get(f) or base_folders[f]
    return root, files


def _dirty_folders(changes: Mapping[str, Entry | None], made: list[str], removed: set[str],
                   base_folders: Mapping[str, str]) -> tuple[set[str], list[str]]:
    """The folders whose objects change (those on a changed path, up to the root), and
    the folders removed as such."""
    # Folders of the changed paths: dirname once per path, the ancestor chain once per
    # distinct folder (a 20,000-file commit has a few hundred).
    changed_dirs = {posixpath.dirname(p) for p in changes}
    changed_dirs.update(made)
    gone_dirs = [p for p in removed if p in base_folders]
    changed_dirs.update(gone_dirs)
    dirty: set[str] = set()
    for d in changed_dirs:
        if d not in dirty:
            dirty.add(d)
            dirty.update(ancestors(d) if d else ())
    return dirty, gone_dirs


def _folder_names(base_files: Mapping[str, Entry], base_folders: Mapping[str, str],
                  changes: Mapping[str, Entry | None], made: list[str]) -> set[str]:
    """Every folder (not the root) of the tree after ``changes``, before emptied ones go."""
    added_dirs = {posixpath.dirname(p) for p, e in changes.items() if e is not None}
    added_dirs.update(made)
    folder_names = {f for f in base_folders if f}
    for d in added_dirs:
        if d and d not in folder_names:
            folder_names.add(d)
            folder_names.update(a for a in ancestors(d) if a)
    # An empty folder replaced by a file is a folder no more.
    folder_names -= {p for p, e in changes.items() if e is not None and not e.is_dir
                     and p in base_files and base_files[p].is_dir}
    return folder_names


def _write_folders(store: Writer, dirty: set[str], files: dict[str, Entry],
                   folder_names: set[str], base_folders: Mapping[str, str],
                   removed: set[str], created: list[str] | None,
                   keep_empty: bool) -> tuple[dict[str, str], set[str]]:
    """Serialise and upload the ``dirty`` folders, deepest first; return their new ids and
    the folders left empty that disappear (``files`` gains the empty folders kept)."""
    children: dict[str, list[list[Any]]] = {d: [] for d in dirty}
    subfolders: dict[str, set[str]] = {d: set() for d in dirty}
    for path, e in files.items():
        d = posixpath.dirname(path)
        if d in children and not e.is_dir:
            children[d].append([posixpath.basename(path), "f", e.oid, e.size, e.mode, e.mtime])
    for f in folder_names:
        d = posixpath.dirname(f)
        if d in subfolders:
            subfolders[d].add(f)
    new_ids: dict[str, str] = {}
    emptied: set[str] = set()
    for d in sorted(dirty, key=lambda x: x.count("/") + (1 if x else 0), reverse=True):
        items = children[d]
        for sub in subfolders[d] - emptied:
            if keep_empty and _under(sub, removed):
                emptied.add(sub)
                continue
            sub_oid = new_ids.get(sub) or base_folders.get(sub)
            if sub_oid is None:
                raise BadInput(f"internal: folder {sub!r} has no tree")
            items.append([posixpath.basename(sub), "d", sub_oid])
        if d and not items:
            entry = files.get(d)
            if (entry is not None and entry.is_dir) or (keep_empty and not _under(d, removed)):
                new_ids[d] = EMPTY_OID  # an empty folder, kept
                files[d] = folder_entry(d)
            else:
                emptied.add(d)  # a folder left empty disappears
            continue
        data = encode_folder(items)
        oid = oid_of(data)
        if oid != base_folders.get(d) and oid != EMPTY_OID:
            got = store.put_bytes(data)
            if got != oid:
                raise CorruptObject(f"the store named a tree {got}, expected {oid}")
            if created is not None:
                created.append(oid)
        new_ids[d] = oid
    return new_ids, emptied


def _under(path: str, removed: set[str]) -> bool:
    """Whether ``path`` or a folder above it is removed."""
    if not removed:
        return False
    return path in removed or any(a in removed for a in ancestors(path) if a)
