"""Sessions and tokens in the catalog: minting a login session, listing, revoking.

A *token* comes from ``vstudio user add`` / ``user token`` and lives until revoked; a
*session* is minted by a password login and ends at its expiry (or at logout). Both are
kept as the SHA-256 of the secret, so listing them shows ids, never usable secrets.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vstudio.catalog.accounts import new_token
from vstudio.catalog.tables import tokens, users
from vstudio.errors import NotFound

SESSION = "session"
TOKEN = "token"


@dataclass(frozen=True)
class SessionInfo:
    id: int
    user: str
    kind: str  # "token" or "session"
    created: float
    expires: float | None
    label: str | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()  # as accounts stores it


def new_session(engine: Engine, user_name: str, lifetime: float, label: str) -> tuple[str, float]:
    """Mint a session token for ``user_name`` ending ``lifetime`` seconds from now."""
    token = new_token()
    now = time.time()
    expires = now + lifetime
    with engine.begin() as conn:
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == user_name)).scalar()
        if uid is None:
            raise NotFound(f"no user {user_name!r}")
        # ended sessions are dropped here, so the table does not grow with every login
        conn.execute(tokens.delete().where(tokens.c.expires < now))
        conn.execute(tokens.insert().values(user_id=uid, token_hash=_digest(token), created=now,
                                            kind=SESSION, expires=expires, label=label[:200]))
    return token, expires


def list_sessions(engine: Engine, user_name: str | None = None) -> list[SessionInfo]:
    """Live sessions and tokens, of one user or of everyone, oldest first."""
    q = (sa.select(tokens.c.id, users.c.name, tokens.c.kind, tokens.c.created,
                   tokens.c.expires, tokens.c.label)
         .join(users, users.c.id == tokens.c.user_id)
         .where(tokens.c.expires.is_(None) | (tokens.c.expires > time.time()))
         .order_by(tokens.c.id))
    with engine.connect() as conn:
        if user_name is not None:
            if conn.execute(sa.select(users.c.id).where(users.c.name == user_name)).first() is None:
                raise NotFound(f"no user {user_name!r}")
            q = q.where(users.c.name == user_name)
        return [SessionInfo(r.id, r.name, r.kind, r.created, r.expires, r.label)
                for r in conn.execute(q)]


def session_id_of(engine: Engine, token: str) -> tuple[int, str] | None:
    """(id, kind) of a token, or None when it is unknown."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(tokens.c.id, tokens.c.kind)
                           .where(tokens.c.token_hash == _digest(token))).first()
    return (int(row.id), str(row.kind)) if row else None


def revoke(engine: Engine, session_id: int, *, owner: str | None = None) -> str:
    """Delete session or token ``session_id`` (only ``owner``'s when given); return the
    digest the server's token cache must forget."""
    q = (sa.select(tokens.c.token_hash).join(users, users.c.id == tokens.c.user_id)
         .where(tokens.c.id == session_id))
    if owner is not None:
        q = q.where(users.c.name == owner)
    with engine.begin() as conn:
        digest = conn.execute(q).scalar()
        if digest is None:  # someone else's session is "not found" too: ids are not leaked
            raise NotFound(f"no session {session_id}: 'vstudio user sessions' lists them")
        conn.execute(tokens.delete().where(tokens.c.id == session_id))
    return str(digest)


def revoke_token(engine: Engine, token: str) -> str:
    """Delete one token by its secret (no error when it is gone already); its digest."""
    digest = _digest(token)
    with engine.begin() as conn:
        conn.execute(tokens.delete().where(tokens.c.token_hash == digest))
    return digest
