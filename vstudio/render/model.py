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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Use:
        return cls(str(d["path"]), str(d["kind"]), bool(d["exists"]), str(d.get("detail", "")))


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
