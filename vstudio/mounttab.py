"""Reading the kernel's mount tables (``/proc/self/mounts``, ``/proc/self/mountinfo``).

Shared by the mount runner (is anything mounted here? which device?), the path
commands (which vstudio mounts exist?) and the render cache (which project of which
server is a folder in?), so it sits below all of them and must stay quick to import.

A vstudio mount's source name is ``vstudio:PROJECT`` for a studio folder's project and
``vstudio:PROJECT@SERVER`` for a server's (``source_name``): project names hold no ``@``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

PREFIX = "vstudio:"


class MountSource(NamedTuple):
    project: str
    server: str | None  # http(s)://HOST:PORT, or None: a studio folder's (or not known)


def source_name(project: str, server: str | None) -> str:
    """The source name a mount of ``project`` shows in the mount table.

    A server address that libfuse's option list or the table could not carry whole (a
    comma, a backslash, white space) is left out: such a mount counts as one of no known
    server, which costs only the project's scope of the render cache.
    """
    if server and not any(c in server for c in ",\\ \t\n"):
        return f"{PREFIX}{project}@{server}"
    return f"{PREFIX}{project}"


def unescape(field: str) -> str:
    """A path field of a mount table as the path it names.

    The kernel writes space, tab, newline and backslash in these fields as octal escapes.
    """
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def vstudio_table() -> dict[Path, str]:
    """Mount point -> source name ("vstudio:PROJECT") of vstudio mounts, live or stale."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 2 and fields[2] == "fuse.vstudio":
            out[Path(unescape(fields[1]))] = unescape(fields[0])
    return out


def innermost(path: str | Path, mounts: list[Path]) -> Path | None:
    """The innermost of ``mounts`` holding ``path``, or None."""
    target = Path(os.path.abspath(path))
    best: Path | None = None
    for mnt in mounts:
        if (target == mnt or mnt in target.parents) and (
                best is None or len(mnt.parts) > len(best.parts)):
            best = mnt
    return best


def mount_source(path: str | Path) -> MountSource | None:
    """The project (and its server) of the vstudio mount holding ``path``, or None."""
    table = vstudio_table()
    mnt = innermost(path, list(table)) if table else None
    if mnt is None or not table[mnt].startswith(PREFIX):
        return None
    project, at, server = table[mnt][len(PREFIX):].partition("@")
    return MountSource(project, server if at and server else None) if project else None
