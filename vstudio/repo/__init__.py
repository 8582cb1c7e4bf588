"""The versioned asset repository: projects, revisions, trees, locks, working copies.

Kept free of heavy imports: ``vstudio.cli.fast_status`` imports ``vstudio.repo.wcindex``
and must not pay for SQLAlchemy or the store on that path.
"""

from __future__ import annotations

# Not ``typing.TYPE_CHECKING``: importing typing costs the fast status path ~2 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from vstudio.repo.api import RepoReader
    from vstudio.studio import Studio


def open_reader(studio: Studio) -> RepoReader:
    """The embedded ``RepoReader`` of a local studio (catalog + store, no server)."""
    from vstudio.repo.service import RepoService

    return RepoService(studio)
