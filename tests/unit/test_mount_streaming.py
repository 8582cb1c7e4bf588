"""When the mount stores a file while it is written: only one still being written after
``STREAM_AFTER`` (a fast ``cp`` is stored whole after close, not read behind the writer)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from vstudio.mount.streaming import GrowingFile


def _file(tmp_path: Path) -> GrowingFile:
    path = tmp_path / "data"
    path.write_bytes(b"")
    return GrowingFile(str(path))


def test_a_file_closed_before_the_delay_is_not_read_behind_its_writer(tmp_path: Path) -> None:
    g = _file(tmp_path)
    threading.Timer(0.05, g.finish, args=(10,)).start()
    t = time.monotonic()
    assert g.begin(after=5) is False  # woken by the close, not after the 5 s
    assert time.monotonic() - t < 2 and not g.started
    g.close()


def test_close_before_reading_began_drops_the_early_copy(tmp_path: Path) -> None:
    g = _file(tmp_path)
    assert g.drop_if_idle() is True and g.aborted
    assert g.begin(after=5) is False  # the streamer then gives way at once
    g.close()


def test_a_file_still_written_after_the_delay_is_read_as_it_grows(tmp_path: Path) -> None:
    g = _file(tmp_path)
    assert g.begin(after=0.05) is True and g.started
    assert g.drop_if_idle() is False and not g.aborted  # reading: it runs to the end
    g.close()
