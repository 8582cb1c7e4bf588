"""Frame lists: ``1-250``, ``1-250x2``, ``1,5,10-20``, and cutting them into chunks."""

from __future__ import annotations

import re

from vstudio.errors import BadInput

MAX_FRAMES = 1_000_000  # far beyond any shot; bounds memory for hostile input
_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:x\s*(\d+)\s*)?)?$")


def parse_frames(spec: str) -> list[int]:
    """Sorted, distinct frames of ``spec``; ``BadInput`` with the offending part."""
    if not isinstance(spec, str) or not spec.strip():
        raise BadInput("no frames: give a frame list like 1-250, 1-250x2 or 1,5,10-20")
    frames: set[int] = set()
    for part in spec.split(","):
        m = _PART.match(part)
        if not m:
            raise BadInput(f"bad frame range {part.strip()!r}: use N, A-B or A-BxSTEP")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) is not None else a
        step = int(m.group(3)) if m.group(3) is not None else 1
        if step < 1:
            raise BadInput(f"bad step in {part.strip()!r}: the step must be at least 1")
        if b < a:
            raise BadInput(f"bad frame range {part.strip()!r}: the end is before the start")
        if abs(a) > 10**9 or abs(b) > 10**9:
            raise BadInput(f"frame number out of range in {part.strip()!r}")
        if (b - a) // step + 1 + len(frames) > MAX_FRAMES:
            raise BadInput(f"too many frames: at most {MAX_FRAMES}")
        frames.update(range(a, b + 1, step))
    return sorted(frames)


def chunk(frames: list[int], size: int) -> list[list[int]]:
    """Consecutive groups of at most ``size`` frames, in order."""
    if size < 1:
        raise BadInput("chunk size must be at least 1")
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def format_frames(frames: list[int]) -> str:
    """The shortest ``A-B,C`` form of a sorted frame list (steps are not folded)."""
    out: list[str] = []
    i = 0
    while i < len(frames):
        j = i
        while j + 1 < len(frames) and frames[j + 1] == frames[j] + 1:
            j += 1
        out.append(str(frames[i]) if i == j else f"{frames[i]}-{frames[j]}")
        i = j + 1
    return ",".join(out)
