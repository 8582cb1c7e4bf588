"""Farm: one version row every write transaction counts (cached reads across managers).

Revision ID: 0008_farm_version
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_farm_version"
down_revision = "0007_worker_tz"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "farm_version",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("batches", sa.BigInteger, nullable=False),
        sa.Column("changes", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "batches": 0, "changes": 0}])


def downgrade() -> None:
    op.drop_table("farm_version")
