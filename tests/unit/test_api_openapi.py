"""The committed HTTP contract (vstudio/api/openapi.json) matches the live farm API.

Other parts of the studio add routes of their own, so only the farm's operations (tag
``farm``) and the schemas they reference are compared.
To regenerate after an intended change:
    VSTUDIO_WRITE_OPENAPI=1 .venv/bin/pytest tests/unit/test_api_openapi.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vstudio.api.app import create_app
from vstudio.studio import Studio

DOC = Path(__file__).resolve().parents[2] / "vstudio" / "api" / "openapi.json"
HINT = ("the farm's HTTP contract changed; if intended, regenerate it with "
        "'VSTUDIO_WRITE_OPENAPI=1 .venv/bin/pytest tests/unit/test_api_openapi.py'")


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs(v, out)


def farm_part(doc: dict[str, Any]) -> dict[str, Any]:
    paths = {}
    for path, item in doc.get("paths", {}).items():
        ops = {m: op for m, op in item.items() if "farm" in op.get("tags", [])}
        if ops:
            paths[path] = ops
    schemas = doc.get("components", {}).get("schemas", {})
    names: set[str] = set()
    _refs(paths, names)
    while True:  # schemas referenced by schemas
        more: set[str] = set()
        _refs([schemas.get(n) for n in names], more)
        if more <= names:
            break
        names |= more
    return {"paths": paths, "schemas": {n: schemas.get(n) for n in sorted(names)}}


def test_committed_openapi_matches_the_farm_api(studio_dir: Path) -> None:
    studio = Studio.open(studio_dir)
    try:
        live = create_app(studio).openapi()
    finally:
        studio.close()
    if os.environ.get("VSTUDIO_WRITE_OPENAPI"):
        DOC.write_text(json.dumps(live, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert DOC.is_file(), HINT
    committed = json.loads(DOC.read_text(encoding="utf-8"))
    live_farm, committed_farm = farm_part(live), farm_part(committed)
    assert len(live_farm["paths"]) >= 20, "the farm's routes are missing from the app"
    assert live_farm == committed_farm, HINT
