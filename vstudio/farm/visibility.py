"""Who sees a farm job: the one rule every route, page, stream and CLI answer applies.

- An admin sees every job.
- A job of a project is seen by whoever may read that project (the caller works out
  which projects those are, once per request: ``Projects``).
- A job without a project (a render of plain files, ``vstudio submit`` of local files,
  a ``render --farm`` whose render cache the server refused, a render from an older
  mount) is private: only its owner sees it. Its inputs and outputs are that user's
  own files, and nothing else says who else could read them.
- A job of a project that was removed (``vstudio project rm``) is private too: the
  project's rights went with it, so nothing says any more who may read its files.

"Sees" covers the job's row in lists, its page, its outputs, its tasks' logs, its
events and the render nodes running its tasks (``current_tasks``: others see a node
busy, not with what); acting on a job needs this and more (``Farm._check_job``). A job
a user may not see is refused with the same answer whatever the reason, so the refusal
tells nothing about it. Aggregate numbers (queue length, ETA) count every job, without names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from vstudio.catalog.accounts import User
from vstudio.errors import PermissionDenied

T = TypeVar("T")


@dataclass(frozen=True)
class Projects:
    """What the caller found out about some jobs' projects for one user: the ones the
    user may read, and the ones that exist no more. Hashable: answers are cached by it."""

    readable: frozenset[str] = frozenset()
    gone: frozenset[str] = frozenset()


def private(project: str | None, projects: Projects) -> bool:
    """Whether a job of ``project`` is its owner's alone: it has no project, or a removed
    one (its rights went with it: nothing says any more who else may read its files)."""
    return project is None or project in projects.gone


def sees_job(user: User, owner: str, project: str | None, projects: Projects) -> bool:
    """Whether ``user`` may see a job of ``owner`` in ``project`` (None: no project);
    ``projects``: what the user may read among the jobs' projects (unused for an admin)."""
    if user.is_admin:
        return True
    if private(project, projects):
        return owner == user.name
    return project in projects.readable


def current_tasks(user: User, tasks: Iterable[T], job_of: Callable[[T], tuple[str, str | None]],
                  projects: Projects) -> tuple[list[T], int]:
    """A render node's running ``tasks`` as ``user`` may be shown them: those of jobs the
    user sees, and how many others there are. The others are counted, never named: that
    the node is busy is no secret (the queue's numbers count every job), but a task's id
    leads to its job, and its job's name, owner, frames and progress are the job's own.
    ``job_of``: a task's job's (owner, project)."""
    shown, others = [], 0
    for t in tasks:
        if sees_job(user, *job_of(t), projects):
            shown.append(t)
        else:
            others += 1
    return shown, others


def hidden(job_id: int) -> PermissionDenied:
    """The one refusal for a job the user may not see (any reason: the same words)."""
    return PermissionDenied(f"job {job_id} is not visible to you: it belongs to a project "
                            "you may not read, or is another user's private job")
