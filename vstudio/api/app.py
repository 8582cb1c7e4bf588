"""The FastAPI application of ``vstudio serve``: wiring, error mapping, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from vstudio import __version__
from vstudio.api.throttle import LoginThrottle
from vstudio.errors import VStudioError
from vstudio.studio import Studio
from vstudio.web.session import session_lifetime

# Modules that contribute routes. Each defines ``router`` (an APIRouter) and may define
# ``setup(app)`` for start-up and shut-down work (e.g. the farm's lease reaper).
ROUTE_MODULES = [
    "vstudio.api.routes_accounts",
    "vstudio.api.routes_store",
    "vstudio.api.routes_refs",
    "vstudio.api.routes_grant",
    "vstudio.api.routes_repo",
    "vstudio.api.routes_farm",
    "vstudio.web.pages",
]

Hook = Callable[[FastAPI], Awaitable[None]]


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


def create_app(studio: Studio) -> FastAPI:
    startup: list[Hook] = []
    shutdown: list[Hook] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for hook in startup:
            await hook(app)
        try:
            yield
        finally:
            for hook in reversed(shutdown):
                await hook(app)
            studio.close()

    app = FastAPI(title="vstudio", version=__version__, lifespan=lifespan,
                  description="Asset repository, render farm and project rendering.",
                  # no OpenTelemetry here; left on, FastAPI looks up three environment
                  # variables on every request (~10% of the farm's hot-path CPU, measured)
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.studio = studio
    app.state.login_throttle = LoginThrottle()
    session_lifetime(studio.config.server)  # a bad value stops the start, with its key
    app.state.startup_hooks = startup
    app.state.shutdown_hooks = shutdown

    _map_errors(app)
    for name in ROUTE_MODULES:
        module = import_module(name)
        app.include_router(module.router)
        if hasattr(module, "setup"):
            module.setup(app)
    _guard_outermost(app, studio)
    return app


def _map_errors(app: FastAPI) -> None:
    """Every error answers JSON ``{"detail": message}`` with its status: the domain's
    errors by their ``http_status``, bad input as 422 naming where, anything unexpected
    as 500 without a traceback (the log has it)."""

    @app.exception_handler(VStudioError)
    async def domain_error(_: Request, exc: VStudioError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        resp = _error(exc.http_status, exc.message)
        if headers:
            resp.headers.update(headers)
        return resp

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        msg = (f"invalid input at {where}: {first.get('msg', 'invalid')}" if where
               else "invalid input")
        return _error(422, msg, errors=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")}
                                        for e in errors[:20]])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        import logging

        logging.getLogger("vstudio.api").exception("unexpected error")
        return _error(500, "internal error; the server log has details")


def _guard_outermost(app: FastAPI, studio: Studio) -> None:
    """Authentication, CSRF and body caps before anything else (even the farm's fast path)
    touches a request: see ``api.guard``."""
    from vstudio.api.guard import BodyLimits, Guard

    limits = BodyLimits.from_config(studio.config.server)
    build = app.build_middleware_stack

    def guarded() -> ASGIApp:
        return Guard(build(), studio, limits)

    app.build_middleware_stack = guarded  # type: ignore[method-assign]
