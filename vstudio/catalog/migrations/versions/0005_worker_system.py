"""Farm: what a render node reports about itself (version, OS, CPU, memory).

Revision ID: 0005_worker_system
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_worker_system"
down_revision = "0003_farm"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        batch.add_column(sa.Column("system", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("farm_workers") as batch:
        batch.drop_column("system")
