"""The studio's web page: login, layout, and the routers of the page's sections.

Pages are rendered on the server (Jinja2, autoescaped); a little JavaScript
(``static/app.js`` plus vendored htmx) follows the manager's event stream so progress
shows without a reload. Pages read through the same domain and catalog functions as the
HTTP API; they hold no SQL of their own.
"""

from __future__ import annotations

from importlib import import_module
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from vstudio.api.deps import forget_token, get_studio, user_for_token
from vstudio.api.throttle import LoginThrottle, TooManyAttempts
from vstudio.catalog import accounts, web_sessions
from vstudio.catalog.accounts import Role
from vstudio.errors import NotAuthenticated, PermissionDenied
from vstudio.web import render
from vstudio.web.render import PageRoute, html
from vstudio.web.session import (
    Session,
    acting_session,
    check_login_csrf,
    client_address,
    end_session,
    is_secure,
    login_csrf,
    safe_next,
    session_lifetime,
    session_of,
    set_login_csrf,
    start_session,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# Sections of the page; each module defines ``router``. A section whose domain is not
# built yet (the farm, the repository) is simply absent from the navigation.
SECTIONS = ["vstudio.web.farm_pages", "vstudio.web.jobs_list", "vstudio.web.jobs_pages",
            "vstudio.web.tasks_pages", "vstudio.web.repo_pages"]
MINTED_COOKIE = "vstudio_minted"  # set by older versions; cleared at logout


def setup(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=render.HERE / "static"), name="static")
    for module in _loaded:
        if hasattr(module, "setup"):
            module.setup(app)


def _login_form(request: Request, *, error: str | None = None, status: int = 200,
                name: str = "") -> Response:
    token = login_csrf(request)
    resp = html(request, "login.html", None, status=status, login_csrf=token, error=error,
                next=safe_next(request.query_params.get("next")), name=name)
    set_login_csrf(resp, token, is_secure(request))
    for k, v in render.SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    return resp


@router.get("/")
def index(request: Request) -> Response:
    """Anonymous visitors get the login form; others the farm overview."""
    session = session_of(request)
    if session is None:
        return _login_form(request)
    return RedirectResponse("/farm", status_code=303)


@router.post("/login")
def login(
    request: Request,
    csrf: Annotated[str | None, Form()] = None,
    token: Annotated[str | None, Form(max_length=512)] = None,
    name: Annotated[str | None, Form(max_length=64)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    check_login_csrf(request, csrf)
    studio = get_studio(request)
    address = client_address(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    who = name.strip() if name and not (token and token.strip()) else None
    try:
        throttle.check(who, address)
        if token and token.strip():
            token = token.strip()
            user = user_for_token(studio, token)
        elif who and password:
            user = accounts.user_by_password(studio.engine, who, password)
            throttle.succeeded(user.name)
            token = None
        else:
            return _login_form(request, status=400, name=name or "",
                               error="Enter a token, or a user name and password.")
    except NotAuthenticated as e:
        throttle.failed(who, address)
        return _login_form(request, status=401, error=e.message, name=name or "")
    except TooManyAttempts as e:
        resp = _login_form(request, status=429, error=e.message, name=name or "")
        resp.headers["Retry-After"] = str(e.retry_after)
        return resp
    if user.role is Role.WORKER:
        return _login_form(request, status=403, error="A render node's token cannot log in.")
    lifetime = session_lifetime(studio.config.server)
    if token is None:  # a password login: a session of its own, which ends
        token, _ = web_sessions.new_session(studio.engine, user.name, lifetime,
                                            f"web login from {address}")
    resp = RedirectResponse(safe_next(next) if next != "/" else "/farm", status_code=303)
    start_session(resp, token, is_secure(request), lifetime)
    return resp


@router.post("/logout")
def logout(request: Request, session: Annotated[Session, Depends(acting_session)]) -> Response:
    engine = get_studio(request).engine
    known = web_sessions.session_id_of(engine, session.token)
    if known is not None and known[1] == web_sessions.SESSION:
        # A password login's session ends here; a typed-in token is the user's own (their
        # CLI may use it) and stays valid.
        forget_token(web_sessions.revoke_token(engine, session.token))
    resp = RedirectResponse("/", status_code=303)
    end_session(resp)
    resp.delete_cookie(MINTED_COOKIE, path="/")
    return resp


@router.get("/whoami")
def whoami(request: Request) -> Response:
    """A tiny page for checking a session (used by tests and by people debugging cookies)."""
    session = session_of(request)
    if session is None:
        raise NotAuthenticated()
    if session.user.role is Role.WORKER:
        raise PermissionDenied()
    return html(request, "whoami.html", session)


_loaded = []
for _name in SECTIONS:
    _module = import_module(_name)
    router.include_router(_module.router)
    _loaded.append(_module)
