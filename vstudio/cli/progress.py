"""A rich progress bar behind the store's Progress protocol, shown only on terminals."""

from __future__ import annotations

import sys
from typing import Any

from vstudio.store.api import NO_PROGRESS, Progress


class RichProgress:
    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._p = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                           TransferSpeedColumn(), TimeRemainingColumn(), transient=True)
        self._task: Any = None

    def start(self, total: int, label: str = "") -> None:
        if self._task is None:
            self._p.start()
            self._task = self._p.add_task(label, total=total)
        else:
            self._p.update(self._task, total=total, completed=0, description=label)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._p.advance(self._task, amount)

    def done(self) -> None:
        if self._task is not None:
            self._p.stop()
            self._task = None


def bar(enabled: bool | None = None) -> Progress:
    """A progress bar when stdout (or stderr) is a terminal, otherwise nothing."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return RichProgress() if enabled else NO_PROGRESS
