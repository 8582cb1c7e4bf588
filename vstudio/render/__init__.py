"""Dependency-aware project rendering.

Terms used by every module here:

- *project*: the folder holding ``vstudio.toml`` (else the folder given); paths in the
  render cache, plans and outputs are relative to it, '/'-separated.
- *scan*: what one file uses (``Use`` records) and, for a scene, its frame range, size and
  fps (``SceneInfo``), read by a per-format *scanner* without launching any renderer.
- *source*: a file a renderer can render (.blend, .sif/.sifz, .kra). A *target* is a source
  this run renders or takes from the cache; a library-only source is never a target.
- *content id*: BLAKE3-256 of a file's bytes, the same id the object store gives it.
- *dependency key*: content id plus the keys of everything the file uses, recursively.
- *render key*: dependency key + profile settings + renderer name and version + this
  module's ``RENDER_VERSION``. An output stored under a render key is never rendered again.
- *profile*: named render settings from ``vstudio.toml`` (``[profiles.NAME]``).
- *output*: ``render/<path>.<ext>`` beside the sources (default profile) or
  ``render/<profile>/<path>.<ext>`` for a named profile.
"""

from __future__ import annotations

# Bump when a change here changes what a render key produces.
RENDER_VERSION = "1"
