"""The studio folder and its ``studio.toml``.

A studio is found from an explicit ``--studio DIR``, else ``VSTUDIO_STUDIO``, else the
current folder and its parents. Relative paths inside ``studio.toml`` are relative to
the studio folder, so a studio can be moved or copied as a whole.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vstudio.config_schema import check
from vstudio.errors import BadInput, StudioNotFound

STUDIO_FILE = "studio.toml"


@dataclass(frozen=True)
class StudioConfig:
    """What ``studio.toml`` says, with paths resolved."""

    root: Path
    name: str
    db_url: str
    store_url: str
    store_options: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    farm: dict[str, Any] = field(default_factory=dict)


def default_db_url(root: Path) -> str:
    return f"sqlite:///{root / 'catalog.db'}"


def default_store_url(root: Path) -> str:
    return f"file://{root / 'store'}"


def _resolve_url(root: Path, url: str) -> str:
    """Make ``sqlite:///rel.db`` and ``file://rel`` URLs absolute against the studio root."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and not rel.startswith(":memory:"):
            return f"sqlite:///{(root / rel).resolve()}"
    if url.startswith("file://") and not url.startswith("file:///"):
        return f"file://{(root / url[len('file://'):]).resolve()}"
    if "://" not in url:  # a bare folder path means a local store
        p = Path(url)
        return f"file://{(p if p.is_absolute() else root / p).resolve()}"
    return url


def load(root: Path) -> StudioConfig:
    path = root / STUDIO_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudioNotFound(f"no {STUDIO_FILE} in {root}: run 'vstudio init {root}'") from None
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path} is not valid TOML: {e}") from None
    check(path, data)
    studio = data.get("studio", {})
    store = dict(data.get("store", {}))
    return StudioConfig(
        root=root.resolve(),
        name=str(studio.get("name", root.name)),
        db_url=_resolve_url(root, str(data.get("catalog", {}).get("url", default_db_url(root)))),
        store_url=_resolve_url(root, str(store.pop("url", default_store_url(root)))),
        store_options=store,
        server=dict(data.get("server", {})),
        farm=dict(data.get("farm", {})),
    )


def find_studio(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the studio folder named explicitly, by the environment, or found upwards."""
    if explicit:
        root = Path(explicit).expanduser().resolve()
        if not (root / STUDIO_FILE).is_file():
            raise StudioNotFound(
                f"{root} is not a studio (no {STUDIO_FILE}): run 'vstudio init {root}'")
        return root
    env = os.environ.get("VSTUDIO_STUDIO")
    if env:
        return find_studio(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / STUDIO_FILE).is_file():
            return folder
    raise StudioNotFound()


def write_config(
    root: Path, *, name: str, db_url: str, store_url: str, store_options: dict[str, Any]
) -> Path:
    """Write a fresh ``studio.toml``; values are quoted as TOML basic strings."""

    def q(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[studio]", f"name = {q(name)}", "", "[catalog]", f"url = {q(db_url)}", "",
             "[store]", f"url = {q(store_url)}"]
    lines += [f"{k} = {q(v)}" for k, v in store_options.items()]
    lines += ["", "[server]", 'host = "127.0.0.1"', "port = 8642", ""]
    path = root / STUDIO_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
