"""Farm: tags an admin fixed, a desktop node's schedule, its live CPU and memory use.

Revision ID: 0006_worker_admin
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_worker_admin"
down_revision = "0005_worker_system"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        batch.add_column(sa.Column("tags_fixed", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("schedule", sa.String(200)))
        batch.add_column(sa.Column("cpu_use", sa.Float))
        batch.add_column(sa.Column("mem_use", sa.Float))


def downgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        for name in ("mem_use", "cpu_use", "schedule", "tags_fixed"):
            batch.drop_column(name)
