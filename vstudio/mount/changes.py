"""What a mount's commit records beside the files: conflict names, empty folders, wording.

Pure functions of paths, shared by the committer and by what the mount reports as pending
(``user.vstudio.pending``, ``.vstudio-status``), so both count the same changes.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from vstudio.repo import paths as P
from vstudio.repo.api import Entry


def conflict_name(path: str, user: str, rev: int, taken: dict[str, Entry]) -> str:
    name = f"{path}.conflict-{user}-r{rev}"
    n = 2
    while name in taken:
        name = f"{path}.conflict-{user}-r{rev}-{n}"
        n += 1
    return name


def empty_folders(local: list[str], files: Iterable[str], taken: Container[str]) -> list[str]:
    """The local folders nothing will be inside (and not in the revision as they are):
    recorded as empty folders."""
    held = {a for path in [*files, *local] for a in P.ancestors(path)}
    return sorted(d for d in local if d not in held and d not in taken)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
