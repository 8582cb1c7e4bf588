"""A project's root, its ``vstudio.toml`` render settings, profiles and output paths.

``vstudio.toml`` (all tables optional)::

    [render]
    profile = "draft"        # the default profile; its outputs go to render/<path>.<ext>
    format = "png"           # png: image sequence folder; mp4: video made with ffmpeg
    chunk = 10               # frames per task

    [profiles.draft]
    resolution = 50          # percent of the scene's size
    samples = 16

    [files."shots/s1.blend"] # per-file overrides, for every profile ...
    samples = 64
    [files."shots/s1.blend".profiles.final]   # ... or for one
    samples = 256

A sidecar ``shots/s1.blend.toml`` holds the same keys as a ``[files."…"]`` table.
Outputs of the default profile go to ``render/<path>.<ext>``; any other profile's to
``render/<profile>/<path>.<ext>``, so several profiles live side by side.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput, UsageError

PROJECT_FILE = "vstudio.toml"
RENDER_DIR = "render"
CACHE_FILE = Path(".vstudio") / "render-cache.json"

DEFAULTS: dict[str, Any] = {"format": "png", "chunk": 10, "denoise": False}
FORMATS = ("png", "mp4")
# Settings that change how work is split, not what is produced: kept out of render keys.
NOT_IN_KEY = {"chunk"}
# Every setting a profile may hold, with its type (anything else is a typo to report).
KNOWN: dict[str, tuple[type, ...]] = {
    "format": (str,), "chunk": (int,), "denoise": (bool,), "resolution": (int, float),
    "samples": (int,), "width": (int,), "height": (int,), "engine": (str,),
    "start": (int,), "end": (int,)}


@dataclass(frozen=True)
class Profile:
    """The effective settings for one file under one profile."""

    name: str  # "default" when none is named
    settings: dict[str, Any] = field(default_factory=dict)
    is_default: bool = True

    @property
    def format(self) -> str:
        return str(self.settings.get("format", "png"))

    @property
    def chunk(self) -> int:
        return max(1, int(self.settings.get("chunk", 10)))

    def key_settings(self) -> dict[str, Any]:
        return {k: v for k, v in sorted(self.settings.items()) if k not in NOT_IN_KEY}


def find_root(path: Path) -> Path:
    """The nearest folder upwards holding vstudio.toml, else the folder of ``path``."""
    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if (folder / PROJECT_FILE).is_file():
            return folder
    return start


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path} is not valid TOML: {e}") from None


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.config = _read_toml(self.root / PROJECT_FILE)
        render = self.config.get("render", {})
        if not isinstance(render, dict):
            raise BadInput(f"{self.root / PROJECT_FILE}: [render] must be a table")
        self.default_profile = str(render.get("profile", "default"))
        self.profiles = self.config.get("profiles", {})
        if not isinstance(self.profiles, dict):
            raise BadInput(f"{self.root / PROJECT_FILE}: [profiles] must hold tables")

    @property
    def cache_path(self) -> Path:
        return self.root / CACHE_FILE

    def rel(self, path: str | Path) -> str:
        """'/'-separated path relative to the root (absolute when outside it)."""
        r = os.path.relpath(path, self.root)
        return str(path) if r.startswith("..") else r.replace(os.sep, "/")

    def check_profile(self, name: str | None) -> str:
        name = name or self.default_profile
        if name != "default" and name not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise UsageError(f"no profile '{name}' in {self.root / PROJECT_FILE} "
                             f"(profiles: {known})")
        return name

    def profile(self, name: str, rel: str) -> Profile:
        """Defaults < [render] < [profiles.NAME] < per-file table < per-file sidecar."""
        merged: dict[str, Any] = dict(DEFAULTS)
        render = {k: v for k, v in self.config.get("render", {}).items() if k != "profile"}
        layers: list[tuple[str, dict[str, Any]]] = [("[render]", render)]
        if name != "default":
            layers.append((f"[profiles.{name}]", self.profiles.get(name, {})))
        per_file = self.config.get("files", {}).get(rel, {})
        sidecar = _read_toml(self.root / (rel + ".toml")) if not rel.startswith("/") else {}
        for label, table in ((f'[files."{rel}"]', per_file), (f"{rel}.toml", sidecar)):
            if isinstance(table, dict):
                layers.append((label, {k: v for k, v in table.items() if k != "profiles"}))
                layers.append((label, table.get("profiles", {}).get(name, {})))
        for label, table in layers:
            for k, v in table.items():
                _check(label, k, v)
                merged[k] = v
        return Profile(name, merged, is_default=name == self.default_profile)

    def output_path(self, rel: str, profile: Profile) -> Path:
        base = self.root / RENDER_DIR
        if not profile.is_default:
            base = base / profile.name
        return base / f"{rel}.{profile.format}"

    def source_of_output(self, path: str, exists: Any) -> str | None:
        """The source file whose render output ``path`` is or lies in, if any.

        ``render/shots/s1.blend.png/0001.png`` -> ``shots/s1.blend``; a leading profile
        folder (``render/final/...``) is skipped. ``exists`` tests a source path.
        """
        rel = self.rel(path)
        if not rel.startswith(RENDER_DIR + "/"):
            return None
        parts = rel.split("/")[1:]
        for skip in (0, 1):
            for i in range(skip, len(parts)):
                stem, dot, ext = parts[i].rpartition(".")
                if dot and ext.lower() in FORMATS:
                    candidate = "/".join([*parts[skip:i], stem])
                    if candidate and exists(self.root / candidate):
                        return candidate
        return None


def _check(label: str, key: str, value: Any) -> None:
    types = KNOWN.get(key)
    if types is None:
        raise BadInput(f"{label}: unknown render setting '{key}' "
                       f"(known: {', '.join(sorted(KNOWN))})")
    if not isinstance(value, types) or (bool in types) != isinstance(value, bool):
        raise BadInput(f"{label}: '{key}' must be {types[0].__name__}, not {value!r}")
    if key == "format" and value not in FORMATS:
        raise BadInput(f"{label}: format must be one of {', '.join(FORMATS)}, not {value!r}")
    if key in ("resolution", "samples", "chunk", "width", "height") and float(value) <= 0:  # type: ignore[arg-type]
        raise BadInput(f"{label}: '{key}' must be positive, not {value!r}")
