"""Web sessions: the login cookie, the CSRF tokens, and who may act on what.

The session cookie ``vstudio_session`` carries a user token (the one typed in, or a fresh
one minted for a password login), so ``api.deps.current_user`` accepts the same cookie
for the API calls the page makes (the SSE stream, logs). The cookie is HttpOnly and
SameSite=Lax: scripts cannot read it and other sites' forms do not send it on POST.

CSRF: every form and action carries a per-session token derived from the session
token with a one-way hash; a page of another origin cannot read it, and the server needs
no state to check it (it works behind several manager replicas). The login form,
which has no session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from vstudio.api.deps import CSRF_HEADER, SESSION_COOKIE, csrf_for, get_studio, user_for_token
from vstudio.catalog.accounts import Role, User
from vstudio.errors import BadInput, NotAuthenticated, PermissionDenied, VStudioError

LOGIN_CSRF_COOKIE = "vstudio_login_csrf"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE = 14 * 24 * 3600


class CsrfRefused(PermissionDenied):
    """The form's CSRF token is missing or wrong: reload the page and try again."""


@dataclass(frozen=True)
class Session:
    """The logged-in user of a page request and the CSRF token its forms carry."""

    user: User
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def can_act(self) -> bool:
        """Artists and admins may act on jobs; viewers only see."""
        return self.user.role in (Role.ADMIN, Role.ARTIST)

    def may_change_job(self, owner: str | None) -> bool:
        return self.user.is_admin or (self.user.role is Role.ARTIST and owner == self.user.name)


def session_of(request: Request) -> Session | None:
    """The session of a request, or None when the visitor is not (or no longer) logged in."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        user = user_for_token(get_studio(request), token)
    except NotAuthenticated:
        return None
    if user.role is Role.WORKER:
        return None  # a render node's token cannot log in to the page
    return Session(user, token)


def require_session(request: Request) -> Session:
    s = session_of(request)
    if s is None:
        raise NotAuthenticated("log in first")
    return s


async def check_csrf(request: Request, session: Session) -> None:
    """Refuse a state-changing request whose CSRF token is absent or wrong."""
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()  # parsed once; the endpoint's Form() fields reuse it
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise CsrfRefused()


async def acting_session(request: Request) -> Session:
    """Dependency of every state-changing page route: logged in and a valid CSRF token."""
    session = require_session(request)
    await check_csrf(request, session)
    return session


def login_csrf(request: Request) -> str:
    """The double-submit token of the login form (reused while the cookie lives)."""
    existing = request.cookies.get(LOGIN_CSRF_COOKIE)
    return existing if existing and len(existing) <= 64 else secrets.token_urlsafe(24)


def set_login_csrf(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, value, max_age=3600, httponly=True,
                        samesite="strict", secure=secure, path="/")


def check_login_csrf(request: Request, sent: str | None) -> None:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise CsrfRefused()


def session_lifetime(server: dict[str, Any]) -> float:
    """Seconds a password login's session lasts: ``[server] session_hours`` (14 days)."""
    hours = server.get("session_hours", SESSION_MAX_AGE / 3600)
    if isinstance(hours, bool) or not isinstance(hours, int | float) \
            or not 0.0001 <= hours <= 24 * 366:
        raise BadInput(f"[server] session_hours must be a number of hours from 0.0001 to 8784, "
                       f"not {hours!r}")
    return float(hours) * 3600


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def start_session(response: Response, token: str, secure: bool,
                  lifetime: float = SESSION_MAX_AGE) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(lifetime), httponly=True,
                        samesite="lax", secure=secure, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def require_actor(session: Session) -> None:
    if not session.can_act:
        raise PermissionDenied(f"a {session.user.role.value} can only look, not act")


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in; never another site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


__all__ = ["CsrfRefused", "Session", "VStudioError"]
