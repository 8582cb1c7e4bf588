"""Repository: revision properties (e.g. the Subversion number of a renumbered import).

Revision ID: 0004_revprops
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_revprops"
down_revision = "0002_repo"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_revprops",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("repo_revprops")
