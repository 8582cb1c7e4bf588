"""The farm's version row: counted by every write transaction, read by every manager.

See ``vstudio.farm.freshness`` for why. The row is made by the migration that added the
table; a database without it gets it on the first write.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vstudio.catalog.farm_tables import farm_version

ROW = 1


def stamp(conn: Connection, changed: bool) -> None:
    t = farm_version.c
    done = conn.execute(sa.update(farm_version).where(t.id == ROW).values(
        batches=t.batches + 1, changes=t.changes + (1 if changed else 0)))
    if done.rowcount == 0:
        conn.execute(sa.insert(farm_version).values(id=ROW, batches=1,
                                                    changes=1 if changed else 0))


def read(conn: Connection) -> tuple[int, int]:
    t = farm_version.c
    row = conn.execute(sa.select(t.batches, t.changes).where(t.id == ROW)).first()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))
