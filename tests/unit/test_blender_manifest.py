"""The add-on as Blender 4.2+ sees it: its extension manifest and the API it calls.

Debian's Blender here is 3.4, which neither reads ``blender_manifest.toml`` nor lacks the
APIs 4.x removed, so these rules are checked here, as Blender's manual and its extension
validator (``blender_ext.py``) state them: a manifest that breaks one is refused by
"Install from disk" and by ``blender --command extension build/validate``.
"""

from __future__ import annotations

import ast
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from vstudio.cli.blender_cmd import ADDON_DIR, build_zip

TERSE_MAX = 64  # Blender's TERSE_DESCRIPTION_MAX_LENGTH: tagline and permission reasons
PERMISSIONS = {"files", "network", "clipboard", "camera", "microphone"}
# "Extensions Tags" in Blender's manual (add-ons)
TAGS = {"3D View", "Add Curve", "Add Mesh", "Animation", "Bake", "Camera", "Compositing",
        "Development", "Game Engine", "Geometry Nodes", "Grease Pencil", "Import-Export",
        "Lighting", "Material", "Modeling", "Mesh", "Node", "Object", "Paint", "Pipeline",
        "Physics", "Render", "Rigging", "Scene", "Sculpt", "Sequencer", "System",
        "Text Editor", "Tracking", "User Interface", "UV"}
REQUIRED = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type",
            "blender_version_min", "license")
KNOWN = {*REQUIRED, "blender_version_max", "website", "copyright", "permissions", "tags",
         "platforms", "wheels", "build"}
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")


def terse_problem(value: Any) -> str | None:
    """Why Blender refuses ``value`` as a tagline or a permission's reason, or None."""
    if not isinstance(value, str) or not value.strip():
        return "a non-empty string expected"
    if len(value) > TERSE_MAX:
        return f"{len(value)} characters, at most {TERSE_MAX}"
    if value != value.strip() or re.search(r"[\x00-\x1f\x7f-\x9f]", value):
        return "white space around it or control characters"
    if not (value[-1].isalnum() or value[-1] in ")]}"):
        return f"ends with punctuation {value[-1]!r}"
    return None


def manifest_problems(m: dict[str, Any]) -> list[str]:
    out = [f"missing {k}" for k in REQUIRED if k not in m]
    out += [f"unknown key {k}" for k in m if k not in KNOWN]
    for key in ("schema_version", "version"):
        if not SEMVER.match(str(m.get(key, ""))):
            out.append(f"{key} {m.get(key)!r} is not a semantic version")
    ident = m.get("id", "")
    if not (isinstance(ident, str) and ident.isidentifier() and "__" not in ident
            and not ident.startswith("_") and not ident.endswith("_")):
        out.append(f"id {ident!r} is not a plain Python identifier")
    for key in ("name", "maintainer"):
        v = m.get(key)
        if not isinstance(v, str) or not v.strip() or v != v.strip():
            out.append(f"{key} {v!r} must be a non-empty stripped string")
    if (why := terse_problem(m.get("tagline"))) is not None:
        out.append(f"tagline: {why}")
    if m.get("type") not in ("add-on", "theme"):
        out.append(f"type {m.get('type')!r} is not add-on or theme")
    for key in ("blender_version_min", "blender_version_max"):
        v = m.get(key)
        if (v is not None or key.endswith("min")) and not re.fullmatch(r"\d+\.\d+\.\d+",
                                                                       str(v)):
            out.append(f"{key} {v!r} must be three numbers (4.2.0)")
    lic = m.get("license")
    if not (isinstance(lic, list) and lic
            and all(isinstance(x, str) and x.startswith("SPDX:") and x[5:] for x in lic)):
        out.append(f"license {lic!r} must be a non-empty list of SPDX:ID")
    perms = m.get("permissions", {})
    if not isinstance(perms, dict):
        out.append("permissions must be a table")
    else:
        for k, v in perms.items():
            if k not in PERMISSIONS:
                out.append(f"permission {k!r} is not one of {sorted(PERMISSIONS)}")
            if (why := terse_problem(v)) is not None:
                out.append(f"permissions.{k}: {why}")
    for tag in m.get("tags", []):
        if tag not in TAGS:
            out.append(f"tag {tag!r} is not one of Blender's add-on tags")
    return out


def bl_info() -> dict[str, Any]:
    tree = ast.parse((ADDON_DIR / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "bl_info":
            return dict(ast.literal_eval(node.value))
    raise AssertionError("no bl_info")


def test_manifest_in_the_extension_zip_follows_blenders_rules(tmp_path: Path) -> None:
    z = zipfile.ZipFile(build_zip(tmp_path / "e.zip", extension=True))
    m = tomllib.loads(z.read("blender_manifest.toml").decode())
    assert manifest_problems(m) == []
    assert m["type"] == "add-on" and "network" in m["permissions"]
    # the legacy bl_info (3.x, and 4.x "Install from disk" of the folder zip) agrees
    assert m["version"] == ".".join(map(str, bl_info()["version"]))
    assert "__init__.py" in z.namelist()


@pytest.mark.parametrize(("value", "problem"), [
    ("Lock, commit, update and render on the farm without leaving Blender", "67 characters"),
    ("Renders on the farm.", "punctuation"),
    (" Renders", "white space"),
    ("Reads files (png, exr)", None),
])
def test_the_checker_refuses_what_blender_refuses(value: str, problem: str | None) -> None:
    why = terse_problem(value)
    assert (why is None) if problem is None else (why is not None and problem in why)


# APIs gone in Blender 4.x (or 2.8): the add-on must run on 3.4 here and on 4.2+ as well.
REMOVED = {
    r"\bimport bgl\b|\bbgl\.": "bgl (removed in 4.0: use gpu)",
    r"register_module\(": "bpy.utils.register_module (removed in 2.8)",
    r"\btessfaces\b": "Mesh.tessfaces (removed in 2.8)",
    r"scene\.update\(\)": "Scene.update (removed in 2.8: view_layer.update)",
    r"\.copy\(\)\s*[,)]|override\s*=|\(\s*\{[^}]*['\"]area['\"]": "context override dict "
    "passed to an operator (removed in 4.0: use context.temp_override)",
    r"\bbl_options\s*=\s*\[": "bl_options must be a set",
    r"\bbpy\.ops\.wm\.addon_": "wm.addon_* operators (moved to preferences.* in 2.8)",
    r"\.face_maps\b|\buse_auto_smooth\b|\bauto_smooth_angle\b": "removed in 4.0/4.1",
    r"\bINFO_HT_header\b|\buser_preferences\b": "2.7x names (removed in 2.8)",
    r"\bbpy\.app\.handlers\.scene_update_(pre|post)\b": "scene_update handlers (2.8)",
}


def test_addon_uses_no_api_removed_in_blender_4() -> None:
    hits = []
    for f in sorted(ADDON_DIR.glob("*.py")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            hits += [f"{f.name}:{n}: {why}" for pat, why in REMOVED.items()
                     if re.search(pat, code)]
    assert hits == []
