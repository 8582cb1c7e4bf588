"""The farm's wire format: request and response bodies of its HTTP API.

Shared by the HTTP routes (validation at the edge, the OpenAPI document) and by the
hot-path handler that serves render nodes without the framework's per-request overhead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vstudio.farm.spec import JobType, Tag, Text

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL


def _line(v: str) -> str:
    # Log lines are kept, never refused: a renderer may print anything.
    return v.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


LogLine = Annotated[str, Field(max_length=10_000), AfterValidator(_line)]
Oid = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkerSystem(_In):
    """What a render node says about itself, shown on the workers page."""

    version: str = Field(default="", max_length=64)
    os: str = Field(default="", max_length=200)
    cpu: str = Field(default="", max_length=200)
    cores: int = Field(default=0, ge=0, le=1_000_000)
    memory: int = Field(default=0, ge=0, le=2**60)  # bytes


class WorkerIn(_In):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")
    slots: int = Field(default=1, ge=1, le=256)
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    job_types: list[JobType] = Field(default_factory=list, max_length=16)
    allow_commands: bool = False
    idle_only: bool = False
    system: WorkerSystem | None = None


class WorkerRegistered(BaseModel):
    id: int
    lease_seconds: float


class NextIn(_In):
    timeout: float = Field(default=30.0, ge=0, le=30)


class TaskPayload(BaseModel):
    id: int
    attempt: int
    job_id: int
    job_name: str
    block: str
    type: str
    params: dict[str, Any]
    frames: list[int]
    start: int
    end: int
    project: str | None
    trusted: bool
    inputs: list[dict[str, str]]
    timeout: float | None = None
    upstream: list[dict[str, Any]] = Field(default_factory=list,
                                           description="outputs of the blocks it depends on")


class NextOut(BaseModel):
    task: TaskPayload


class HeartbeatIn(_In):
    state: Text = Field(default="idle", max_length=32)
    # The machine's CPU and memory use in percent (all programs): the workers page shows
    # them live. Both or neither; older nodes send neither.
    cpu: float | None = Field(default=None, ge=0, le=100)
    mem: float | None = Field(default=None, ge=0, le=100)

    def usage(self) -> tuple[float, float] | None:
        return None if self.cpu is None or self.mem is None else (self.cpu, self.mem)


class WorkerTagsIn(_In):
    tags: list[Tag] | None = Field(max_length=64, description=(
        "the node's tags, kept when it registers again; null: its own from then on"))


class ScheduleIn(_In):
    schedule: str = Field(max_length=200, description=(
        "hours when the node may render, e.g. 'mon-fri 19:00-08:00, sat-sun 00:00-24:00' "
        "on the node's clock (``tz``); empty: always"))
    tz: str | None = Field(default=None, max_length=64, description=(
        "the IANA time zone the hours are in, e.g. 'Europe/Berlin' (a node in another "
        "country); empty: the manager's local time; absent: the zone it had"))


class HeartbeatOut(BaseModel):
    lease_seconds: float


class ProgressIn(_In):
    attempt: int = Field(ge=0, le=MAX_ID)
    progress: float = Field(ge=0, le=100)
    frame: int | None = Field(default=None, ge=-10**9, le=10**9)
    log: list[LogLine] = Field(default_factory=list, max_length=5000)


class ProgressOut(BaseModel):
    cancel: bool


class OutputIn(_In):
    frame: int | None = Field(default=None, ge=-10**9, le=10**9)
    oid: Oid
    name: Text = Field(min_length=1, max_length=256)
    seconds: float | None = Field(default=None, ge=0, le=10**9)
    peak_mem: float | None = Field(default=None, ge=0, le=10**15)
    thumbnail_oid: Oid | None = None
    # the node's read grants for oid and thumbnail_oid, from their upload: a node
    # reports only files it stored, never an id it merely knows
    grant: str | None = Field(default=None, max_length=64)
    thumbnail_grant: str | None = Field(default=None, max_length=64)


class DoneIn(_In):
    attempt: int = Field(ge=0, le=MAX_ID)
    outputs: list[OutputIn] = Field(default_factory=list, max_length=100_000)


class FailIn(_In):
    attempt: int = Field(ge=0, le=MAX_ID)
    error: LogLine = Field(default="failed", max_length=10_000)


class ReleaseIn(_In):
    attempt: int = Field(ge=0, le=MAX_ID)
    reason: LogLine = Field(default="released by the worker", max_length=10_000)


class Ok(BaseModel):
    ok: bool = True


class JobCreated(BaseModel):
    id: int


class TagsIn(_In):
    tags: list[Tag] = Field(max_length=64)
    block: str | None = Field(default=None, min_length=1, max_length=128)


class PriorityIn(_In):
    priority: int = Field(ge=0, le=100)


class JobSummary(BaseModel):
    id: int
    name: str
    owner: str
    project: str | None
    priority: int
    status: str
    reason: str = ""  # why it is waiting, queued, stalled, pausing or failed
    paused: bool
    max_running: int | None
    created: float
    started: float | None
    finished: float | None
    tasks_total: int
    tasks_done: int
    tasks_running: int
    tasks_failed: int
    progress: float


class TaskOut(BaseModel):
    id: int
    block: str
    index: int
    frames: str
    start: int
    end: int
    status: str
    attempt: int
    failures: int
    progress: float
    frame: int | None
    worker: str | None
    started: float | None
    finished: float | None
    error: str | None


class JobDetail(JobSummary):
    inputs: list[dict[str, str]]
    after: list[int]
    blocks: list[dict[str, Any]]
    blocklist: list[dict[str, Any]]
    tasks: list[TaskOut] = Field(default_factory=list)


class OutputOut(BaseModel):
    task_id: int
    block: str
    frame: int | None
    name: str
    oid: str
    seconds: float | None
    peak_mem: float | None
    thumbnail_oid: str | None
    grant: str = Field(default="", description="the caller's read grant for oid")


class LogLineOut(BaseModel):
    id: int
    attempt: int
    time: float
    line: str


class TaskLog(BaseModel):
    task_id: int
    job_id: int
    status: str
    attempt: int
    lines: list[LogLineOut]


class WorkerOut(BaseModel):
    id: int
    name: str
    user: str
    slots: int
    tags: list[str]
    job_types: list[str]
    allow_commands: bool
    idle_only: bool
    enabled: bool
    draining: bool
    state: str
    registered: float
    last_seen: float
    tasks: list[int] = Field(description="running tasks of jobs you may see")
    other_tasks: int = Field(0, description="running tasks of jobs you may not see: "
                             "counted, not named")
    system: dict[str, Any] = Field(default_factory=dict)
    tags_fixed: bool = False
    schedule: str | None = None
    schedule_tz: str | None = None
    off_schedule: bool = False
    cpu_use: float | None = None
    mem_use: float | None = None


# -- read grants in rows ------------------------------------------------------------------
# An input or output row names a store object by ``oid`` and carries the caller's read
# grant for it (``grant``): whoever reads the row may read the object (``vstudio.grants``).

class GrantKeeper(Protocol):
    """Where a client keeps the read grants it was handed (``ObjectStore.grant/remember``)."""

    def grant(self, oid: str) -> str | None: ...
    def remember(self, grants: Mapping[str, str]) -> None: ...


def grant_field(store: GrantKeeper, oid: str) -> dict[str, str]:
    """``{"grant": …}`` for a job input naming ``oid``, when ``store`` holds one."""
    g = store.grant(oid)
    return {"grant": g} if g else {}


def remember_rows(store: GrantKeeper, rows: Iterable[dict[str, Any]]) -> None:
    """Keep the grants of rows the server answered (a job's outputs, a task's inputs)."""
    store.remember({str(r["oid"]): str(r["grant"]) for r in rows
                    if r.get("oid") and r.get("grant")})
