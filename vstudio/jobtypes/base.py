"""What a job type turns a task into: an argv to run, the files it must produce, a parser.

Terms: a *task* is the manager's payload (frames of one block); an *invocation* is the one
child process that renders it; an *event* is what a parser reads from one output line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from vstudio.errors import BadInput, VStudioError


class TaskError(VStudioError):
    """The task cannot run as given."""


class MissingInput(TaskError):
    """An input file of the task is missing."""


@dataclass
class Event:
    """What one line of renderer output said; every field is optional."""

    progress: float | None = None  # 0-100 for the whole task
    frame: int | None = None  # frame being rendered
    saved: int | None = None  # frame whose output file was written
    seconds: float | None = None  # render time of the frame just saved
    peak_mem: int | None = None  # bytes
    error: str | None = None  # a line that explains a failure
    keep: bool = True  # worth sending to the task log


class Parser(Protocol):
    def feed(self, line: str) -> Event: ...


class PlainParser:
    """For programs without progress output: every line goes to the log."""

    _ERR = re.compile(r"error|failed|cannot|can't|not found|no such|denied", re.I)

    def feed(self, line: str) -> Event:
        return Event(error=line.strip() if self._ERR.search(line) else None)


@dataclass
class Invocation:
    """One child process and what it must leave behind."""

    argv: list[str]
    cwd: Path
    outputs: dict[int, Path]  # frame -> file that must exist (and be non-empty) afterwards
    parser: Parser = field(default_factory=PlainParser)
    env: dict[str, str] | None = None
    label: str = ""  # program name for messages
    names: dict[int, str] = field(default_factory=dict)  # frame -> output name in the store
    # what a warm Blender session needs to render the same thing (None: not possible)
    warm: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskSpec:
    """The parts of a task payload a job type reads, checked once."""

    id: int
    type: str
    params: dict[str, Any]
    frames: list[int]
    trusted: bool
    inputs: dict[str, str]  # relative path -> oid
    # outputs of the blocks this task depends on: (block, frame, relative path, oid)
    upstream: tuple[tuple[str, int, str, str], ...] = ()
    # the worker lets tasks name files on its own disk (``--allow-local-paths``)
    local_paths: bool = False

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    @classmethod
    def from_payload(cls, task: dict[str, Any]) -> TaskSpec:
        frames = [int(f) for f in task.get("frames") or []]
        if not frames and task.get("start") is not None:
            frames = list(range(int(task["start"]), int(task.get("end", task["start"])) + 1))
        if not frames:
            raise TaskError("the task has no frames")
        inputs: dict[str, str] = {}
        for item in task.get("inputs") or []:
            if not item.get("oid"):
                raise TaskError(f"input {item.get('path')} has no store id (a repository "
                                f"reference {item.get('ref')!r} the manager did not resolve)")
            inputs[safe_relpath(str(item["path"]))] = str(item["oid"])
        where = upstream_templates(task)
        upstream = tuple((str(u["block"]), int(u["frame"]), upstream_path(u, where),
                          str(u["oid"])) for u in task.get("upstream") or [])
        for _, _, rel, oid in upstream:
            inputs[rel] = oid
        return cls(id=int(task.get("id", 0)), type=str(task.get("type", "")),
                   params=dict(task.get("params") or {}), frames=sorted(set(frames)),
                   trusted=bool(task.get("trusted", False)), inputs=inputs,
                   upstream=upstream)


UPSTREAM_DIR = ".upstream"


def upstream_templates(task: dict[str, Any]) -> dict[str, str]:
    """The block's ``upstream_paths`` param: upstream block -> path template (may be empty)."""
    params = task.get("params")
    where = params.get("upstream_paths") if isinstance(params, dict) else None
    if not where:
        return {}
    if not isinstance(where, dict):
        raise TaskError("upstream_paths must map block names to path templates")
    return {str(k): str(v) for k, v in where.items()}


def upstream_path(item: dict[str, Any], where: dict[str, str] | None = None) -> str:
    """Where an upstream output goes in the task folder.

    By default ``.upstream/<block>/<frame>_<name>``, unique per block and frame; with a
    template for the block (``upstream_paths``), where the file being rendered reads it,
    e.g. ``render/shot.blend.png/{frame:04d}.png``.
    """
    from vstudio.jobtypes.schema import check_upstream_template

    name = PurePosixPath(str(item.get("name") or "output").replace("\\", "/")).name
    template = (where or {}).get(str(item["block"]))
    if template is None:
        return safe_relpath(f"{UPSTREAM_DIR}/{item['block']}/{int(item['frame']):06d}_{name}")
    try:  # checked at submit time too; a payload from elsewhere is checked again
        path = check_upstream_template(template).format(frame=int(item["frame"]), name=name)
    except (ValueError, KeyError, IndexError) as e:
        raise TaskError(f"bad upstream path template {template!r}: {e}") from None
    return safe_relpath(path)


def inputs_to_fetch(task: dict[str, Any]) -> list[tuple[str, str]]:
    """(relative path, oid) of every file the task needs: job inputs and upstream outputs."""
    spec_inputs = [(safe_relpath(str(i["path"])), str(i.get("oid") or ""))
                   for i in task.get("inputs") or []]
    where = upstream_templates(task)
    ups = [(upstream_path(u, where), str(u["oid"])) for u in task.get("upstream") or []]
    return [(p, o) for p, o in spec_inputs + ups if o]


def safe_relpath(path: str) -> str:
    """A '/'-separated relative path that stays inside its folder, or BadInput."""
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() or not p.parts or any(part in ("..", "") for part in p.parts):
        raise BadInput(f"input path {path!r} must be relative and stay inside the task folder")
    return p.as_posix()


def resolve_file(spec: TaskSpec, files_dir: Path, name: str, *, what: str = "file") -> Path:
    """Where the task's input ``name`` is: fetched into ``files_dir``, or a shared-disk path."""
    if not name:
        raise TaskError(f"the task names no {what}")
    rel = name.replace("\\", "/").lstrip("/") if name not in spec.inputs else name
    if rel in spec.inputs:
        path = files_dir / rel
    elif Path(name).is_absolute():
        path = local_path(spec, name, what)
    else:
        path = files_dir / safe_relpath(name)
    if not path.is_file():
        raise MissingInput(f"input {what} {name} is missing (not among the task's inputs "
                           "and not on this machine)", path=str(path))
    return path


class LocalPathRefused(TaskError):
    """The task names a file on the worker's own disk, which this worker does not allow."""


def local_path(spec: TaskSpec, name: str, what: str = "file") -> Path:
    """An absolute path on this machine (a farm with a shared disk), if the worker allows it.

    Without the opt-in a job would read (and render into its outputs) any file the
    worker's user can read, e.g. a volunteer's own pictures.
    """
    if not spec.local_paths:
        raise LocalPathRefused(
            f"the {what} {name} is a path on the worker's own disk; this worker renders only "
            "files sent with the job (start it with --allow-local-paths on a farm with a "
            "shared disk)")
    return Path(name)


def check_inputs(spec: TaskSpec, files_dir: Path) -> None:
    """Every fetched input must be present before the renderer starts."""
    missing = [p for p in spec.inputs if not (files_dir / p).is_file()]
    if missing:
        raise MissingInput(f"input files missing: {', '.join(sorted(missing)[:5])}")


def contiguous(frames: Sequence[int]) -> bool:
    return list(frames) == list(range(frames[0], frames[-1] + 1))


def progress_of(done: int, fraction: float, total: int) -> float:
    return max(0.0, min(100.0, 100.0 * (done + max(0.0, min(1.0, fraction))) / max(1, total)))


Builder = Callable[[TaskSpec, Path], Invocation]
