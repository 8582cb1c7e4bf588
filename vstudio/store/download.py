"""Writing an object's bytes to a local file: whole or not at all."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from vstudio.errors import BadInput
from vstudio.store.api import Progress


def write_file(dest: Path, size: Callable[[], int], blocks: Callable[[], Iterable[bytes]],
               progress: Progress) -> None:
    """Stream ``blocks`` into ``dest`` through a temporary file renamed into place, so a
    failed or interrupted read never leaves a partial file under the real name."""
    dest = Path(dest)
    if dest.is_dir():
        raise BadInput(f"{dest} is a folder: give the file name to write")
    _refuse_special(dest)
    total = size()
    if not dest.parent.is_dir():
        raise BadInput(f"folder {dest.parent} does not exist")
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.part"
    progress.start(total, dest.name)
    try:
        with open(tmp, "wb") as f:
            for block in blocks():
                f.write(block)
                progress.advance(len(block))
        _refuse_special(dest)  # made while the bytes streamed in
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        progress.done()


def _refuse_special(dest: Path) -> None:
    """Only a regular file (or nothing) is replaced: the rename would silently swap a
    symlink, device or pipe (``/dev/sda``, a link into another tree) for a plain file."""
    try:
        mode = dest.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = "symlink" if stat.S_ISLNK(mode) else "device, pipe or socket"
        raise BadInput(f"{dest} exists and is a {kind}, not a regular file: "
                       "remove it first or give another name")
