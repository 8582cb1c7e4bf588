"""View models of the farm pages: what a template shows, computed from the farm's data.

Pure functions and frozen dataclasses; the page routes fill them from the farm's own
read functions (``vstudio.web.farm_pages``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, get_args

from vstudio.farm.condition import actions_for
from vstudio.farm.spec import JobType

JOB_TYPES = get_args(JobType)

# Task status -> one-letter class of its grid cell (keeps a 10,000-cell grid small).
CELL = {"queued": "q", "blocked": "w", "waiting": "w", "running": "r", "done": "d",
        "failed": "f", "paused": "p", "canceled": "c"}
LEGEND = [("q", "queued"), ("w", "waiting"), ("r", "running"), ("d", "done"),
          ("f", "failed"), ("p", "paused"), ("c", "canceled")]
VIDEO_EXT = (".mp4", ".webm", ".mov", ".mkv", ".ogv", ".m4v")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".gif")


@dataclass(frozen=True)
class JobRow:
    id: int
    name: str
    owner: str
    status: str
    priority: int
    frames_done: int
    frames_total: int
    progress: float  # 0-100, running tasks' own progress included
    created: float
    started: float | None
    finished: float | None
    counts: dict[str, int] = field(default_factory=dict)  # shown task status -> tasks
    project: str | None = None
    reason: str = ""  # farm.condition: why it waits, is queued, stalled, pausing or failed
    stopped: float | None = None  # paused: when its last task ended (the clock stops)

    @property
    def actions(self) -> list[str]:
        return actions_for(self.status, self.counts.get("failed", 0),
                           self.counts.get("canceled", 0))

    @property
    def elapsed(self) -> float | None:
        if not self.started:
            return None
        end = self.finished or (self.stopped if self.status == "paused" else None)
        return max(0.0, (end or time.time()) - self.started)

    @property
    def eta(self) -> float | None:
        """Remaining time from the pace so far; None until there is a pace to go by."""
        if self.status in ("done", "canceled", "failed") or not self.started:
            return None
        el = self.elapsed
        if el is None or self.progress <= 0.5 or self.status not in ("running", "pausing"):
            return None
        return el * (100.0 - self.progress) / self.progress


def live_json(job: JobRow, may_act: bool) -> dict[str, Any]:
    """The compact state the page's script applies after an event (see static/app.js)."""
    from vstudio.web.render import duration

    eta = job.eta
    return {
        "id": job.id, "status": job.status, "progress": job.progress,
        "frames_done": job.frames_done, "frames_total": job.frames_total,
        "elapsed_text": duration(job.elapsed) if job.elapsed is not None else "–",
        "eta_text": duration(eta) if eta is not None else "–",
        "counts": job.counts, "actions": job.actions if may_act else [],
        "reason": job.reason,
    }


def queue_eta(tasks: int, slots: int, recent: list[float]) -> float | None:
    """Seconds until the farm's open tasks are done at the recent pace: tasks times the
    median task time, spread over the slots of the nodes that take work. None without a
    pace (no task finished yet) or without a node to render."""
    if tasks == 0:
        return 0.0
    if not recent or slots <= 0:
        return None
    per_task = sorted(recent)[len(recent) // 2]
    return tasks * per_task / slots


def frame_chart(points: list[tuple[int, float]], width: int = 880,
                height: int = 160, max_bars: int = 440) -> dict[str, Any]:
    """An SVG bar chart of render seconds per frame as one path (fast for any frame count).

    More frames than ``max_bars`` are bucketed, each bar showing the slowest frame of its
    bucket: slow frames are what people look for.
    """
    if not points:
        return {"path": "", "width": width, "height": height, "max": 0.0, "n": 0,
                "first": 0, "last": 0, "slowest": []}
    points = sorted(points)
    per = max(1, -(-len(points) // max_bars))
    buckets = [max(s for _, s in points[i:i + per]) for i in range(0, len(points), per)]
    top = max(buckets) or 1.0
    pad, base = 30, height - 18
    bw = (width - pad) / len(buckets)
    parts = []
    for i, s in enumerate(buckets):
        h = max(1.0, (base - 6) * s / top)
        x = pad + i * bw
        parts.append(f"M{x:.1f} {base}v{-h:.1f}h{max(bw - 0.6, 0.6):.1f}v{h:.1f}z")
    slowest = sorted(points, key=lambda p: -p[1])[:5]
    return {"path": "".join(parts), "width": width, "height": height, "max": top,
            "n": len(points), "first": points[0][0], "last": points[-1][0], "base": base,
            "pad": pad, "slowest": slowest}


def line_chart(series: dict[str, list[tuple[float, float]]], t0: float, t1: float,
               width: int = 880, height: int = 160) -> dict[str, Any]:
    """Polylines (one per series) over [t0, t1] for the farm overview."""
    pad, base = 30, height - 18
    top = max([v for pts in series.values() for _, v in pts] + [1.0])
    span = max(t1 - t0, 1.0)
    lines = {}
    for name, pts in series.items():
        lines[name] = " ".join(
            f"{pad + (t - t0) / span * (width - pad - 4):.1f},{base - (base - 6) * v / top:.1f}"
            for t, v in pts)
    return {"lines": lines, "width": width, "height": height, "max": top, "base": base,
            "pad": pad}
