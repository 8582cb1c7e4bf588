"""The manager's farm API as the render node uses it, over HTTP only.

Network trouble and 5xx answers become :class:`ManagerAway` (retry later, keep
rendering); 409 becomes :class:`StaleAttempt` (the task was taken from us: drop it).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from vstudio.client.http import ApiClient, detail
from vstudio.errors import BadInput, NotFound, ServerError, VStudioError

T = TypeVar("T")


class ManagerAway(ServerError):
    """The manager cannot be reached right now."""


class StaleAttempt(VStudioError):
    """The manager gave this task to someone else; our report was ignored."""


class ManagerApi(ApiClient):
    """The farm API as a render node sees it: network trouble and 5xx mean "retry later"."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        super().__init__(server, token, timeout)

    def unreachable(self, exc: httpx.HTTPError) -> VStudioError:
        return ManagerAway(f"manager at {self.server} is unreachable: {exc}")

    def check(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code >= 500:
            raise ManagerAway(f"manager answered {resp.status_code} to "
                              f"{resp.request.method} {resp.request.url.path}")
        if resp.status_code == 409:
            raise StaleAttempt(detail(resp))
        return super().check(resp)

    def send(self, method: str, path: str, body: Any = None,
             timeout: float | None = None) -> httpx.Response:
        limit = timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT
        return self.request(method, path, json=body, timeout=limit)

    # --- the farm API (common brief) ---

    def register(self, info: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(self.send("POST", "/api/workers", info).json())
        except BadInput as e:
            # A manager older than this node refuses fields it does not know: register
            # without the machine's description rather than not at all.
            if "system" not in info or "system" not in str(e):
                raise
            rest = {k: v for k, v in info.items() if k != "system"}
            return dict(self.send("POST", "/api/workers", rest).json())

    def next_task(self, worker_id: Any, wait: float) -> dict[str, Any] | None:
        r = self.send("POST", f"/api/workers/{worker_id}/next", {"timeout": wait},
                      timeout=wait + 15)
        if r.status_code == 204 or not r.content:
            return None
        data = r.json()
        task = data.get("task", data) if isinstance(data, dict) else None
        return dict(task) if task else None

    def heartbeat(self, worker_id: Any, state: str,
                  usage: tuple[float, float] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state}
        if usage is not None:
            body["cpu"], body["mem"] = usage
        r = self.send("POST", f"/api/workers/{worker_id}/heartbeat", body)
        return dict(r.json()) if r.content else {}

    def progress(self, task_id: Any, body: dict[str, Any]) -> bool:
        """Report progress; True when the manager asks us to cancel."""
        r = self.send("POST", f"/api/tasks/{task_id}/progress", body)
        return bool(r.json().get("cancel")) if r.content else False

    def done(self, task_id: Any, attempt: int, outputs: list[dict[str, Any]]) -> None:
        self.send("POST", f"/api/tasks/{task_id}/done", {"attempt": attempt, "outputs": outputs})

    def fail(self, task_id: Any, attempt: int, error: str) -> None:
        self.send("POST", f"/api/tasks/{task_id}/fail", {"attempt": attempt, "error": error})

    def release(self, task_id: Any, attempt: int, reason: str) -> None:
        """Give a task back without counting a failure (falls back to ``fail``)."""
        try:
            self.send("POST", f"/api/tasks/{task_id}/release",
                      {"attempt": attempt, "reason": reason})
        except (NotFound, VStudioError) as e:
            if isinstance(e, ManagerAway | StaleAttempt):
                raise
            self.fail(task_id, attempt, reason)

def retrying(fn: Callable[[], T], stop: threading.Event | None = None,
             on_wait: Callable[[Exception, float], None] | None = None,
             max_delay: float = 10.0, give_up: float | None = None) -> T:
    """Call ``fn`` until it stops raising ManagerAway, with jittered exponential backoff.

    Gives up (re-raises) when ``stop`` is set or after ``give_up`` seconds.
    """
    delay = min(0.25, max_delay)
    started = time.monotonic()
    while True:
        try:
            return fn()
        except ManagerAway as e:
            if (stop is not None and stop.is_set()) or (
                    give_up is not None and time.monotonic() - started > give_up):
                raise
            if on_wait:
                on_wait(e, delay)
            wait = delay * (0.75 + random.random() / 2)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
            delay = min(max_delay, delay * 2)
