"""Request dependencies: the studio, and the authenticated user behind a request."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User, token_digest
from vstudio.errors import NotAuthenticated, PermissionDenied
from vstudio.studio import Studio

SESSION_COOKIE = "vstudio_session"
CSRF_HEADER = "x-csrf-token"
# Where ``api.guard`` leaves the user it authenticated (in the ASGI scope's state), so
# routes do not look the token up a second time.
SCOPE_USER = "vstudio_user"
_bearer = HTTPBearer(auto_error=False, description="A user's token from 'vstudio user add'.")

# Token lookups sit on every request; a short cache keeps them off the database while a
# removed user or a revoked session loses access within seconds (at once on this server).
# Keyed by the token's SHA-256, the same fast hash the catalog keeps: tokens are 256-bit
# random, so no slow password hash is needed, and the raw token is not held here.
_TOKEN_TTL = 5.0
_token_cache: dict[str, tuple[float, User]] = {}


def get_studio(request: Request) -> Studio:
    return request.app.state.studio


def cached_user(token: str) -> User | None:
    """The user of ``token`` if this server verified it within the last seconds."""
    hit = _token_cache.get(token_digest(token))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return None


def user_for_token(studio: Studio, token: str) -> User:
    user = cached_user(token)
    if user is not None:
        return user
    digest = token_digest(token)
    user, expires = accounts.token_user(studio.engine, digest)
    now = time.monotonic()
    until = now + _TOKEN_TTL
    if expires is not None:  # a session ending within the cache period ends on time
        until = min(until, now + expires - time.time())
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[digest] = (until, user)
    return user


async def user_for_token_async(studio: Studio, token: str) -> User:
    """``user_for_token`` without a thread hop when the token is cached (the common case)."""
    user = cached_user(token)
    if user is not None:
        return user
    return await asyncio.to_thread(user_for_token, studio, token)


def forget_token(digest: str) -> None:
    """Drop a revoked token from this server's cache (other servers drop it within 5 s)."""
    _token_cache.pop(digest, None)


def csrf_for(session_token: str) -> str:
    """The CSRF token that goes with a session cookie: the page embeds it, a page of
    another origin cannot read it, and checking it needs no server state."""
    # Domain-separated so the value differs from the token hash kept in the catalog.
    return hashlib.sha256(b"vstudio-csrf\0" + session_token.encode()).hexdigest()[:40]


async def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of a Bearer token, or of the web page's session cookie."""
    user = request.scope.get("state", {}).get(SCOPE_USER)
    if isinstance(user, User):
        return user
    token = creds.credentials if creds is not None else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated("missing credentials: send 'Authorization: Bearer TOKEN'")
    return await user_for_token_async(get_studio(request), token)


CurrentUser = Annotated[User, Depends(current_user)]
StudioDep = Annotated[Studio, Depends(get_studio)]


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"this needs the role {allowed}; you are {user.role.value}")


def require_person(user: User) -> User:
    """``user`` unless it is a render node's worker token (refused)."""
    if user.role is Role.WORKER:
        raise PermissionDenied("a worker token can only take and report work")
    return user


async def people_only(user: CurrentUser) -> User:
    """Any authenticated person: not a render node's worker token."""
    return require_person(user)


Person = Annotated[User, Depends(people_only)]
