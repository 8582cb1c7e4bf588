"""Repository: revisions, changed paths, locks, tags, lock rules.

Revision ID: 0002_repo
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_repo"
down_revision = "0001"
branch_labels = ("repo",)
depends_on = None


def _pk_project() -> sa.Column:
    return sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
                     primary_key=True)


def upgrade() -> None:
    op.create_table(
        "repo_revisions",
        _pk_project(),
        sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("commit_oid", sa.String(64), nullable=False),
        sa.Column("tree_oid", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "repo_changes",
        _pk_project(),
        sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("path", sa.String(1024), primary_key=True),
    )
    op.create_index("ix_repo_changes_path", "repo_changes", ["project_id", "path"])
    op.create_table(
        "repo_locks",
        _pk_project(),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "repo_tags",
        _pk_project(),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("rev", sa.Integer, nullable=False),
    )
    op.create_table(
        "repo_lock_rules",
        _pk_project(),
        sa.Column("pattern", sa.String(1024), primary_key=True),
    )


def downgrade() -> None:
    for t in ("repo_lock_rules", "repo_tags", "repo_locks", "repo_changes", "repo_revisions"):
        op.drop_table(t)
