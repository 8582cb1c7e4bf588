"""Templates, filters and the page route class that turns errors into HTML pages."""

from __future__ import annotations

import datetime as dt
import logging
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from vstudio.errors import NotAuthenticated, VStudioError
from vstudio.web.session import Session, session_of

HERE = Path(__file__).parent
log = logging.getLogger("vstudio.web")

# No inline script anywhere: a script that slipped past escaping still would not run.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def duration(seconds: float | int | None) -> str:
    """Compact human duration: 45s, 12m 03s, 3h 20m, 2d 4h."""
    if seconds is None:
        return "–"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def ago(when: float | None) -> str:
    if not when:
        return "never"
    return duration(time.time() - when) + " ago"


def stamp(when: float | None) -> str:
    if not when:
        return "–"
    return dt.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")


def size(n: int | None) -> str:
    if n is None:
        return "–"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped unless a template says otherwise
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(duration=duration, ago=ago, stamp=stamp, size=size,
                       urlq=lambda v: urllib.parse.quote(str(v), safe="/"))
    return env


ENV = _env()


def html(request: Request, template: str, session: Session | None, status: int = 200,
         **ctx: Any) -> HTMLResponse:
    body = ENV.get_template(template).render(request=request, session=session,
                                             nav_path=request.url.path, **ctx)
    return HTMLResponse(body, status_code=status)


def fragment(template: str, **ctx: Any) -> str:
    return ENV.get_template(template).render(**ctx)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return html(request, "error.html", session_of(request), status=status,
                status_code=status, message=message)


def _login_redirect(request: Request) -> Response:
    if request.method != "GET":
        return error_page(request, 401, "Your session ended: log in again.")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/?" + urllib.parse.urlencode({"next": target}), status_code=303)


class PageRoute(APIRoute):
    """A route whose errors are HTML pages (not the API's JSON) and whose answers carry
    the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await inner(request)
            except NotAuthenticated:
                response = _login_redirect(request)
            except VStudioError as e:
                response = error_page(request, e.http_status, e.message)
            except RequestValidationError as e:
                first = e.errors()[0] if e.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                response = error_page(request, 400,
                                      f"bad request: {where} {first.get('msg', '')}".strip())
            except StarletteHTTPException as e:
                response = error_page(request, e.status_code, str(e.detail))
            except Exception:
                log.exception("page %s failed", request.url.path)
                response = error_page(request, 500,
                                      "internal error; the server log has details")
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
            return response

        return handler


def int_arg(value: str | None, default: int, lo: int, hi: int) -> int:
    """A query parameter as an int within [lo, hi]; junk gives the default, not an error."""
    try:
        n = int(value) if value is not None else default
    except ValueError:
        return default
    return min(max(n, lo), hi)
