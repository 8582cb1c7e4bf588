"""Core table definitions shared by the whole studio (users, tokens, projects, rights).

Domain tables live beside their persistence code (``catalog/<domain>_tables.py``) on the
same ``metadata`` so that tests and migrations see one schema.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("created", sa.Float, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # sha256 of the token: a leaked database does not leak usable tokens.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    # "token" (from 'vstudio user add/token': lives until revoked) or "session" (minted by
    # a password login: ends at ``expires``). Added by migration 0004_sessions.
    sa.Column("kind", sa.String(16), nullable=False, server_default="token"),
    sa.Column("expires", sa.Float),
    sa.Column("label", sa.String(200)),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created", sa.Float, nullable=False),
    # A trusted project's .blend files may run their Python scripts on the farm.
    sa.Column("trusted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("settings", sa.Text, nullable=False, server_default="{}"),
)

project_rights = sa.Table(
    "project_rights",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("can_read", sa.Boolean, nullable=False),
    sa.Column("can_write", sa.Boolean, nullable=False),
)
