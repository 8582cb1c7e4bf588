"""RenderChan's project settings, read as RenderChan reads them, as vstudio render settings.

RenderChan keeps them in two kinds of INI file:

- ``project.conf`` at the project root: ``[main] active_profile=NAME`` and one section per
  profile with ``WIDTH``, ``HEIGHT``, ``FORMAT``, ``FPS``, ``AUDIO_RATE`` and module keys
  (``blender.cycles_samples``, ``blender.packet_size``); a key prefixed with a module name
  wins over the plain key for that module's files. Keys are case-insensitive. Without
  ``active_profile`` the first section is the profile. An empty ``project.conf`` takes the
  nearest non-empty one above it.
- ``FILE.conf`` beside a file (``shots/s1.blend.conf``): ``key=value`` lines without a
  section; ``WIDTH=*2`` multiplies the project's value; ``FORMAT``, ``SINGLE=N`` (render
  frame N as one image), ``start``/``end``, ``use_own_dimensions``, ``packet_size``.

RenderChan renders every file at the profile's WIDTH x HEIGHT (480x270 when unset) unless
the file keeps its own size (``use_own_dimensions=1``, the default for Krita).
"""

from __future__ import annotations

import configparser
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput

CONF_FILE = "project.conf"
DEFAULTS = {"width": "480", "height": "270", "format": "png", "audio_rate": "48000",
            "fps": "24"}
# Modules whose files keep their own size in RenderChan (use_own_dimensions=1 by default).
OWN_SIZE = {"krita", "inkscape", "gimp"}
# Settings that change nothing vstudio renders (GPU choice, RenderChan's own bookkeeping).
IGNORED = {"disable_gpu", "gpu_device", "render_cache_dir", "blender_version", "proxy_scale"}
VIDEO = ("mp4", "avi", "mov")
EXR = ("blender", "synfig")  # the modules RenderChan renders FORMAT=exr with

Warn = Callable[[str], None]


def _parse(text: str, where: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(text, source=str(where))
    except configparser.Error as e:
        raise BadInput(f"{where} is not a RenderChan settings file: "
                       f"{str(e).splitlines()[0]}") from None
    return cp


def conf_of(root: Path) -> Path | None:
    """The project.conf that holds ``root``'s settings (an empty one defers upwards)."""
    own = root / CONF_FILE
    if not own.is_file():
        return None
    for folder in (root, *root.parents):
        conf = folder / CONF_FILE
        if conf.is_file() and conf.stat().st_size > 0:
            return conf
    return own


@dataclass
class RenderChanConf:
    """One project's ``project.conf``: its profiles, each a dict of lower-case keys."""

    path: Path
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)
    active: str = ""

    @classmethod
    def read(cls, root: Path) -> RenderChanConf | None:
        path = conf_of(root)
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise BadInput(f"cannot read {path}: {e.strerror}") from None
        cp = _parse(text, path)
        conf = cls(path)
        for section in cp.sections():
            if section != "main":
                conf.profiles[section.replace(".", "")] = dict(cp.items(section))
        if cp.has_option("main", "active_profile"):
            conf.active = cp.get("main", "active_profile").strip().replace(".", "")
        elif conf.profiles:
            conf.active = next(iter(conf.profiles))
        return conf


def read_file_conf(path: Path) -> dict[str, str]:
    """``FILE.conf``: RenderChan reads it as the body of a ``[default]`` section."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None
    cp = _parse("[default]\n" + text, path)
    return {k: v.strip() for k, v in cp.items("default")}


def _number(value: str, what: str, warn: Warn) -> float | None:
    try:
        return float(value)
    except ValueError:
        warn(f"{what}={value!r} is not a number: ignored")
        return None


def settings(conf: RenderChanConf | None, profile: str, module: str, file_conf: dict[str, str],
             file_label: str, warn: Warn) -> dict[str, Any]:
    """vstudio settings for one file of ``module`` (blender, synfig, …) under ``profile``.

    ``warn`` gets one line per setting vstudio cannot honour, naming it.
    """
    values = {k: (v, "") for k, v in DEFAULTS.items()}
    label = f"{conf.path.name} [{profile}]" if conf else "RenderChan defaults"
    raw = conf.profiles.get(profile, {}) if conf else {}
    prefix = module + "."
    values.update({k: (v, label) for k, v in raw.items() if "." not in k})
    values.update({k[len(prefix):]: (v, label) for k, v in raw.items() if k.startswith(prefix)})
    if module in OWN_SIZE:
        values.setdefault("use_own_dimensions", ("1", ""))
    for key, value in file_conf.items():
        if value.startswith("*") and key in values:
            factor = _number(value[1:], f"{file_label}: {key}", warn)
            base = _number(values[key][0], f"{label}: {key}", warn)
            if factor is not None and base is not None:
                values[key] = (f"{factor * base:g}", file_label)
        else:
            values[key] = (value, file_label)
    return _translate(values, warn, module)


# RenderChan's numeric keys: vstudio's name, the values it takes, how it is stored
_NUMBERS: dict[str, tuple[str, Callable[[float], bool], Callable[[float], Any]]] = {
    "width": ("width", lambda n: n >= 1, round),
    "height": ("height", lambda n: n >= 1, round),
    "fps": ("fps", lambda n: n > 0, lambda n: n),
    "audio_rate": ("audio_rate", lambda n: n > 0, int),
    "cycles_samples": ("samples", bool, int),
    # 0: the whole range in one piece
    "packet_size": ("chunk", lambda n: True, lambda n: int(n) if n > 0 else 1_000_000),
    "start": ("start", lambda n: True, int),
    "end": ("end", lambda n: True, int),
    "single": ("single", lambda n: True, int),
}
_YES = ("1", "true", "yes")


def _translate(values: dict[str, tuple[str, str]], warn: Warn,
               module: str = "") -> dict[str, Any]:
    """RenderChan keys (value, where it was set) -> vstudio settings."""
    out: dict[str, Any] = {}
    own = values.pop("use_own_dimensions", ("0", ""))[0].strip().lower() in _YES
    for key, (value, origin) in values.items():
        value = value.strip()
        where = f"{origin}: {key}"
        if (key in ("width", "height") and own) or (key == "single" and value in ("", "None")):
            continue
        if key in _NUMBERS:
            name, takes, stored = _NUMBERS[key]
            n = _number(value, where, warn)
            if n is not None and takes(n):
                out[name] = stored(n)
        else:
            _other(key, value, where, module, warn, out)
    if own:
        out["own_size"] = True
    return out


def _other(key: str, value: str, where: str, module: str, warn: Warn,
           out: dict[str, Any]) -> None:
    """A RenderChan key that is no number into ``out``, or a warning about it."""
    if key == "format":
        fmt = value.lower()
        if fmt in ("png", *VIDEO):
            out["format"] = fmt
        elif fmt == "exr":
            # RenderChan's Blender and Synfig modules write OpenEXR; its others fall
            # back to their first format, PNG, without a word
            out["format"] = "exr" if module in EXR else "png"
        else:
            warn(f"{where}={value}: vstudio writes png frames or mp4/avi/mov video; "
                 "png used")
            out["format"] = "png"
    elif key == "stereo":
        if value.lower() in ("left", "right"):
            warn(f"{where}={value}: stereo renders are not supported by vstudio; "
                 "rendered as mono")
    elif key in ("prerender_count",):
        if value not in ("", "0"):
            warn(f"{where}={value}: not supported by vstudio; ignored")
    elif key == "transparency":  # Pencil2D's: a transparent background, else white
        if value.lower() in _YES:
            out["transparency"] = True
    elif key == "extract_alpha":
        if value.lower() not in _YES:
            return
        if module == "synfig":  # the one RenderChan module that honours it
            out["extract_alpha"] = True
        else:
            warn(f"{where}={value}: RenderChan extracts alpha from Synfig files only; "
                 f"ignored for {module or 'this'} file")
    elif key not in IGNORED:
        warn(f"{where}: not a RenderChan setting vstudio knows; ignored")
