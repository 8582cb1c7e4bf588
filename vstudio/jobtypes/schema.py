"""Typed parameters of each job type, validated when a job is submitted.

The manager validates a block's ``params`` with ``validate_params(type, params)`` and keeps
the normalised dict; the worker builds argv from the same models (``PARAMS[type]``), so a
parameter the manager accepted is one the worker understands. Unknown keys are refused so
a typo ("sampels") is an error, not a silently ignored setting.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vstudio.errors import BadInput

JOB_TYPES = ("blender", "synfig", "krita", "inkscape", "gimp", "pencil2d", "ffmpeg",
             "command")

# A file reference: a store id (64 hex), a path relative to the job's inputs, or a
# repository reference ``PROJECT@REV:path``. Never absolute outside shared-disk farms,
# but that is the worker's decision; here we only refuse what can never be valid.
FileRef = Annotated[str, Field(min_length=1, max_length=4096)]

_PROPERTY = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$"  # render.fps, no _private
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # NUL bytes cannot reach argv (nor a database); refuse them at the edge.
        def check(x: Any) -> None:
            if isinstance(x, str) and "\x00" in x:
                raise ValueError("must not contain NUL characters")
            if isinstance(x, list | tuple):
                for item in x:
                    check(item)
            if isinstance(x, dict):
                for k, item in x.items():
                    check(k)
                    check(item)

        check(v)
        return v


_TEMPLATE_FIELDS = {"frame", "name"}
_FRAME_SPEC = re.compile(r"^(0[1-9])?d$")  # "d", "04d": zero-padded, never spaces in a path


def check_upstream_template(template: str) -> str:
    """A relative path template of an upstream output: ``{frame}``, ``{frame:04d}``, ``{name}``.

    Checked here so the worker never formats attribute look-ups (``{frame.__class__}``) or
    writes outside its task folder; the formatted path goes through ``safe_relpath`` too.
    """
    p = template.replace("\\", "/")
    parts = p.split("/")
    if p.startswith("/") or any(s in ("", ".", "..") for s in parts):
        raise ValueError("must be a relative path without '..' or empty parts")
    try:
        pieces = list(Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"is not a format template ({e})") from None
    for _text, name, spec, conv in pieces:
        if name is None:
            continue
        if name not in _TEMPLATE_FIELDS or conv is not None:
            raise ValueError("may only use {frame}, {frame:04d} (digits) and {name}")
        if spec and (name != "frame" or not _FRAME_SPEC.match(spec)):
            raise ValueError(f"bad format {{{name}:{spec}}}: only {{frame:0Nd}} takes one")
    return template


# block name -> where the outputs of that upstream block go (relative to the task's files)
UpstreamPaths = dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")],
                     Annotated[str, Field(min_length=1, max_length=1024)]]


class _Upstream(_Params):
    upstream_paths: UpstreamPaths | None = None

    @field_validator("upstream_paths")
    @classmethod
    def _templates(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None:
            if len(v) > 1000:
                raise ValueError("at most 1000 upstream blocks")
            for block, template in v.items():
                try:
                    check_upstream_template(template)
                except ValueError as e:
                    raise ValueError(f"{block}: {template!r} {e}") from None
        return v


class BlenderParams(_Upstream):
    """Render a .blend: frames come from the task, the rest from here."""

    file: FileRef
    scene: str | None = Field(default=None, max_length=256)
    camera: str | None = Field(default=None, max_length=256)
    engine: Literal["CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH"] | None = None
    samples: int | None = Field(default=None, ge=1, le=1_000_000)
    # the worker accepts 4-32768 pixels per side; refuse the rest at submit time
    resolution: tuple[Annotated[int, Field(ge=4, le=32768)],
                      Annotated[int, Field(ge=4, le=32768)]] | None = None
    resolution_percentage: int | None = Field(default=None, ge=1, le=1000)
    format: Literal["PNG", "OPEN_EXR", "JPEG"] = "PNG"
    # Simple scene property overrides, e.g. {"render.fps": 24}; values are scalars only.
    overrides: dict[Annotated[str, Field(max_length=256, pattern=_PROPERTY)],
                    bool | int | float | Annotated[str, Field(max_length=1024)]] | None = None


class SynfigParams(_Upstream):
    """Render a .sif/.sifz/.sfg file to PNG (or OpenEXR) frames."""

    file: FileRef
    format: Literal["png", "exr"] = "png"
    width: int | None = Field(default=None, ge=1, le=65536)
    height: int | None = Field(default=None, ge=1, le=65536)


class KritaParams(_Params):
    """Export a .kra (a still image, or its animation frames)."""

    file: FileRef


class InkscapeParams(_Params):
    """Export a .svg/.svgz drawing to PNG (a still: the same picture for every frame)."""

    file: FileRef
    width: int | None = Field(default=None, ge=1, le=32768)
    height: int | None = Field(default=None, ge=1, le=32768)


class GimpParams(_Params):
    """Flatten a GIMP image (.xcf) to PNG (a still: the same picture for every frame)."""

    file: FileRef
    width: int | None = Field(default=None, ge=1, le=32768)
    height: int | None = Field(default=None, ge=1, le=32768)


class Pencil2dParams(_Params):
    """Export a Pencil2D animation (.pclx, .pcl) to PNG frames (frames start at 1)."""

    file: FileRef
    width: int | None = Field(default=None, ge=1, le=32768)
    height: int | None = Field(default=None, ge=1, le=32768)
    transparency: bool = False  # keep the background transparent (else white)


class FfmpegParams(_Params):
    """Encode a frame sequence into a video.

    The frames are either the outputs of another block of the same job (``block``; the
    usual case, with a frame-by-frame dependency on it) or files matching ``pattern``
    (an image2 pattern such as ``frames/frame_%04d.png`` among the job's inputs).
    """

    block: str | None = Field(default=None, min_length=1, max_length=128)
    pattern: str | None = Field(default=None, min_length=1, max_length=4096)
    fps: float = Field(default=24.0, gt=0, le=1000)
    codec: Literal["h264", "vp9"] = "h264"
    output: str = Field(default="video.mp4", min_length=1, max_length=128)
    audio: FileRef | None = None

    @field_validator("output")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _SAFE_NAME.match(v):
            raise ValueError("must be a plain file name (letters, digits, '_', '-', '.')")
        return v

    def model_post_init(self, _ctx: Any) -> None:
        if (self.block is None) == (self.pattern is None):
            raise ValueError("give exactly one of 'block' (another block's frames) or 'pattern'")


class CommandParams(_Params):
    """A raw command (only for workers started with --allow-commands).

    ``{start}`` and ``{end}`` in any argument are replaced with the task's first and last
    frame; the argv is run directly, never through a shell.
    """

    argv: list[Annotated[str, Field(max_length=8192)]] = Field(min_length=1, max_length=1000)


PARAMS: dict[str, type[_Params]] = {
    "blender": BlenderParams,
    "synfig": SynfigParams,
    "krita": KritaParams,
    "inkscape": InkscapeParams,
    "gimp": GimpParams,
    "pencil2d": Pencil2dParams,
    "ffmpeg": FfmpegParams,
    "command": CommandParams,
}


def _describe(e: ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid"))
    return f"{where}: {msg}" if where else msg


def parse_params(job_type: str, params: dict[str, Any]) -> _Params:
    """The typed parameters of ``job_type``; ``BadInput`` naming the first problem."""
    model = PARAMS.get(job_type)
    if model is None:
        raise BadInput(f"unknown job type {job_type!r}: use one of {', '.join(JOB_TYPES)}")
    if not isinstance(params, dict):
        raise BadInput(f"{job_type} parameters must be an object")
    try:
        return model.model_validate(params)
    except ValidationError as e:
        raise BadInput(f"bad {job_type} parameters: {_describe(e)}") from None
    except ValueError as e:  # from model_post_init
        raise BadInput(f"bad {job_type} parameters: {e}") from None


LOCAL_PATHS_TAG = "local-paths"  # what workers started with --allow-local-paths offer
_FILE_PARAMS = ("file", "audio", "pattern")  # the parameters that name files


def local_paths(params: dict[str, Any]) -> list[str]:
    """The parameters' file names that are absolute paths on a worker's own disk.

    A block naming one asks for the ``local-paths`` tag, so only workers that opted in
    (a farm with a shared disk) take its tasks; Windows spellings count too.
    """
    out = []
    for key in _FILE_PARAMS:
        v = params.get(key)
        if isinstance(v, str) and (v.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", v)):
            out.append(v)
    return out


def validate_params(job_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise; the result is JSON-ready (defaults filled, None dropped)."""
    return parse_params(job_type, params).model_dump(mode="json", exclude_none=True)
