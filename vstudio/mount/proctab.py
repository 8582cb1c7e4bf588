"""Reading the kernel's mount tables (``/proc/self/mounts``, ``/proc/self/mountinfo``).

Shared by the mount runner (is anything mounted here? which device?) and the path
commands (which vstudio mounts exist?), which must stay quick to import.
"""

from __future__ import annotations


def unescape(field: str) -> str:
    """A path field of a mount table as the path it names.

    The kernel writes space, tab, newline and backslash in these fields as octal escapes.
    """
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field
