"""Rows of the job lists (jobs page, farm overview, a project's renders): status with its
reason (``farm.condition``), frames, progress and the actions a person may take."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vstudio.farm.model import shown_task_status
from vstudio.web import views

if TYPE_CHECKING:
    from vstudio.farm.ports import Condition, FarmReads, JobHead
    from vstudio.web.session import Session


def job_rows(r: FarmReads, heads: list[JobHead],
             counts: dict[int, dict[str, int]] | None = None,
             conds: Mapping[int, Condition] | None = None) -> list[views.JobRow]:
    """Full list rows (status, frames, progress) for a page of job heads; ``counts`` and
    ``conds`` the caller has judged already are used as they are (the list judges every
    job to filter by status: judging them again was half the cost of a sorted list)."""
    ids = [h.id for h in heads]
    counts = counts if counts is not None else r.task_status_counts(ids)
    frames = r.frame_counts(ids)
    if conds is None:
        conds = r.conditions([(h.id, h.state) for h in heads], counts)
    # A paused job's clock stops when its last running task ended.
    stopped = r.last_finished([h.id for h in heads if conds[h.id].status == "paused"])
    rows = []
    for h in heads:
        c = counts.get(h.id, {})
        fc = frames[h.id]
        pct = 100.0 * (fc.done + fc.running_done) / fc.total if fc.total else 0.0
        shown: dict[str, int] = {}
        for status, n in c.items():
            key = shown_task_status(status, h.state)
            shown[key] = shown.get(key, 0) + n
        cond = conds[h.id]
        rows.append(views.JobRow(h.id, h.name, h.owner, cond.status, h.priority,
                                 fc.rendered, fc.to_render, round(pct, 1), h.created, h.started,
                                 h.finished, shown, h.project, cond.reason,
                                 stopped.get(h.id)))
    return rows


def row_actions(session: Session) -> Any:
    """For templates: the actions ``session`` may take on a row."""
    return lambda j: j.actions if session.may_change_job(j.owner) else []
