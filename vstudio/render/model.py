"""Value objects shared by scanners, the graph and the planner."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Use:
    """One thing a file uses.

    ``path`` is absolute (a sequence's files are listed one per ``Use``, with the same
    ``kind``); ``kind`` is the studio's word for it: library, image, sequence, sound, movie,
    font, cache, canvas, import, layer, list.
    """

    path: str
    kind: str
    exists: bool
    detail: str = ""  # the block or layer that uses it, to name in messages
    # For a numbered sequence shown on a timeline (a sequencer image strip): which of its
    # frames each frame of the user shows, as (start, first, last, number, count) spans:
    # frames first..last show the sequence's number + clamp(frame - start, 0, count - 1).
    # None when unknown; then a user's frame may need any frame of the sequence.
    spans: tuple[tuple[int, int, int, int, int], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Use:
        return cls(str(d["path"]), str(d["kind"]), bool(d["exists"]), str(d.get("detail", "")),
                   spans_of(d.get("spans")))

    def frames_for(self, frames: list[int]) -> set[int] | None:
        """The sequence's frame numbers that ``frames`` of the user show, None if unknown."""
        if self.spans is None:
            return None
        out: set[int] = set()
        for start, first, last, number, count in self.spans:
            for f in frames:
                if first <= f <= last:
                    out.add(number + min(max(f - start, 0), count - 1))
        return out


def spans_of(value: Any) -> tuple[tuple[int, int, int, int, int], ...] | None:
    """Spans from JSON (lists), or None when absent or malformed."""
    if not isinstance(value, list | tuple):
        return None
    try:
        out = tuple((int(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in value)
    except (TypeError, ValueError):
        return None
    return out if all(s[4] > 0 for s in out) else None


@dataclass(frozen=True)
class SceneInfo:
    """What a renderable file says about its output, read from the file itself."""

    renderer: str  # blender | synfig | krita
    start: int
    end: int
    fps: float = 24.0
    width: int = 0
    height: int = 0
    percent: int = 100
    engine: str = ""

    @property
    def frames(self) -> list[int]:
        return list(range(self.start, self.end + 1))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SceneInfo:
        return cls(**d)


@dataclass
class ScanResult:
    """A file's direct uses and, for sources, its scene."""

    uses: list[Use] = field(default_factory=list)
    scene: SceneInfo | None = None

    def to_json(self) -> dict[str, Any]:
        return {"uses": [u.to_json() for u in self.uses],
                "scene": self.scene.to_json() if self.scene else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScanResult:
        scene = d.get("scene")
        return cls([Use.from_json(u) for u in d.get("uses", [])],
                   SceneInfo.from_json(scene) if scene else None)
