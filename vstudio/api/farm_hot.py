"""The render nodes' five hot calls, and the people's submit, written once.

``routes_farm_fast.FastPath`` serves them as plain ASGI (the requests a busy farm is made
of), and the FastAPI routes in ``routes_farm`` document them in the OpenAPI contract and
answer through the same functions, so the two cannot drift apart. Each call takes the
farm, the caller, the id in the path and the validated body, and returns (HTTP status,
JSON payload or None for an empty answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from vstudio.catalog.accounts import User
from vstudio.farm.service import Farm
from vstudio.farm.spec import JobSpec
from vstudio.farm.wire import DoneIn, FailIn, HeartbeatIn, NextIn, ProgressIn
from vstudio.grants import grants_of

Answer = tuple[int, Any]
Call = Callable[[Farm, User, int, Any], Awaitable[Answer]]


async def next_task(farm: Farm, user: User, worker_id: int, body: NextIn) -> Answer:
    task = await farm.next_task(user, worker_id, body.timeout)
    return (204, None) if task is None else (200, {"task": task})


async def heartbeat(farm: Farm, user: User, worker_id: int, body: HeartbeatIn) -> Answer:
    await farm.heartbeat(user, worker_id, body.state, body.usage())
    return 200, {"lease_seconds": farm.lease_seconds}


async def progress(farm: Farm, user: User, task_id: int, body: ProgressIn) -> Answer:
    cancel = await farm.progress(user, task_id, body.attempt, body.progress, body.frame,
                                 body.log)
    return 200, {"cancel": cancel}


async def done(farm: Farm, user: User, task_id: int, body: DoneIn) -> Answer:
    await farm.done(user, task_id, body.attempt, [o.model_dump() for o in body.outputs])
    return 200, {"ok": True}


async def fail(farm: Farm, user: User, task_id: int, body: FailIn) -> Answer:
    await farm.fail(user, task_id, body.attempt, body.error)
    return 200, {"ok": True}


async def submit(farm: Farm, user: User, _: int, spec: JobSpec) -> Answer:
    """A job submitted by a person (``deps.require_person`` first). An input given by
    store id needs the submitter's read grant for it."""
    signer = grants_of(farm.studio)
    for item in spec.inputs:
        if item.oid is not None:
            signer.require(user, item.oid, item.grant)
    return 201, {"id": await farm.submit(user, spec)}


# (path's collection, action) -> the body's model and the call
HOT: dict[tuple[str, str], tuple[type[BaseModel], Call]] = {
    ("workers", "next"): (NextIn, next_task),
    ("workers", "heartbeat"): (HeartbeatIn, heartbeat),
    ("tasks", "progress"): (ProgressIn, progress),
    ("tasks", "done"): (DoneIn, done),
    ("tasks", "fail"): (FailIn, fail),
}
