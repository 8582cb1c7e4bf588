"""Catalog tables of the repository: revisions, changed paths, locks, tags, lock rules.

Everything here except locks can be rebuilt from the object store's refs
(``vstudio catalog rebuild``): the bucket is the backup.
"""

from __future__ import annotations

import sqlalchemy as sa

from vstudio.catalog.tables import metadata


def _project_fk() -> sa.ForeignKey:
    return sa.ForeignKey("projects.id", ondelete="CASCADE")


repo_revisions = sa.Table(
    "repo_revisions",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    # (project_id, rev) is the primary key: two concurrent commits of the same
    # number cannot both be inserted, so exactly one wins.
    sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("commit_oid", sa.String(64), nullable=False),
    sa.Column("tree_oid", sa.String(64), nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)

repo_changes = sa.Table(
    "repo_changes",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Index("ix_repo_changes_path", "project_id", "path"),
)

# Named values of a revision beyond author/time/message ("svn-original-rev": the
# Subversion number of a revision imported under another number).
repo_revprops = sa.Table(
    "repo_revprops",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    sa.Column("rev", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

repo_locks = sa.Table(
    "repo_locks",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False, server_default=""),
)

repo_tags = sa.Table(
    "repo_tags",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("rev", sa.Integer, nullable=False),
)

repo_lock_rules = sa.Table(
    "repo_lock_rules",
    metadata,
    sa.Column("project_id", sa.Integer, _project_fk(), primary_key=True),
    sa.Column("pattern", sa.String(1024), primary_key=True),
)
