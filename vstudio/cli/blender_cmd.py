"""``vstudio blender``: install the Blender add-on, and the calls the add-on makes.

The add-on runs inside Blender's own Python, which lacks vstudio's dependencies, so it
calls this CLI (``--json``) from a worker thread: the same HTTP API and the same one-line
error messages as a terminal. ``state`` and ``submit`` exist for it; ``install`` and
``zip`` are for people.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, server_options
from vstudio.errors import BadInput, VStudioError

ADDON_DIR = Path(__file__).resolve().parent.parent / "blender_addon"
MODULE = "vstudio_blender"  # the add-on's module name in Blender ("vstudio" is this package)

_INSTALL = """
import sys, bpy, addon_utils
zip_path = sys.argv[sys.argv.index("--") + 1]
bpy.ops.preferences.addon_install(filepath=zip_path, overwrite=True)
addon_utils.modules_refresh()
bpy.ops.preferences.addon_enable(module="%(module)s")
mod = sys.modules["%(module)s"]
bpy.ops.wm.save_userpref()
print("VSTUDIO-INSTALLED " + repr((mod.__file__, bpy.app.version_string)))
"""


def cli_record() -> dict[str, Any]:
    """How the add-on starts this very vstudio: interpreter, and where the package lives."""
    return {"argv": [sys.executable, "-m", "vstudio"],
            "pythonpath": str(Path(__file__).resolve().parents[2])}


def build_zip(dest: Path, extension: bool = False) -> Path:
    """The add-on as a zip for Blender's "Install from disk".

    The legacy layout (a ``vstudio_blender/`` folder with ``bl_info``) installs in 3.x and
    4.x; ``extension`` puts ``blender_manifest.toml`` at the root, as 4.2+ extensions want.
    """
    if not (ADDON_DIR / "__init__.py").is_file():
        raise VStudioError(f"the add-on's files are missing from {ADDON_DIR}: reinstall vstudio")
    prefix = "" if extension else MODULE + "/"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(ADDON_DIR.iterdir()):
            if f.is_file() and f.suffix in (".py", ".toml"):
                z.write(f, prefix + f.name)
        z.writestr(prefix + "cli.json", json.dumps(cli_record(), indent=2))
    os.replace(tmp, dest)
    return dest


def find_blender(path: str | None) -> str:
    exe = path or shutil.which("blender")
    if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise BadInput(f"Blender not found{f' at {path}' if path else ''}: pass --blender PATH "
                       "(or install it: apt-get install blender)")
    return exe


def install(blender: str, timeout: float = 300) -> dict[str, Any]:
    """Install and enable the add-on with Blender's own add-on mechanism; save preferences."""
    with tempfile.TemporaryDirectory(prefix="vstudio-addon-") as tmp:
        zip_path = build_zip(Path(tmp) / f"{MODULE}.zip")
        # No --factory-startup: the user's preferences must be loaded, or saving them
        # would replace the artist's settings with factory ones.
        proc = subprocess.run(
            [blender, "-b", "-Y", "--python-exit-code", "1",
             "--python-expr", _INSTALL % {"module": MODULE}, "--", str(zip_path)],
            capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("VSTUDIO-INSTALLED "):
            import ast

            addon_file, version = ast.literal_eval(line.split(" ", 1)[1])
            return {"blender": blender, "version": version,
                    "addon": str(Path(addon_file).parent), "module": MODULE, "enabled": True}
    tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-3:]
    raise VStudioError(f"Blender could not install the add-on (exit {proc.returncode}): "
                       + " | ".join(tail))


@click.group("blender")
def blender_group() -> None:
    """The Blender add-on: install it; the calls it makes (state, submit)."""


@blender_group.command("install")
@click.option("--blender", "blender_path", metavar="PATH", default=None,
              help="Blender executable (default: 'blender' on PATH).")
@json_option
def install_cmd(blender_path: str | None, as_json: bool) -> None:
    """Install and enable the add-on for your Blender (3.x and 4.x)."""
    data = install(find_blender(blender_path))
    emit(data, as_json, lambda d: click.echo(
        f"installed and enabled the vstudio add-on for Blender {d['version']} in {d['addon']}"))


@blender_group.command("zip")
@click.argument("dest", required=False, type=click.Path(dir_okay=False))
@click.option("--extension", is_flag=True,
              help="Blender 4.2+ extension layout (blender_manifest.toml at the root).")
def zip_cmd(dest: str | None, extension: bool) -> None:
    """Write the add-on as a zip for Blender's "Install from disk" (./vstudio_blender.zip)."""
    out = build_zip(Path(dest or f"{MODULE}.zip").absolute(), extension)
    click.echo(str(out))


@blender_group.command("state")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--token", default=None, help="API token (default: $VSTUDIO_TOKEN, then the "
                                            "working copy's).")
@json_option
def state_cmd(file: Path, token: str | None, as_json: bool) -> None:
    """FILE's repository state: modified, out of date, locked by whom, changed libraries;
    and every lock in its project (path, owner, since, message)."""
    from vstudio.cli.blender_files import file_state

    data = file_state(file, token)

    def when(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))

    def human(d: dict[str, Any]) -> None:
        lk = d["lock"]
        since = f" since {when(lk['time'])}" if lk else ""
        click.echo(f"{d['file']}: {d['summary']}{since} (r{d['rev']}, head r{d['head']})")
        for u in d["changed_uses"]:
            click.echo(f"  uses {u['path']} ({u['status']})")
        click.echo(f"locks in {d['project']}: {len(d['locks'])}")
        for x in d["locks"]:
            why = f" ({x['message']})" if x["message"] else ""
            click.echo(f"  {x['path']}  {x['owner']} since {when(x['since'])}{why}")

    emit(data, as_json, human)


@blender_group.command("submit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--frames", required=True, metavar="LIST", help="1-250, 1-250x2 or 1,5,10-20")
@click.option("--chunk", type=click.IntRange(1, 100_000), default=None, help="frames per task")
@click.option("--priority", type=click.IntRange(0, 100), default=50, show_default=True)
@click.option("--profile", default=None, help="Settings of this vstudio.toml profile.")
@click.option("--encode", metavar="VIDEO", default=None, help="Also encode a video (mp4/webm).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=24.0)
@click.option("--committed", is_flag=True, help="Render the working copy's committed "
              "revision (PROJECT@REV:path) instead of uploading the saved files.")
@click.option("--name", default=None, help="Job name (default: the file's name).")
@click.option("--project", default=None, help="The project the job belongs to.")
@json_option
@server_options
def submit_cmd(file: Path, frames: str, chunk: int | None, priority: int, profile: str | None,
               encode: str | None, fps: float, committed: bool, name: str | None,
               project: str | None, as_json: bool, server: str, token: str | None) -> None:
    """Submit a .blend with the libraries and images it uses (no shared disk needed)."""
    from vstudio.cli.blender_files import job_inputs, profile_params
    from vstudio.cli.farm_cmd import Api

    api = Api(server, token)
    params: dict[str, Any] = profile_params(file, profile) if profile else {}
    chunk = chunk or params.pop("chunk", None)
    params.pop("chunk", None)

    store: Any = None

    def upload(p: Path) -> dict[str, str]:
        """Put ``p``; the job input names its id and the read grant the upload brought."""
        nonlocal store
        from vstudio.farm.wire import grant_field
        from vstudio.store.remote import RemoteStore

        store = store or RemoteStore(api.server, api.token)
        oid = str(store.put_file(p))
        return {"oid": oid, **grant_field(store, oid)}

    ref, inputs = job_inputs(file, committed, upload)
    block: dict[str, Any] = {"name": "render", "type": "blender", "frames": frames,
                             "params": {"file": ref, "format": "PNG", **params}}
    if chunk:
        block["chunk"] = chunk
    blocks = [block]
    if encode:
        blocks.append({"name": "encode", "type": "ffmpeg", "params": {
            "block": "render", "fps": fps, "output": encode,
            "codec": "vp9" if encode.endswith(".webm") else "h264"}})
    spec = {"name": name or file.stem, "project": project, "priority": priority,
            "inputs": inputs, "blocks": blocks}
    job = api.call("POST", "/api/jobs", spec)
    emit({"id": job["id"], "url": f"{api.server}/jobs/{job['id']}", "inputs": len(inputs)},
         as_json, lambda d: click.echo(f"submitted job {d['id']} ({d['inputs']} files)"))
