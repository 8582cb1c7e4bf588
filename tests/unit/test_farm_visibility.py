"""The farm's one rule of who sees a job (``farm.visibility``), case by case."""

from __future__ import annotations

from vstudio.catalog.accounts import Role, User
from vstudio.farm.visibility import Projects, current_tasks, sees_job

ADMIN = User(1, "root", Role.ADMIN)
ANN = User(2, "ann", Role.ARTIST)
BOB = User(3, "bob", Role.ARTIST)
# what bob found out about the jobs' projects: he reads film; gone was removed
BOBS = Projects(readable=frozenset({"film"}), gone=frozenset({"gone"}))


def test_a_removed_projects_job_is_its_owners_alone_as_one_without_a_project() -> None:
    for project in (None, "gone"):
        assert sees_job(ANN, "ann", project, Projects(gone=frozenset({"gone"})))
        assert not sees_job(BOB, "ann", project, BOBS)
        assert sees_job(ADMIN, "ann", project, Projects())
    # even were it still listed as readable, a gone project reads as private
    assert not sees_job(BOB, "ann", "gone", Projects(frozenset({"gone"}), frozenset({"gone"})))
    assert sees_job(BOB, "ann", "film", BOBS)
    assert not sees_job(BOB, "ann", "secret", BOBS)


def test_a_nodes_tasks_are_shown_for_seen_jobs_and_the_others_counted() -> None:
    jobs = {10: ("ann", "film"), 11: ("ann", None), 12: ("ann", "secret"), 13: ("bob", None)}
    shown, others = current_tasks(BOB, [10, 11, 12, 13], jobs.__getitem__, BOBS)
    assert (shown, others) == ([10, 13], 2)
    assert current_tasks(ADMIN, [10, 11, 12, 13], jobs.__getitem__, Projects()) \
        == ([10, 11, 12, 13], 0)
    assert current_tasks(BOB, [], jobs.__getitem__, BOBS) == ([], 0)
