"""Web page: farm samples for the overview charts.

Revision ID: 0002_web
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_web"
down_revision = "0001"
branch_labels = ("web",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_farm_samples",
        sa.Column("time", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("busy", sa.Integer, nullable=False),
        sa.Column("idle", sa.Integer, nullable=False),
        sa.Column("offline", sa.Integer, nullable=False),
        sa.Column("queued", sa.Integer, nullable=False),
        sa.Column("running", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_farm_samples")
