"""``submit``: send render jobs to the farm (files are uploaded to the store first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, server_options
from vstudio.cli.farm_cmd import Api
from vstudio.errors import BadInput


def _common(f: Any) -> Any:
    for deco in reversed([
        click.option("--frames", "frames", metavar="LIST", help="1-250, 1-250x2 or 1,5,10-20"),
        click.option("--chunk", type=click.IntRange(1, 100_000), default=None,
                     help="frames per task"),
        click.option("--priority", type=click.IntRange(0, 100), default=50, show_default=True),
        click.option("--after", multiple=True, type=click.IntRange(1, 2**31 - 1),
                     metavar="JOB", help="start after this job is done (repeatable)"),
        click.option("--name", default=None, help="job name (default: from the file)"),
        click.option("--project", default=None, help="the project the job belongs to"),
        click.option("--tags", default="", help="worker tags required, comma-separated"),
        click.option("--retries", type=click.IntRange(0, 100), default=2, show_default=True),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="seconds a task may run"),
        click.option("--max-running", type=click.IntRange(1), default=None,
                     help="at most this many tasks of the job at once"),
        click.option("--paused", is_flag=True, help="submit paused"),
        click.option("--shared-disk", is_flag=True,
                     help="pass FILE as a path the workers can read; do not upload it "
                          "(only workers started with --allow-local-paths take it)"),
        json_option, server_options,
    ]):
        f = deco(f)
    return f


def _file_input(api: Api, file: str, shared: bool) -> tuple[str, list[dict[str, str]]]:
    """The file reference for params and the job inputs that carry it."""
    if "@" in file and ":" in file.split("@", 1)[1] and not Path(file).exists():
        path = file.split(":", 1)[1]
        return path, [{"path": path, "ref": file}]  # PROJECT@REV:path in the repository
    p = Path(file)
    if shared:
        return str(p.resolve()), []
    if not p.is_file():
        raise BadInput(f"{file}: no such file (or give PROJECT@REV:path)")
    return p.name, [_upload(api, p)]


def _upload(api: Api, path: Path) -> dict[str, str]:
    """The job input of a file uploaded now, with the read grant the upload brought."""
    from vstudio.farm.wire import grant_field
    from vstudio.store.remote import RemoteStore

    store: Any = RemoteStore(api.server, api.token)
    oid = str(store.put_file(path))
    return {"path": path.name, "oid": oid, **grant_field(store, oid)}


def _submit(api: Api, o: dict[str, Any], blocks: list[dict[str, Any]],
            inputs: list[dict[str, str]], default_name: str) -> None:
    spec = {"name": o["name"] or default_name, "project": o["project"],
            "priority": o["priority"], "after": list(o["after"]), "paused": o["paused"],
            "max_running": o["max_running"], "inputs": inputs, "blocks": blocks}
    job = api.call("POST", "/api/jobs", spec)
    emit({"id": job["id"]}, o["as_json"], lambda d: click.echo(f"submitted job {d['id']}"))


def _block(o: dict[str, Any], name: str, type_: str, params: dict[str, Any]) -> dict[str, Any]:
    b: dict[str, Any] = {"name": name, "type": type_, "params": params,
                         "tags": [t for t in o["tags"].split(",") if t],
                         "retries": o["retries"], "timeout": o["timeout"]}
    if o["frames"]:
        b["frames"] = o["frames"]
    if o["chunk"]:
        b["chunk"] = o["chunk"]
    return b


def _need_frames(o: dict[str, Any]) -> None:
    if not o["frames"]:
        raise click.UsageError("--frames is required (e.g. --frames 1-250)")


@click.group("submit")
def submit_group() -> None:
    """Submit a render job to the farm."""


@submit_group.command("blender")
@click.argument("file")
@click.option("--scene", default=None)
@click.option("--camera", default=None)
@click.option("--engine", type=click.Choice(["CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH"]))
@click.option("--samples", type=click.IntRange(1), default=None)
@click.option("--resolution", metavar="WxH", default=None)
@click.option("--format", "fmt", type=click.Choice(["PNG", "OPEN_EXR", "JPEG"]), default="PNG")
@click.option("--encode", metavar="VIDEO", default=None,
              help="also encode the frames into this video (mp4/webm), frame by frame")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=24.0)
@_common
def submit_blender(file: str, scene: str | None, camera: str | None, engine: str | None,
                   samples: int | None, resolution: str | None, fmt: str, encode: str | None,
                   fps: float, server: str, token: str | None, **o: Any) -> None:
    """Render a .blend file's frames."""
    _need_frames(o)
    api = Api(server, token)
    ref, inputs = _file_input(api, file, o["shared_disk"])
    params: dict[str, Any] = {"file": ref, "format": fmt, "scene": scene, "camera": camera,
                              "engine": engine, "samples": samples}
    if resolution:
        try:
            w, h = (int(x) for x in resolution.lower().split("x"))
        except ValueError:
            raise click.UsageError("--resolution must look like 1920x1080") from None
        params["resolution"] = [w, h]
    blocks = [_block(o, "render", "blender", {k: v for k, v in params.items() if v is not None})]
    if encode:
        codec = "vp9" if encode.endswith(".webm") else "h264"
        blocks.append({"name": "encode", "type": "ffmpeg",
                       "params": {"block": "render", "fps": fps, "codec": codec,
                                  "output": encode}})
    _submit(api, o, blocks, inputs, Path(ref).stem)


@submit_group.command("synfig")
@click.argument("file")
@click.option("--width", type=click.IntRange(1), default=None)
@click.option("--height", type=click.IntRange(1), default=None)
@click.option("--format", "fmt", type=click.Choice(["png", "exr"]), default="png",
              help="PNG or OpenEXR frames")
@_common
def submit_synfig(file: str, width: int | None, height: int | None, fmt: str, server: str,
                  token: str | None, **o: Any) -> None:
    """Render a Synfig file (.sif/.sifz)."""
    _need_frames(o)
    api = Api(server, token)
    ref, inputs = _file_input(api, file, o["shared_disk"])
    params = {k: v for k, v in {"file": ref, "width": width, "height": height,
                                "format": fmt if fmt != "png" else None}.items()
              if v is not None}
    _submit(api, o, [_block(o, "render", "synfig", params)], inputs, Path(ref).stem)


@submit_group.command("gimp")
@click.argument("file")
@click.option("--width", type=click.IntRange(1), default=None)
@click.option("--height", type=click.IntRange(1), default=None)
@_common
def submit_gimp(file: str, width: int | None, height: int | None, server: str,
                token: str | None, **o: Any) -> None:
    """Flatten a GIMP image (.xcf) to PNG (its own size unless --width/--height)."""
    o["frames"] = o["frames"] or "1"
    api = Api(server, token)
    ref, inputs = _file_input(api, file, o["shared_disk"])
    params = {k: v for k, v in {"file": ref, "width": width, "height": height}.items()
              if v is not None}
    _submit(api, o, [_block(o, "export", "gimp", params)], inputs, Path(ref).stem)


@submit_group.command("pencil2d")
@click.argument("file")
@click.option("--width", type=click.IntRange(1), default=None)
@click.option("--height", type=click.IntRange(1), default=None)
@click.option("--transparency", is_flag=True, help="no white paper behind the drawing")
@_common
def submit_pencil2d(file: str, width: int | None, height: int | None, transparency: bool,
                    server: str, token: str | None, **o: Any) -> None:
    """Export a Pencil2D animation (.pclx) to PNG frames (frames start at 1)."""
    _need_frames(o)
    if not o["shared_disk"] and file.lower().endswith(".pcl"):
        raise BadInput(f"{file}: a .pcl keeps its frames in a folder beside it; save it as "
                       ".pclx to submit it, or use --shared-disk")
    api = Api(server, token)
    ref, inputs = _file_input(api, file, o["shared_disk"])
    params = {k: v for k, v in {"file": ref, "width": width, "height": height,
                                "transparency": transparency or None}.items()
              if v is not None}
    _submit(api, o, [_block(o, "render", "pencil2d", params)], inputs, Path(ref).stem)


@submit_group.command("krita")
@click.argument("file")
@_common
def submit_krita(file: str, server: str, token: str | None, **o: Any) -> None:
    """Export a Krita file (.kra)."""
    o["frames"] = o["frames"] or "1"
    api = Api(server, token)
    ref, inputs = _file_input(api, file, o["shared_disk"])
    _submit(api, o, [_block(o, "export", "krita", {"file": ref})], inputs, Path(ref).stem)


@submit_group.command("ffmpeg")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--pattern", required=True, help="image2 pattern in FOLDER, e.g. frame_%04d.png")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=24.0)
@click.option("--codec", type=click.Choice(["h264", "vp9"]), default="h264")
@click.option("--output", default="video.mp4", show_default=True)
@_common
def submit_ffmpeg(folder: str, pattern: str, fps: float, codec: str, output: str, server: str,
                  token: str | None, **o: Any) -> None:
    """Encode a folder's frame sequence into a video (the frames are uploaded)."""
    _need_frames(o)
    api = Api(server, token)
    inputs = [_upload(api, p) for p in sorted(Path(folder).iterdir()) if p.is_file()]
    if not inputs:
        raise BadInput(f"{folder} has no files")
    o["chunk"] = o["chunk"] or 100_000  # one video unless asked otherwise
    params = {"pattern": pattern, "fps": fps, "codec": codec, "output": output}
    _submit(api, o, [_block(o, "encode", "ffmpeg", params)], inputs, Path(output).stem)


@submit_group.command("command", context_settings={"ignore_unknown_options": True})
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@_common
def submit_command(argv: tuple[str, ...], server: str, token: str | None, **o: Any) -> None:
    """Run ARGV per task ({start}/{end} replaced); only workers with --allow-commands.

    A trailing --json after ARGV is read as the --json option (scripts append it).
    """
    if len(argv) > 1 and argv[-1] == "--json":
        argv, o["as_json"] = argv[:-1], True
    _need_frames(o)
    api = Api(server, token)
    _submit(api, o, [_block(o, "command", "command", {"argv": list(argv)})], [],
            Path(argv[0]).name)
