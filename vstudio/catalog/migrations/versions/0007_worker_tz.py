"""Farm: the time zone a render node's hours are in (a volunteer's machine abroad).

Revision ID: 0007_worker_tz
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_worker_tz"
down_revision = "0006_worker_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        batch.add_column(sa.Column("schedule_tz", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        batch.drop_column("schedule_tz")
