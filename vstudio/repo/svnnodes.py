"""The project's files as a Subversion dump's node records change them, for ``svn-import``.

A dump revision is a list of node records: add, change, delete or replace one path, a file
(with its text and properties) or a folder, possibly copied from an earlier revision.
``NodeTree`` applies them to the files of the project's head and collects one revision's
changes (path -> new entry, or None), which ``svnimport`` commits. It keeps what a stored
tree does not say: every folder (Subversion keeps a folder until it is deleted, also when
a delete empties it) and the properties the import carries (``svn:executable`` as the
mode, ``svn:needs-lock`` as a lock rule). Properties that cannot be carried are counted in
``Notes`` for the report.
"""

from __future__ import annotations

from collections.abc import Callable

from vstudio.repo import paths as P
from vstudio.repo.api import Entry, folder_entry
from vstudio.repo.svndump import BadDump, Record, number
from vstudio.repo.svntexts import Texts

CARRIED = {"svn:needs-lock", "svn:executable"}
# The tree of the project revision a copy names: (copyfrom path, Subversion revision)
TreeOf = Callable[[str, int], dict[str, Entry]]
Changes = dict[str, Entry | None]


class Notes:
    """What is not carried: per kind, the distinct paths or revisions it concerns."""

    def __init__(self) -> None:
        self.places: dict[str, set[str]] = {}
        self.examples: dict[str, str] = {}

    def add(self, what: str, place: str) -> None:
        self.places.setdefault(what, set()).add(place)
        self.examples.setdefault(what, place)

    def report(self) -> list[str]:
        return [f"{what}: {len(p)} time(s), e.g. {self.examples[what]}"
                for what, p in sorted(self.places.items())]


class NodeTree:
    def __init__(self, texts: Texts, notes: Notes) -> None:
        self.t = texts
        self.notes = notes
        self.files: dict[str, Entry] = {}
        self.props: dict[str, dict[str, bytes]] = {}
        self.dirs: set[str] = set()  # folders added by a node record (a kind-less change)
        self.rules: set[str] = set()  # the project's lock rules

    def load(self, files: dict[str, Entry], rules: set[str]) -> None:
        """Start from the project's head: its files (and empty folders) and lock rules."""
        self.files, self.rules = files, rules
        self.props = {p: self.carried(p, e) for p, e in files.items() if not e.is_dir}
        add_folders(self.files, list(files))

    def carried(self, path: str, e: Entry) -> dict[str, bytes]:
        """The carried properties of a file the project has: its mode and lock rules."""
        props = {"svn:executable": b"*"} if e.mode & 0o111 else {}
        if escape(path) in self.rules:
            props["svn:needs-lock"] = b"*"
        return props

    def node(self, rec: Record, svn_rev: int, changes: Changes, tree_of: TreeOf) -> None:
        """Apply one node record of ``svn_rev``; ``tree_of`` gives a copy's source tree."""
        raw = rec.get("Node-path")
        action, kind = rec.get("Node-action"), rec.get("Node-kind")
        path = P.normalise(raw) if raw.strip("/") else ""
        where = f"{path or '/'}@r{svn_rev}"
        if not path:
            self._note_props(rec, "/", True, where)
            return
        if action in ("delete", "replace"):
            self._remove(path, changes)
        if action == "delete":
            return
        if action not in ("add", "change", "replace"):
            raise BadDump(f"unknown Node-action {action!r}")
        src = self._copy(rec, path, kind, svn_rev, changes, tree_of)
        known = self.files.get(path)
        if kind == "dir" or (kind == "" and (path in self.dirs or (known and known.is_dir) or (
                known is None and src is None and rec.text is None))):
            self.dirs.add(path)
            if action != "change":  # an empty folder until (and unless) it holds something
                self._set(folder_entry(path), changes)
            self._note_props(rec, path, True, where)
            return
        current = src or (self.files.get(path) if action == "change" else None)
        props = self.props.setdefault(path, {})
        if rec.has_props:
            if rec.get("Prop-delta") != "true":
                props.clear()
            for k in rec.deleted:
                props.pop(k, None)
            props.update(rec.props)
            self._note_props(rec, path, False, where)
        mode = 0o755 if "svn:executable" in props else 0o644
        if rec.text is not None or (current is None and action in ("add", "replace")):
            # (no text and nothing to copy: an empty file)
            oid, size = self.t.text(rec, current, current or self.files.get(path))
        elif current is not None:
            oid, size = current.oid, current.size
        else:
            raise BadDump("a change to a file that does not exist")
        self._set(Entry(path, oid, size, mode, 0.0), changes)

    def _note_props(self, rec: Record, path: str, is_dir: bool, where: str) -> None:
        for k in rec.props:
            what = prop_note(k, is_dir)
            if what:
                self.notes.add(what, path if path != "/" else where)

    def _copy(self, rec: Record, path: str, kind: str, svn_rev: int, changes: Changes,
              tree_of: TreeOf) -> Entry | None:
        if "Node-copyfrom-path" not in rec.headers:
            return None
        raw = rec.get("Node-copyfrom-path")
        cpath = P.normalise(raw) if raw.strip("/") else ""
        csvn = number(rec.headers, "Node-copyfrom-rev")
        if csvn >= svn_rev:
            raise BadDump(f"copies from {cpath or '/'}@r{csvn}, which the project does not "
                          "have (import the earlier revisions first)")
        old = tree_of(cpath, csvn)
        if kind == "dir":
            pre = cpath + "/" if cpath else ""
            copied = []
            for p, e in old.items():
                if p.startswith(pre):
                    new = f"{path}/{p[len(pre):]}"
                    self._set(Entry(new, e.oid, e.size, e.mode, e.mtime), changes)
                    copied.append(new)
                    if not e.is_dir:
                        self.props[new] = dict(self.props.get(p) or self.carried(p, e))
            add_folders(self.files, copied)
            return None
        src = old.get(cpath)
        if src is None:
            raise BadDump(f"copies {cpath}@r{csvn}, which does not exist")
        self.props[path] = dict(self.props.get(cpath) or self.carried(cpath, src))
        return src

    def _set(self, e: Entry, changes: Changes) -> None:
        self.files[e.path] = e
        changes[e.path] = e

    def _remove(self, path: str, changes: Changes) -> None:
        pre = path + "/"
        for p in [p for p in self.files if p == path or p.startswith(pre)]:
            del self.files[p]
            self.props.pop(p, None)
            changes[p] = None
        changes[path] = None  # a folder goes with all it holds (imports keep empty folders)
        self.dirs = {d for d in self.dirs if d != path and not d.startswith(pre)}

    def resolved(self) -> None:
        """The helpers' ids and sizes in place of the placeholders resolved by now."""
        for p, e in list(self.files.items()):
            new = self.t.real(e)
            if new is not e and new is not None:
                self.files[p] = new


def add_folders(files: dict[str, Entry], paths: list[str]) -> None:
    """Folder entries for the folders holding ``paths``: a stored tree (or a copy of one)
    lists only its empty folders, and a folder a later delete empties is still there."""
    for p in paths:
        for d in P.ancestors(p):
            if not d or d in files:
                break
            files[d] = folder_entry(d)


def prop_note(key: str, is_dir: bool) -> str | None:
    """How the report names a property the import does not carry (None: carried)."""
    if key in CARRIED and not is_dir:
        return None
    if key in ("svn:externals", "svn:mergeinfo"):
        return key
    if key == "svn:special":
        return "svn:special link (kept as a file holding 'link TARGET')"
    return f"{'folder' if is_dir else 'file'} property {key}"


def escape(path: str) -> str:
    """A glob that matches exactly ``path``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)
