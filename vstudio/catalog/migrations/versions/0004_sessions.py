"""Sessions: a token's kind, its expiry and a label (who logged in from where).

Revision ID: 0004_sessions
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_sessions"
down_revision = "0001"
branch_labels = ("sessions",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False,
                                   server_default="token"))
        batch.add_column(sa.Column("expires", sa.Float))
        batch.add_column(sa.Column("label", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("label")
        batch.drop_column("expires")
        batch.drop_column("kind")
