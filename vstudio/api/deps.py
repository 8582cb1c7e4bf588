"""Request dependencies: the studio, and the authenticated user behind a request."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vstudio.catalog import accounts
from vstudio.catalog.accounts import Role, User
from vstudio.errors import NotAuthenticated, PermissionDenied
from vstudio.studio import Studio

SESSION_COOKIE = "vstudio_session"
_bearer = HTTPBearer(auto_error=False, description="A user's token from 'vstudio user add'.")

# Token lookups sit on the farm's hot path (every next/heartbeat/report); a short cache
# keeps them off the database while a removed user loses access within seconds.
_TOKEN_TTL = 5.0
_token_cache: dict[str, tuple[float, User]] = {}


def get_studio(request: Request) -> Studio:
    return request.app.state.studio  # type: ignore[no-any-return]


def user_for_token(studio: Studio, token: str) -> User:
    now = time.monotonic()
    hit = _token_cache.get(token)
    if hit and hit[0] > now:
        return hit[1]
    user = accounts.user_by_token(studio.engine, token)
    if len(_token_cache) > 10_000:
        _token_cache.clear()
    _token_cache[token] = (now + _TOKEN_TTL, user)
    return user


def current_user(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The user of a Bearer token, or of the web page's session cookie."""
    studio = get_studio(request)
    if creds is not None:
        return user_for_token(studio, creds.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return user_for_token(studio, cookie)
    raise NotAuthenticated("missing credentials: send 'Authorization: Bearer TOKEN'")


CurrentUser = Annotated[User, Depends(current_user)]
StudioDep = Annotated[Studio, Depends(get_studio)]


def require_role(user: User, *roles: Role) -> None:
    if user.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise PermissionDenied(f"this needs the role {allowed}; you are {user.role.value}")


def people_only(user: CurrentUser) -> User:
    """Any authenticated person: not a render node's worker token."""
    if user.role is Role.WORKER:
        raise PermissionDenied("a worker token can only take and report work")
    return user


Person = Annotated[User, Depends(people_only)]
