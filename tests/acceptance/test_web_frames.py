"""The job page shows the last rendered frame large and swaps it as new frames arrive.

A real `vstudio serve`, a render node simulated over the HTTP API, frames made by
Debian's ffmpeg and stored in the studio's store, headless Chromium.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_web_browser import FakeNode, _store_put, browser, login, shot, submit
from tests.acceptance.test_web_states import srv
from tests.helpers import need

__all__ = ["browser", "srv"]  # fixtures shared with the other page tests
pytestmark = pytest.mark.timeout(180)  # a stuck browser fails fast, not after 10 min


def _frames(tmp: Path, n: int) -> list[Path]:
    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    out = []
    for i in range(1, n + 1):
        f = tmp / f"frame_{i:04d}.png"
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                        f"color=c=0x{60 * i:02x}4080:s=96x54", "-frames:v", "1", str(f)],
                       check=True)
        out.append(f)
    return out


def _project(studio: Path, name: str) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        accounts.create_project(s.engine, name)
    finally:
        s.close()


def _shown(page: Any, oid: str) -> None:
    page.wait_for_function(
        "(() => { const i = document.querySelector('#latest [data-latest-img]');"
        f" return i && i.src.endsWith('{oid}') && i.complete && i.naturalWidth === 96; }})()",
        timeout=10000)


def test_last_rendered_frame_is_shown_large_and_follows_new_frames(srv: Any, browser: Any,
                                                                   tmp_path: Path) -> None:
    oids = _store_put(srv.studio, _frames(tmp_path, 2))
    _project(srv.studio, "film")  # the viewer watches a job of a project (not a private one)
    job = submit(srv.url, srv.admin_token, "frames", frames="1-2", chunk=1, project="film")
    node = FakeNode(srv.url, srv.admin_token, "node-frames")
    page = login(browser, srv.url, srv.viewer_token)
    page.goto(f"{srv.url}/jobs/{job}")
    assert page.locator("#latest").is_hidden()  # nothing rendered yet
    assert page.locator(".thumbs img").count() == 0
    page.evaluate("window.__noReload = 1")
    for i, oid in enumerate(oids, start=1):
        node.take()
        node.done([{"frame": i, "oid": oid, "name": f"frame_{i:04d}.png", "seconds": 1.0}])
        _shown(page, oid)  # without a reload
        assert page.locator("#latest [data-latest-caption]").inner_text() == f"render, frame {i}"
    # The legend follows too: no task is queued any more (it once kept saying 1).
    page.wait_for_function("document.querySelector('[data-count=queued]').textContent === '0'")
    assert page.locator("[data-count=done]").inner_text() == "2"
    assert page.locator("#latest img").get_attribute("alt") == \
        "last rendered frame: render, frame 2"
    assert page.locator("#latest img").evaluate("i => i.getBoundingClientRect().width") > 200
    # The thumbnails and the render-time chart follow the finished tasks too, and a
    # thumbnail that came in live opens its preview.
    page.wait_for_function("document.querySelectorAll('.thumbs img').length === 2")
    page.wait_for_selector("#job-media svg.chart")
    assert "2 frames" in page.locator("#job-media svg.chart desc").text_content()
    assert page.evaluate("window.__noReload") == 1
    page.locator(".thumbs img").nth(1).click()
    page.wait_for_selector("#preview[open]")
    assert page.locator("#preview [data-caption]").inner_text() == "render, frame 2"
    page.keyboard.press("Escape")
    shot(page, "job-latest-frame")
    page.reload()  # a fresh page shows the same newest frame
    _shown(page, oids[1])
    page.goto("about:blank")
    page.context.close()
