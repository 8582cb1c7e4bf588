"""Tables of the web page: samples of the farm's state for the overview's charts."""

from __future__ import annotations

import sqlalchemy as sa

from vstudio.catalog.tables import metadata

# One row per sampling period (the period's start is the key, so several manager
# replicas sampling at once write one row, not several).
web_farm_samples = sa.Table(
    "web_farm_samples", metadata,
    sa.Column("time", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("busy", sa.Integer, nullable=False),
    sa.Column("idle", sa.Integer, nullable=False),
    sa.Column("offline", sa.Integer, nullable=False),
    sa.Column("queued", sa.Integer, nullable=False),
    sa.Column("running", sa.Integer, nullable=False),
)
