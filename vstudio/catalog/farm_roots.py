"""Store ids the farm keeps only in the catalog: job inputs, outputs and thumbnails."""

from __future__ import annotations

import json
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vstudio.catalog.farm_tables import farm_jobs, farm_outputs


def farm_object_ids(engine: Engine) -> Iterator[str]:
    with engine.connect() as conn:
        for oid, thumb in conn.execute(sa.select(farm_outputs.c.oid,
                                                 farm_outputs.c.thumbnail_oid)):
            yield oid
            if thumb:
                yield thumb
        for (inputs,) in conn.execute(sa.select(farm_jobs.c.inputs)):
            for item in json.loads(inputs or "[]"):
                oid = item.get("oid") if isinstance(item, dict) else None
                if oid:
                    yield str(oid)
