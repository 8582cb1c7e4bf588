"""Farm: jobs, blocks, tasks, outputs, logs, workers, blocklist.

Revision ID: 0003_farm
"""

from alembic import op

revision = "0003_farm"
down_revision = "0001"
branch_labels = ("farm",)
depends_on = None


def upgrade() -> None:
    # The first farm revision creates the tables exactly as ``farm_tables`` declares them
    # (one definition, no drift); later changes get their own migrations with op.* calls.
    from vstudio.catalog.farm_tables import FARM_TABLES

    bind = op.get_bind()
    for table in FARM_TABLES:
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    from vstudio.catalog.farm_tables import FARM_TABLES

    bind = op.get_bind()
    for table in reversed(FARM_TABLES):
        table.drop(bind, checkfirst=True)
