"""What a person submits: a job spec, validated and compiled into blocks and tasks."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vstudio.errors import BadInput
from vstudio.farm.frames import chunk, parse_frames
from vstudio.farm.model import BlockPlan, JobPlan
from vstudio.jobtypes.schema import JOB_TYPES, LOCAL_PATHS_TAG, local_paths, validate_params
from vstudio.text import Text

MAX_BLOCKS = 64
MAX_ID = 2**31 - 1  # job ids and revisions are 32-bit integers on PostgreSQL
MAX_TASKS = 200_000
OID_RE = re.compile(r"^[0-9a-f]{64}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
JobType = Literal["blender", "synfig", "krita", "inkscape", "gimp", "pencil2d", "ffmpeg",
                  "command"]
assert set(JOB_TYPES) == {"blender", "synfig", "krita", "inkscape", "gimp", "pencil2d",
                          "ffmpeg", "command"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSpec(_Spec):
    """A file the worker fetches from the store (``oid``) or the repository (``ref``)."""

    path: Text = Field(min_length=1, max_length=1024)
    oid: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    ref: Text | None = Field(default=None, max_length=2048,
                            description="PROJECT@REV:path in the studio's repository")
    grant: str | None = Field(default=None, max_length=64,
                              description="the submitter's read grant for oid (from a "
                                          "tree, a job's outputs or an upload)")


class DependSpec(_Spec):
    block: Text = Field(min_length=1, max_length=128)
    mode: Literal["whole", "frame"] = "whole"


class BlockSpec(_Spec):
    name: Text = Field(default="main", min_length=1, max_length=128)
    type: JobType
    params: dict[str, Any] = Field(default_factory=dict)
    frames: Text | None = Field(default=None, max_length=10_000,
                               description="1-250, 1-250x2 or 1,5,10-20")
    chunk: int = Field(default=1, ge=1, le=100_000)
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    max_per_worker: int | None = Field(default=None, ge=1, le=10_000)
    retries: int = Field(default=2, ge=0, le=100)
    timeout: float | None = Field(default=None, gt=0, le=30 * 86400,
                                  description="seconds a task may run before it is failed")
    depends_on: list[DependSpec] = Field(default_factory=list, max_length=MAX_BLOCKS)


class JobSpec(_Spec):
    name: Text = Field(min_length=1, max_length=200)
    project: Text | None = Field(default=None, min_length=1, max_length=128)
    priority: int = Field(default=50, ge=0, le=100)
    paused: bool = False
    after: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list,
                                                                max_length=100)
    max_running: int | None = Field(default=None, ge=1, le=1_000_000)
    blocklist_after: int = Field(default=3, ge=1, le=1000,
                                 description="failures of one worker on this job before "
                                             "it is kept off the job")
    inputs: list[InputSpec] = Field(default_factory=list, max_length=10_000)
    blocks: list[BlockSpec] = Field(min_length=1, max_length=MAX_BLOCKS)


def _check_path(path: str) -> str:
    p = path.replace("\\", "/")
    parts = p.split("/")
    if p.startswith("/") or any(s in ("", ".", "..") for s in parts) or "\x00" in p:
        raise BadInput(f"bad input path {path!r}: use a relative path without '..'")
    return p


_REF_REV = re.compile(r"^r?([0-9]{1,10})$")


def parse_ref(ref: str) -> tuple[str, int | None, str]:
    """``PROJECT@REV:path`` as (project, revision or None for HEAD, path), or ``BadInput``.

    The revision is bounded here: a number the catalog cannot hold would otherwise reach
    its query and fail there as a server error.
    """
    project, _, rest = ref.partition("@")
    rev_s, _, path = rest.partition(":")
    if not project or not path:
        raise BadInput(f"bad repository reference {ref!r}: use PROJECT@REV:path")
    if rev_s in ("", "HEAD"):
        return project, None, path
    m = _REF_REV.match(rev_s)
    if m is None or int(m[1]) > MAX_ID:
        raise BadInput(f"bad revision {rev_s[:40]!r} in {ref[:200]!r}: give a revision "
                       f"number from 0 to {MAX_ID}, rN or HEAD")
    return project, int(m[1]), path


def check_inputs(inputs: list[InputSpec]) -> list[dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in inputs:
        path = _check_path(item.path)
        if (item.oid is None) == (item.ref is None):
            raise BadInput(f"input {path!r}: give exactly one of 'oid' or 'ref'")
        if item.ref is not None:
            parse_ref(item.ref)
        if path in out:
            raise BadInput(f"input {path!r} is listed twice")
        out[path] = {"path": path, **({"oid": item.oid} if item.oid else {"ref": item.ref or ""})}
    return list(out.values())


def job_plan(spec: JobSpec) -> JobPlan:
    """The job's own settings as they are stored (its blocks: ``compile_job``)."""
    return JobPlan(spec.name, spec.project, spec.priority, spec.paused, list(spec.after),
                   spec.max_running, spec.blocklist_after)


def compile_job(spec: JobSpec) -> list[BlockPlan]:
    """Validate params, names and dependencies; cut frames into tasks."""
    index: dict[str, int] = {}
    for i, b in enumerate(spec.blocks):
        if not NAME_RE.match(b.name):
            raise BadInput(f"bad block name {b.name!r}: letters, digits, '_', '-', '.'")
        if b.name in index:
            raise BadInput(f"two blocks are named {b.name!r}")
        index[b.name] = i
    plans: list[BlockPlan] = []
    frames_of: dict[int, list[int]] = {}
    for i in _topological(spec, index):
        b = spec.blocks[i]
        params = validate_params(b.type, b.params)
        deps = {d.block: d.mode for d in b.depends_on}
        ref = params.get("block") if b.type == "ffmpeg" else None
        if ref is not None:
            if ref not in index or ref == b.name:
                raise BadInput(f"block {b.name!r} encodes block {ref!r}, which is not in the job")
            deps.setdefault(ref, "frame")
        if b.frames is not None:
            frames = parse_frames(b.frames)
        elif ref is not None:
            frames = frames_of[index[ref]]
        else:
            raise BadInput(f"block {b.name!r} needs frames (e.g. \"frames\": \"1-250\")")
        frames_of[i] = frames
        tags = block_tags(b.tags, params)
        # An encode without an explicit chunk makes one video of the whole range.
        size = b.chunk if (b.chunk > 1 or b.type != "ffmpeg" or "chunk" in b.model_fields_set) \
            else len(frames)
        plans.append(BlockPlan(
            index=i, name=b.name, type=b.type, params=params, tags=tags,
            chunk=size, max_per_worker=b.max_per_worker, retries=b.retries, timeout=b.timeout,
            depends=[(index[n], m) for n, m in deps.items()], tasks=chunk(frames, size)))
    if sum(len(p.tasks) for p in plans) > MAX_TASKS:
        raise BadInput(f"too many tasks: at most {MAX_TASKS} per job (use a bigger chunk)")
    return sorted(plans, key=lambda p: p.index)


def block_tags(tags: list[str], params: dict[str, Any]) -> list[str]:
    """A block's tags as stored: the ones asked for, plus the tag of nodes that may read
    local paths when its parameters name any (at submit and on every later edit)."""
    return sorted(set(tags) | ({LOCAL_PATHS_TAG} if local_paths(params) else set()))


def _topological(spec: JobSpec, index: dict[str, int]) -> list[int]:
    """Block indexes in dependency order; ``BadInput`` for unknown names and cycles."""
    needs: dict[int, set[int]] = {}
    for i, b in enumerate(spec.blocks):
        needs[i] = set()
        for d in b.depends_on:
            if d.block not in index:
                raise BadInput(f"block {b.name!r} depends on unknown block {d.block!r}")
            if d.block == b.name:
                raise BadInput(f"block {b.name!r} depends on itself")
            needs[i].add(index[d.block])
        ref = b.params.get("block") if b.type == "ffmpeg" else None
        if isinstance(ref, str) and ref in index and ref != b.name:
            needs[i].add(index[ref])
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(needs):
        ready = [i for i in needs if i not in done and needs[i] <= done]
        if not ready:
            names = [spec.blocks[i].name for i in needs if i not in done]
            raise BadInput(f"blocks depend on each other in a cycle: {', '.join(names)}")
        for i in ready:
            order.append(i)
            done.add(i)
    return order
