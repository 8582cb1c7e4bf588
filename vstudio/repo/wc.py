"""A working copy: its folder, settings (``.vstudio/wc.json``), index and repository.

The operations on it are modules of their own: ``wccommit``, ``wcupdate``, ``wcfetch``
(writing stored files into it) and ``wcops`` (checkout, revert, diff, cat, locks).
Implicit add and remove: the working copy is taken as it is. A new file (not ignored by
``.vstudioignore`` or the built-in patterns) is added by the next commit, a deleted file
is removed. There is no pristine copy of each file: the index holds each file's base id
and stat; ``revert`` and ``diff`` fetch the base from the store through a bounded cache.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from vstudio.errors import Conflict, VStudioError
from vstudio.repo import paths as P
from vstudio.repo import wcindex as W
from vstudio.repo import wcstatus as S
from vstudio.repo.backend import WcBackend


class NotAWorkingCopy(VStudioError):
    """Not in a working copy: run 'vstudio checkout URL [DIR]' first."""


def writable(mode: int, readonly: bool) -> int:
    return (mode & ~0o222) if readonly else mode


class WorkingCopy:
    def __init__(self, root: Path, meta: dict[str, object], backend: WcBackend) -> None:
        self.root = root
        self.meta = meta
        self.backend = backend
        self.index = W.Index.load(str(root))

    # -- helpers ------------------------------------------------------------------------

    def save(self) -> None:
        self.index.save(str(self.root))

    def abspath(self, rel: str) -> Path:
        return self.root / rel

    def rel(self, user_path: str) -> str:
        """A path given on the command line (relative to the current folder) as repo path."""
        full = os.path.abspath(user_path)
        rel = os.path.relpath(full, self.root)
        if rel == ".":
            return ""
        if rel.startswith(".."):
            raise P.BadPath(f"{user_path} is outside the working copy {self.root}")
        return P.normalise(rel.replace(os.sep, "/"))

    def needs_lock(self, path: str) -> bool:
        return bool(self.index.rules) and P.matches_any(path, self.index.rules)

    def safe_parent(self, rel: str, checked: set[str]) -> Path:
        """Create the folders of ``rel``; refuse to write through a symbolic link."""
        d = P.parent(rel)
        if d in checked or not d:
            return self.root / d
        cur = ""
        for part in d.split("/"):
            cur = f"{cur}/{part}" if cur else part
            if cur in checked:
                continue
            full = os.path.join(self.root, cur)
            if os.path.islink(full):
                raise P.BadPath(f"{cur} is a symbolic link: refusing to write through it")
            if os.path.lexists(full) and not os.path.isdir(full):
                raise Conflict(f"{cur} is a file in the working copy but a folder upstream")
            with contextlib.suppress(FileExistsError):
                os.mkdir(full)
            checked.add(cur)
        return self.root / d

    def make_folders(self, dirs: list[str]) -> None:
        """Create the base's empty folders (and the folders above them)."""
        checked: set[str] = set()
        for d in dirs:
            self.safe_parent(d + "/-", checked)  # the parent of "d/-" is d itself

    def held_dirs(self) -> None:
        """Forget empty folders that now hold files: their contents imply them."""
        if self.index.dirs:
            held = {a for p in self.index.entries for a in P.ancestors(p)}
            self.index.dirs = [d for d in self.index.dirs if d not in held]

    def status(self, under: str = "") -> S.Status:
        res = S.status(str(self.root), self.index, under)
        if res.refreshed:
            self.save()
        return res

    def apply_lock_modes(self) -> None:
        """Files under a needs-lock rule are read-only unless this user holds the lock."""
        for p, e in self.index.entries.items():
            if self.needs_lock(p):
                full = self.root / p
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(full, writable(e[3], p not in self.index.locks))


def write_meta(root: Path, meta: dict[str, object]) -> None:
    d = root / W.META
    d.mkdir(exist_ok=True)
    path = d / "wc.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a token
    with os.fdopen(fd, "w") as f:
        json.dump(meta, f, indent=2)


def read_meta(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / W.META / "wc.json").read_text())
    except (OSError, ValueError) as e:
        raise NotAWorkingCopy(f"{root} is not a usable working copy: {e}") from None
    if not isinstance(data, dict):
        raise NotAWorkingCopy(f"{root}: bad working copy metadata")
    return data
