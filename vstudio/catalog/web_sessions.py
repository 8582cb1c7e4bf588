"""Catalog side of the web page's sessions: ending a browser session's minted token."""

from __future__ import annotations

import hashlib

from sqlalchemy.engine import Engine

from vstudio.catalog.tables import tokens


def revoke_token(engine: Engine, token: str) -> None:
    """Delete one token (no error when it is gone already)."""
    digest = hashlib.sha256(token.encode()).hexdigest()  # as accounts stores it
    with engine.begin() as conn:
        conn.execute(tokens.delete().where(tokens.c.token_hash == digest))
