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

A folder holding RenderChan's ``project.conf`` is a project root too: its profiles and
per-file ``FILE.conf`` are read as RenderChan reads them (``rcconf``), outputs take
RenderChan's names (``layout``) and every profile renders into ``render/`` as in
RenderChan. Where ``vstudio.toml`` also exists, its settings win.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import blake3

from vstudio.errors import BadInput, UsageError
from vstudio.render import rcconf
from vstudio.render.layout import RENDER_DIR, VIDEO

PROJECT_FILE = "vstudio.toml"
ROOT_FILES = (PROJECT_FILE, rcconf.CONF_FILE, "remake.conf")

DEFAULTS: dict[str, Any] = {"format": "png", "chunk": 10, "denoise": False}
FORMATS = ("png", "exr", *VIDEO)  # exr: OpenEXR frames (Blender and Synfig files)
# what a path read from render/ may end in (besides the formats): lists, converted audio
READ_EXTS = (*FORMATS, "lst", "wav", "exr")
AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg")  # what RenderChan converts to render/X.wav
# Settings that change how work is split, not what is produced: kept out of render keys.
NOT_IN_KEY = {"chunk", "extract_alpha"}  # extract_alpha: split from the RGBA frames
# when written out (writer.source)
# Every setting a profile may hold, with its type (anything else is a typo to report).
KNOWN: dict[str, tuple[type, ...]] = {
    "format": (str,), "chunk": (int,), "denoise": (bool,), "resolution": (int, float),
    "samples": (int,), "width": (int,), "height": (int,), "engine": (str,),
    "start": (int,), "end": (int,), "single": (int,), "fps": (int, float),
    "audio_rate": (int,), "own_size": (bool,), "codec": (str,), "crf": (int,),
    "color_mode": (str,), "transparency": (bool,), "extract_alpha": (bool,)}
# lossless: the exact RGB (libx264rgb); lossless-yuv: lossless H.264 in YUV 4:4:4, what
# Blender's lossless H.264 writes (RenderChan's videos); h264: a delivery encode at crf
CODECS = ("lossless", "lossless-yuv", "h264")
COLOR_MODES = ("RGB", "RGBA", "BW")


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


def cache_dir() -> Path:
    """vstudio's folder in the user's cache folder ($XDG_CACHE_HOME, else ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vstudio"


def find_root(path: Path) -> Path:
    """The nearest folder upwards holding vstudio.toml or RenderChan's project.conf, else
    the root of the working copy holding ``path``, else the folder of ``path``.

    The working copy's root matters for a file in a subfolder (``shots/a.blend`` using
    ``../tex/wall.png``): rooted at its own folder, its texture would be outside the
    project and a farm render (which carries inputs by their path in the project) fails.
    """
    from vstudio.repo.wcindex import find_root as wc_root

    start = path if path.is_dir() else path.parent
    for folder in (start, *start.parents):
        if any((folder / name).is_file() for name in ROOT_FILES):
            return folder
    wc = wc_root(str(start))
    return Path(wc) if wc else start


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
        self.rc = rcconf.RenderChanConf.read(self.root)
        # RenderChan's names, and every profile rendering into render/ as RenderChan does
        self.renderchan = self.rc is not None or (self.root / "remake.conf").is_file()
        rc_default = self.rc.active if self.rc and self.rc.active else "default"
        self.default_profile = str(render.get("profile", rc_default))
        self.profiles = self.config.get("profiles", {})
        if not isinstance(self.profiles, dict):
            raise BadInput(f"{self.root / PROJECT_FILE}: [profiles] must hold tables")
        self.warnings: list[str] = []  # settings vstudio cannot honour, one line each

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def cache_path(self) -> Path:
        """The render cache of this project, in the user's cache folder: a read-only
        project (a mount) works too, and the sources stay free of vstudio's files."""
        tag = blake3.blake3(str(self.root).encode()).hexdigest()[:24]
        return cache_dir() / "projects" / f"{self.root.name[:40]}-{tag}.json"

    def rel(self, path: str | Path) -> str:
        """'/'-separated path relative to the root (absolute when outside it)."""
        r = os.path.relpath(path, self.root)
        return str(path) if r.startswith("..") else r.replace(os.sep, "/")

    def check_profile(self, name: str | None) -> str:
        name = name or self.default_profile
        rc_profiles = set(self.rc.profiles) if self.rc else set()
        if name != "default" and name not in self.profiles and name not in rc_profiles:
            known = ", ".join(sorted(set(self.profiles) | rc_profiles)) or "none"
            where = " or ".join(str(p) for p in (
                [self.root / PROJECT_FILE] + ([self.rc.path] if self.rc else [])))
            raise UsageError(f"no profile '{name}' in {where} (profiles: {known})")
        return name

    def _renderchan(self, name: str, rel: str) -> dict[str, Any]:
        """RenderChan's settings for ``rel``: project.conf's profile, then FILE.conf."""
        from vstudio.render.scanners import renderer_for

        if not self.renderchan or rel.startswith("/"):
            return {}
        profile = name if self.rc and name in self.rc.profiles else (
            self.rc.active if self.rc else "")
        file_conf = rcconf.read_file_conf(self.root / (rel + ".conf"))
        module = renderer_for(rel) or ""
        return rcconf.settings(self.rc, profile, module, file_conf, rel + ".conf", self.warn)

    def profile(self, name: str, rel: str) -> Profile:
        """Defaults < RenderChan's project.conf and FILE.conf < [render] < [profiles.NAME]
        < per-file table < per-file sidecar."""
        merged: dict[str, Any] = dict(DEFAULTS)
        merged.update(self._renderchan(name, rel))
        if self.renderchan:
            merged["codec"] = "lossless-yuv"  # as RenderChan's Blender writes its videos
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
        if self.renderchan and rel.endswith(".blend") and "color_mode" not in merged:
            # RenderChan's render script: RGBA frames, RGB videos (Blender puts what is
            # transparent over black)
            merged["color_mode"] = "RGB" if merged.get("format") in VIDEO else "RGBA"
        return Profile(name, merged,
                       is_default=self.renderchan or name == self.default_profile)

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
                if dot and ext.lower() in READ_EXTS:
                    candidate = "/".join([*parts[skip:i], stem])
                    if candidate.lower().endswith(AUDIO_EXTS):
                        return None  # a converted sound file (audio_source)
                    if candidate and exists(self.root / candidate):
                        return candidate
                    # RenderChan's separate alpha render: render/a.sif-alpha.png
                    if candidate.endswith("-alpha") and exists(self.root / candidate[:-6]):
                        return candidate[:-6]
        return None

    def audio_source(self, path: str) -> str | None:
        """The sound file that ``render/<it>.wav`` is RenderChan's conversion of, if any:
        ``render/music/theme.flac.wav`` -> ``music/theme.flac``."""
        rel = self.rel(path)
        if not (rel.startswith(RENDER_DIR + "/") and rel.lower().endswith(".wav")):
            return None
        source = rel[len(RENDER_DIR) + 1:-len(".wav")]
        if source.lower().endswith(AUDIO_EXTS) and (self.root / source).is_file():
            return source
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
    if key == "color_mode" and value not in COLOR_MODES:
        raise BadInput(f"{label}: color_mode must be one of {', '.join(COLOR_MODES)}, "
                       f"not {value!r}")
    if key == "codec" and value not in CODECS:
        raise BadInput(f"{label}: codec must be one of {', '.join(CODECS)}, not {value!r}")
    if key in ("resolution", "samples", "chunk", "width", "height", "fps",
               "audio_rate") and float(value) <= 0:  # type: ignore[arg-type]
        raise BadInput(f"{label}: '{key}' must be positive, not {value!r}")
