"""Shared set-up of the web page's browser tests: a server, Chromium, logins, seed data."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.helpers import ROOT, need

ARTIFACTS = ROOT / "test-artifacts"
# A 2x2 PNG: small, valid, and recognisably an image to the browser.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP4z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==")


def launch_chromium(pw: Any) -> Any:
    exe = need("chromium", "apt-get install chromium")
    return pw.chromium.launch(executable_path=exe,
                              args=["--no-sandbox", "--headless", "--disable-gpu"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install playwright (make test does)")
    with sync_playwright() as pw:
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()


def login(browser: Any, base: str, token: str, viewport: dict[str, int] | None = None) -> Any:
    """A new browser context logged in through the login form; returns its page."""
    # CSP bypassed: Playwright's waits evaluate strings, and the XSS checks should prove
    # the escaping itself, not lean on the page's script-src policy.
    ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                              accept_downloads=True, bypass_csp=True)
    page = ctx.new_page()
    page.goto(base + "/")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(base + "/farm**")
    return page


def shot(page: Any, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def api(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def seed_repo(studio: Path, project: str = "film") -> dict[str, str]:
    """A project with two revisions: a text file changed in r2, a PNG, a hostile name."""
    from vstudio.catalog import accounts
    from vstudio.repo.api import Entry
    from vstudio.repo.service import Change, RepoService
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        accounts.create_project(s.engine, project)
        repo = RepoService(s)

        def add(path: str, data: bytes) -> Change:
            return Change(path, None, Entry(path, s.store.put_bytes(data), len(data)))

        repo.commit(project, "alice", "first <b>import</b>", [
            add("notes.txt", b"version one\n"), add("tex/wood.png", PNG),
            add("shots/s01/<img src=x onerror=window.__xss=1>.blend", b"BLENDER-v304")])
        old = repo.tree(project, 1)["notes.txt"].oid
        data = b"version two, longer\n"
        repo.commit(project, "bob", "second", [
            Change("notes.txt", old, Entry("notes.txt", s.store.put_bytes(data), len(data)))])
        repo.lock(project, "tex/wood.png", "alice", "painting the grain")
        return {"project": project}
    finally:
        s.close()


class FakeNode:
    """A render node simulated over the farm's HTTP API (what `vstudio worker` does)."""

    def __init__(self, base: str, token: str, name: str) -> None:
        self.http = api(base, token)
        r = self.http.post("/api/workers", json={
            "name": name, "slots": 1, "tags": [], "job_types": ["command"],
            "allow_commands": True, "idle_only": False})
        r.raise_for_status()
        self.id = r.json()["id"]
        self.task: dict[str, Any] = {}

    def take(self) -> dict[str, Any]:
        r = self.http.post(f"/api/workers/{self.id}/next", json={"timeout": 5})
        assert r.status_code == 200, r.text
        self.task = r.json()["task"]
        return self.task

    def progress(self, value: float, lines: list[str] | None = None) -> None:
        r = self.http.post(f"/api/tasks/{self.task['id']}/progress", json={
            "attempt": self.task["attempt"], "progress": value, "log": lines or []})
        assert r.status_code == 200, r.text

    def done(self, outputs: list[dict[str, Any]] | None = None) -> None:
        r = self.http.post(f"/api/tasks/{self.task['id']}/done", json={
            "attempt": self.task["attempt"], "outputs": outputs or []})
        assert r.status_code == 200, r.text


def submit(base: str, token: str, name: str, frames: str = "1-40", chunk: int = 10,
           **extra: Any) -> int:
    r = api(base, token).post("/api/jobs", json={
        "name": name, **extra, "blocks": [{"name": "render", "type": "command",
                                           "params": {"argv": ["true"]}, "frames": frames,
                                           "chunk": chunk}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def drain_queue(base: str, token: str) -> None:
    """Cancel every open job so the next test's node takes that test's own task."""
    c = api(base, token)
    for j in c.get("/api/jobs", params={"limit": 1000}).json():
        if j["status"] not in ("done", "failed", "canceled"):
            c.post(f"/api/jobs/{j['id']}/cancel")


# -- fixtures: one server per module (a server start costs ~2 s of the test budget) --------

@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    root = tmp_path_factory.mktemp("webstudio") / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    seed_repo(root)
    srv = start_server(root, root.parent / "server.log")
    srv.viewer_token = srv.add_user("vera", "viewer")  # type: ignore[attr-defined]
    srv.artist_token = srv.add_user("arty", "artist")  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.process.terminate()
        srv.process.wait(10)


# -- login, session, CSRF ----------------------------------------------------------------

def test_login_form_then_token_login_and_logout(web: Any, browser: Any) -> None:
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(web.url + "/")
    assert page.locator("form#login-form input#token").count() == 1
    shot(page, "login", full_page=False)
    page.fill("#token", "vst_not_a_real_token")
    page.click("#login-form button[type=submit]")
    assert "invalid token" in page.locator(".error").inner_text()
    page.fill("#token", web.admin_token)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(web.url + "/farm**")
    cookie = next(c for c in ctx.cookies() if c["name"] == "vstudio_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] in ("Lax", "Strict")
    # The page's own API calls ride on the same cookie.
    assert page.evaluate("fetch('/api/me').then(r => r.json())")["role"] == "admin"
    page.click("header button:has-text('Log out')")
    page.wait_for_url(web.url + "/")
    assert page.locator("#token").count() == 1
    assert not [c for c in ctx.cookies() if c["name"] == "vstudio_session"]
    ctx.close()


def test_password_login_mints_a_token_that_logout_revokes(web: Any) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(web.studio)
    try:
        accounts.add_user(s.engine, "paula", "artist", password="correct horse")
    finally:
        s.close()
    with httpx.Client(base_url=web.url) as c:
        page = c.get("/")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        bad = c.post("/login", data={"csrf": csrf, "name": "paula", "password": "wrong"})
        assert bad.status_code == 401 and "wrong user name or password" in bad.text
        ok = c.post("/login", data={"csrf": csrf, "name": "paula", "password": "correct horse",
                                    "next": "https://evil.example/"})
        assert ok.status_code == 303
        assert ok.headers["location"] == "/"  # never redirected off-site
        token = c.cookies["vstudio_session"]
        assert c.get("/whoami").status_code == 200
        session_csrf = c.get("/whoami").text.split('data-csrf="')[1].split('"')[0]
        assert c.post("/logout", data={"csrf": session_csrf}).status_code == 303
    # The minted token is gone from the catalog (the API cache forgets it within 5 s).
    s = Studio.open(web.studio)
    try:
        with pytest.raises(Exception, match="invalid token"):
            accounts.token_user(s.engine, accounts.token_digest(token))
    finally:
        s.close()


def test_login_without_csrf_cookie_is_refused(web: Any) -> None:
    r = httpx.post(web.url + "/login", data={"token": web.admin_token, "csrf": "x"})
    assert r.status_code == 403
    assert "vstudio_session" not in r.cookies


def test_request_without_csrf_token_is_refused(web: Any) -> None:
    cookies = {"vstudio_session": web.admin_token}
    with httpx.Client(base_url=web.url, cookies=cookies) as c:
        assert c.post("/logout").status_code == 403
        assert c.post("/logout", data={"csrf": "0" * 40}).status_code == 403
        assert c.post("/logout", headers={"X-CSRF-Token": "nope"}).status_code == 403
        page = c.get("/whoami")
        assert page.status_code == 200  # the refused posts did not log us out


def test_anonymous_pages_redirect_to_login_and_worker_tokens_cannot_log_in(web: Any) -> None:
    r = httpx.get(web.url + "/repo/film?rev=1")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/?next=%2Frepo%2Ffilm")
    worker = web.add_user("node1", "worker")
    with httpx.Client(base_url=web.url) as c:
        csrf = c.get("/").text.split('name="csrf" value="')[1].split('"')[0]
        r = c.post("/login", data={"csrf": csrf, "token": worker})
        assert r.status_code == 403 and "render node" in r.text


# -- repository --------------------------------------------------------------------------

def test_browse_older_revision_and_download_a_file(web: Any, browser: Any) -> None:
    page = login(browser, web.url, web.artist_token)
    page.click("nav >> text=Repository")
    page.click("a:has-text('film')")
    assert "at r2" in page.locator("h1").inner_text()
    shot(page, "repo-tree")
    page.select_option("#rev-pick", "1")  # submits by itself (no reload button needed)
    page.wait_for_url("**rev=1**")
    assert "at r1 (head is r2)" in page.locator("h1").inner_text()
    row = page.locator("#tree tr", has_text="notes.txt")
    with page.expect_download() as dl:
        row.locator("a:has-text('Download')").click()
    path = dl.value.path()
    assert Path(path).read_bytes() == b"version one\n"
    assert dl.value.suggested_filename == "notes.txt"
    # The thumbnail of the PNG is the image itself, served inline.
    page.click("a:has-text('tex/')")
    img = page.locator("#tree img.thumb")
    assert img.evaluate("i => i.complete && i.naturalWidth") == 2
    assert "locked: alice" in page.locator("#tree").inner_text()
    # A hostile file name is shown as text, never run.
    page.goto(web.url + "/repo/film?rev=1&path=shots/s01")
    assert page.locator("#tree").inner_text().count("<img src=x onerror=window.__xss=1>.blend") == 1
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.context.close()


def test_file_history_lists_authors_and_downloads_each_version(web: Any, browser: Any) -> None:
    page = login(browser, web.url, web.viewer_token)
    page.goto(web.url + "/repo/film/log?path=notes.txt")
    rows = page.locator("#log tbody tr")
    assert rows.count() == 2
    assert "bob" in rows.nth(0).inner_text() and "alice" in rows.nth(1).inner_text()
    assert "first <b>import</b>" in rows.nth(1).inner_text()  # escaped, shown literally
    shot(page, "repo-history")
    with page.expect_download() as dl:
        rows.nth(0).locator("a:has-text('Download r2')").click()
    assert Path(dl.value.path()).read_bytes() == b"version two, longer\n"
    page.context.close()


def test_repository_bad_input_gives_html_errors_not_tracebacks(web: Any) -> None:
    with httpx.Client(base_url=web.url, cookies={"vstudio_session": web.admin_token}) as c:
        for url, status in [("/repo/nope", 404), ("/repo/film?rev=99", 404),
                            ("/repo/film?rev=%3Cb%3E", 404), ("/repo/film?path=../../etc", 400),
                            ("/repo/film?path=no/such/dir", 404),
                            ("/repo/film/raw?rev=1&path=missing.txt", 404),
                            ("/repo/film?page=zzz", 200), ("/repo/film/log?page=-5", 200)]:
            r = c.get(url)
            assert r.status_code == status, url
            assert r.headers["content-type"].startswith("text/html")
            assert "<b>" not in r.text.split("<main")[1]  # the tag came back escaped


# -- farm ----------------------------------------------------------------------------------

def test_progress_bar_advances_without_reload_and_log_tails_live(web: Any, browser: Any) -> None:
    drain_queue(web.url, web.admin_token)
    job = submit(web.url, web.admin_token, "live shot", frames="1-40", chunk=10)
    node = FakeNode(web.url, web.admin_token, "node-live")
    task = node.take()
    assert task["job_id"] == job
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs/{job}")
    page.wait_for_function("document.getElementById('live').classList.contains('on')")
    page.evaluate("window.__noReload = 1")
    bar = page.locator("#job-head progress[data-progress]")
    assert bar.evaluate("p => p.value") == 0
    node.progress(50, ["Fra:1 Mem:9M | Sample 1/4", "Fra:2 Mem:9M | Sample 2/4"])
    page.wait_for_function(
        "document.querySelector('#job-head progress').value >= 12.4", timeout=5000)
    node.progress(100)
    node.done()
    page.wait_for_function(
        "document.querySelector('#job-head progress').value >= 24.9", timeout=5000)
    assert page.locator("#job-head [data-frames]").inner_text() == "10/40"
    assert page.locator(f"#t{task['id']}").get_attribute("class") == "d"
    # The next task starts: open its log from the task grid and watch it grow.
    t2 = node.take()
    page.wait_for_function(f"document.getElementById('t{t2['id']}').className === 'r'",
                           timeout=5000)
    page.click(f"#t{t2['id']}")
    pane = page.locator("#log-pane")
    assert pane.is_visible()
    node.progress(10, ["first line of task two"])
    page.wait_for_function(
        "document.querySelector('#log-pane pre').textContent.includes('first line')",
        timeout=5000)
    node.progress(20, ["second line"])
    page.wait_for_function(
        "document.querySelector('#log-pane pre').textContent.includes('second line')",
        timeout=5000)
    assert page.evaluate("window.__noReload") == 1  # all of it without a reload
    shot(page, "job")
    page.goto(f"{web.url}/jobs")
    row = page.locator(f"tr[data-job='{job}']")
    assert row.locator("progress").count() == 1
    node.progress(80)
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{job}'] progress\").value >= 44.9",
        timeout=5000)
    shot(page, "jobs")
    node.done()
    page.context.close()


def test_task_log_page_and_xss_in_job_name_and_log_line(web: Any, browser: Any) -> None:
    drain_queue(web.url, web.admin_token)
    evil = "<script>window.__xss=1</script><img src=x onerror=window.__xss=2>"
    job = submit(web.url, web.admin_token, evil + " shot", frames="1-2", chunk=1)
    node = FakeNode(web.url, web.admin_token, "node-xss")
    task = node.take()
    node.progress(50, [evil, "plain line"])
    page = login(browser, web.url, web.admin_token)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for url in ("/jobs", f"/jobs/{job}", f"/jobs/{job}/tasks/{task['id']}", "/farm",
                "/workers"):
        page.goto(web.url + url)
        assert page.evaluate("typeof window.__xss") == "undefined", url
    page.goto(f"{web.url}/jobs/{job}/tasks/{task['id']}")
    log_text = page.locator("#log-pane pre").inner_text()
    assert evil in log_text and "plain line" in log_text  # shown literally, not run
    assert "──── attempt 1 ────" in log_text
    assert evil in page.locator("nav.crumbs, ol.crumbs").first.inner_text()
    shot(page, "task-log")
    page.goto(f"{web.url}/jobs/{job}")
    assert evil + " shot" in page.locator("#job-title").inner_text()
    page.locator(f"a[data-task-log='{task['id']}']").click()
    page.wait_for_function(
        "document.querySelector('#log-pane pre').textContent.includes('plain line')")
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert not dialogs
    node.done()
    page.context.close()


def test_pause_and_resume_a_job_from_its_page(web: Any, browser: Any) -> None:
    drain_queue(web.url, web.admin_token)
    job = submit(web.url, web.artist_token, "pausable", frames="1-30", chunk=10)
    page = login(browser, web.url, web.artist_token)  # the owner, not an admin
    page.goto(f"{web.url}/jobs/{job}")
    status = page.locator("#job-head [data-status]")
    assert status.inner_text() == "queued"
    page.click("#job-head button[data-action='pause']")
    page.wait_for_function(
        "document.querySelector('#job-head [data-status]').textContent === 'paused'")
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").json()["status"] == "paused"
    assert page.locator("#job-head button[data-action='pause']").is_disabled()
    page.click("#job-head button[data-action='resume']")
    page.wait_for_function(
        "document.querySelector('#job-head [data-status]').textContent === 'queued'")
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").json()["status"] == "queued"
    # Priority, from the list this time.
    page.goto(f"{web.url}/jobs?filter=mine")
    row = page.locator(f"tr[data-job='{job}']")
    row.locator("details.more summary").click()  # the row's rarer actions are in "More"
    row.locator("input[name=priority]").fill("90")
    row.locator("button[data-action='priority']").click()
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{job}'] td:nth-child(10)\").textContent === '90'")
    # Delete asks first, then the row goes away without a reload.
    page.once("dialog", lambda d: d.accept())
    # The row may be redrawn (and its menu reopened by the page) right after the priority
    # change: open the menu until Delete shows, whatever state a redraw left it in.
    delete = page.locator(f"tr[data-job='{job}'] button[data-action='delete']")
    for _ in range(10):
        if delete.is_visible():
            break
        page.click(f"tr[data-job='{job}'] details.more summary")
        try:
            delete.wait_for(state="visible", timeout=1000)
        except PlaywrightTimeout:
            continue
    delete.click()
    page.wait_for_function(f"!document.querySelector(\"tr[data-job='{job}']\")")
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").status_code == 404
    page.context.close()


def test_viewer_sees_but_cannot_act(web: Any, browser: Any) -> None:
    # a job of a project the viewer reads (a job without a project is its owner's alone)
    job = submit(web.url, web.admin_token, "not yours", frames="1-10", chunk=10,
                 project="film")
    page = login(browser, web.url, web.viewer_token)
    page.goto(f"{web.url}/jobs/{job}")
    assert page.locator("#job-head progress").count() == 1
    assert page.locator("button[data-action]").count() == 0
    csrf = page.evaluate("document.body.dataset.csrf")
    # Even with a valid CSRF token the server refuses: the check is not in the page only.
    r = page.request.post(f"{web.url}/jobs/{job}/action",
                          form={"csrf": csrf, "action": "cancel"})
    assert r.status == 403
    assert "viewer" in r.text()
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").json()["status"] == "queued"
    # An artist cannot act on an admin's job either.
    other = login(browser, web.url, web.artist_token)
    other.goto(f"{web.url}/jobs/{job}")
    assert other.locator("button[data-action]").count() == 0
    csrf = other.evaluate("document.body.dataset.csrf")
    r = other.request.post(f"{web.url}/jobs/{job}/action", form={"csrf": csrf, "action": "pause"})
    assert r.status == 403
    api(web.url, web.admin_token).post(f"/api/jobs/{job}/cancel")
    page.context.close()
    other.context.close()


def test_job_actions_refuse_missing_csrf_and_bad_input(web: Any) -> None:
    job = submit(web.url, web.admin_token, "target", frames="1-10", chunk=10)
    with httpx.Client(base_url=web.url, cookies={"vstudio_session": web.admin_token}) as c:
        r = c.post(f"/jobs/{job}/action", data={"action": "cancel"})
        assert r.status_code == 403 and "CSRF" in r.text
        csrf = c.get("/whoami").text.split('data-csrf="')[1].split('"')[0]
        for data, status in [({"action": "explode"}, 400), ({"action": "priority"}, 400),
                             ({"action": "priority", "priority": "101"}, 400),
                             ({"action": "priority", "priority": "<b>"}, 400)]:
            r = c.post(f"/jobs/{job}/action", data={"csrf": csrf, **data})
            assert r.status_code == status, data
            assert r.headers["content-type"].startswith("text/html")
        assert c.post("/jobs/99999999/action",
                      data={"csrf": csrf, "action": "pause"}).status_code == 404
        live = c.get(f"/jobs/live?ids={job},99999")
        assert live.status_code == 200 and list(live.json()) == [str(job)]
        for url, status in [(f"/jobs/{job}/live?tasks=1;2", 400), ("/jobs/0", 404),
                            ("/jobs/live?ids=", 400), ("/jobs/live?ids=1,x", 400),
                            ("/jobs/live?ids=" + ",".join(["1"] * 101), 400),
                            ("/jobs/99999999999999999999", 404), (f"/jobs/{job}/tasks/1x", 400),
                            (f"/jobs/{job}/outputs/{'a' * 64}", 404), ("/jobs?page=-1", 200),
                            ("/jobs?sort=%3Cx%3E&filter=zzz", 200)]:
            assert c.get(url).status_code == status, url
        assert c.post(f"/jobs/{job}/action",
                      data={"csrf": csrf, "action": "cancel"}).status_code == 303
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").json()["status"] == "canceled"


def _store_put(studio: Path, files: list[Path]) -> list[str]:
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        return [s.store.put_file(f) for f in files]
    finally:
        s.close()


def test_failed_task_blocklist_and_retry_from_the_job_page(web: Any, browser: Any) -> None:
    drain_queue(web.url, web.admin_token)
    r = api(web.url, web.admin_token).post("/api/jobs", json={
        "name": "fragile", "blocklist_after": 1, "blocks": [
            {"name": "render", "type": "command", "params": {"argv": ["false"]},
             "frames": "1-2", "chunk": 2, "retries": 0}]})
    job = r.json()["id"]
    node = FakeNode(web.url, web.admin_token, "node-flaky")
    task = node.take()
    fail = node.http.post(f"/api/tasks/{task['id']}/fail",
                          json={"attempt": task["attempt"], "error": "exit 1: <oops>"})
    assert fail.status_code == 200, fail.text
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs/{job}")
    assert page.locator("#job-head [data-status]").inner_text() == "failed"
    assert "node-flaky: 1 failure " in page.locator("#bl-h + ul").inner_text()
    page.click("button:has-text('Let them take this job again')")
    page.wait_for_load_state()
    assert page.locator("#bl-h").count() == 0
    page.click(f"#tr{task['id']} button:has-text('Retry')")
    page.wait_for_load_state()
    assert page.locator(f"#tr{task['id']} [data-tstatus]").inner_text() == "queued"
    assert api(web.url, web.admin_token).get(f"/api/jobs/{job}").json()["status"] == "queued"
    api(web.url, web.admin_token).post(f"/api/jobs/{job}/cancel")
    page.context.close()


def test_frames_thumbnails_chart_and_playable_video(web: Any, browser: Any,
                                                    tmp_path: Path) -> None:
    import subprocess

    ffmpeg = need("ffmpeg", "apt-get install ffmpeg")
    frames = []
    for i in range(1, 4):
        f = tmp_path / f"frame_{i:04d}.png"
        subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i",
                        f"color=c=0x{40 * i:02x}6090:s=64x36", "-frames:v", "1", str(f)],
                       check=True)
        frames.append(f)
    video = tmp_path / "video.mp4"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=s=64x36:r=12:d=1",
                    "-pix_fmt", "yuv420p", "-c:v", "libx264", "-movflags", "+faststart",
                    str(video)], check=True)
    oids = _store_put(web.studio, [*frames, video])
    drain_queue(web.url, web.admin_token)
    r = api(web.url, web.admin_token).post("/api/jobs", json={
        "name": "with media", "project": "film", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]}, "frames": "1-3",
         "chunk": 3},
        {"name": "encode", "type": "command", "params": {"argv": ["true"]}, "frames": "1",
         "depends_on": [{"block": "render"}]}]})
    job = r.json()["id"]
    node = FakeNode(web.url, web.admin_token, "node-media")
    node.take()
    node.done([{"frame": i + 1, "oid": oids[i], "name": f"frame_{i + 1:04d}.png",
                "seconds": [0.5, 2.0, 1.0][i], "thumbnail_oid": oids[i]} for i in range(3)])
    node.take()
    node.done([{"frame": None, "oid": oids[3], "name": "video.mp4"}])
    page = login(browser, web.url, web.viewer_token)
    page.goto(f"{web.url}/jobs/{job}")
    assert page.locator("#job-head [data-status]").inner_text() == "done"
    assert page.locator("#job-head [data-frames]").inner_text() == "4/4"
    # The chart names the slowest frame.
    assert "frame 2 2.0 s" in page.locator("svg.chart desc").text_content()
    thumbs = page.locator(".thumbs img")
    assert thumbs.count() == 3
    page.wait_for_function("[...document.querySelectorAll('.thumbs img')]"
                           ".every(i => i.complete && i.naturalWidth === 64)")
    thumbs.nth(1).click()
    dialog = page.locator("dialog#preview")
    assert dialog.is_visible()
    assert dialog.locator("img").evaluate("i => i.src").endswith(oids[1])
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    vid = page.locator("video")
    vid.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=10000)
    assert abs(vid.evaluate("v => v.duration") - 1.0) < 0.2
    assert vid.evaluate("v => v.videoWidth") == 64
    shot(page, "job-media")
    # Seeking works because the server answers byte ranges.
    r2 = page.request.get(f"{web.url}/jobs/{job}/outputs/{oids[3]}",
                          headers={"Range": "bytes=0-99"})
    assert r2.status == 206 and len(r2.body()) == 100
    assert r2.headers["content-type"] == "video/mp4"
    page.context.close()


def test_phone_width_pages_fit_and_keyboard_reaches_actions(web: Any, browser: Any) -> None:
    job = submit(web.url, web.admin_token, "phone", frames="1-10", chunk=5)
    page = login(browser, web.url, web.admin_token, viewport={"width": 390, "height": 844})
    for name, url in (("farm-phone", "/farm"), ("jobs-phone", "/jobs"),
                      ("job-phone", f"/jobs/{job}"), ("repo-phone", "/repo/film")):
        page.goto(web.url + url)
        # Nothing but the scrollable tables is wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
        if url == "/jobs":  # the list itself fits: name, status, progress and frames
            wrap = page.locator(".table-wrap:has(#jobs)")
            assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth"), url
            row = page.locator(f"tr[data-job='{job}']")
            for cell in ("td.name a", "[data-status]", "progress", "[data-frames]"):
                assert row.locator(cell).is_visible(), cell
        shot(page, name)
    page.goto(f"{web.url}/jobs/{job}")
    # Keyboard: Tab from the top reaches the skip link first, then the job's buttons.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.action") == "pause":
            break
    else:
        raise AssertionError("the Pause button is not reachable by keyboard")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('#job-head [data-status]').textContent === 'paused'")
    page.context.close()


def test_worker_goes_offline_live(tmp_path: Path, browser: Any) -> None:
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    with open(root / "studio.toml", "a", encoding="utf-8") as f:
        f.write("\n[farm]\nlease_seconds = 1.5\n")
    srv = start_server(root, tmp_path / "server.log")
    try:
        submit(srv.url, srv.admin_token, "lost node", frames="1-4", chunk=2)
        node = FakeNode(srv.url, srv.admin_token, "node-lost")
        page = login(browser, srv.url, srv.admin_token)
        page.goto(srv.url + "/workers")
        state = page.locator("#workers-body tr[data-worker] [data-wstate]")
        assert state.inner_text() in ("idle", "offline")
        node.take()
        node.progress(10)
        page.wait_for_function(
            "document.querySelector('#workers-body [data-wstate]').textContent === 'rendering'",
            timeout=5000)
        assert "task" in page.locator("#workers-body tr[data-worker] td").nth(2).inner_text()
        shot(page, "workers")
        page.click("#workers-body button:has-text('Drain')")
        page.wait_for_function(
            "document.querySelector('#workers-body [data-wstate]').textContent === 'draining'",
            timeout=5000)
        # The node dies: no more progress or heartbeats. Its lease runs out, the task goes
        # back to the queue and the page shows the node offline without a reload.
        page.evaluate("window.__noReload = 1")
        page.wait_for_function(
            "document.querySelector('#workers-body [data-wstate]').textContent === 'offline'",
            timeout=15000)
        assert page.evaluate("window.__noReload") == 1
        page.goto(srv.url + "/farm")
        assert "1\noffline" in page.locator("#farm-stats").inner_text()
        shot(page, "farm")
        page.context.close()
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def test_farm_overview_charts_busy_idle_history_and_tasks_per_hour(web: Any) -> None:
    import re

    from vstudio.catalog import web_queries as wq
    from vstudio.studio import Studio

    now = int(time.time())
    s = Studio.open(web.studio)
    try:
        with s.engine.begin() as conn:
            for i, (busy, idle) in enumerate([(0, 2), (2, 0), (1, 1)]):
                wq.add_sample(conn, now - 3600 * (3 - i), busy, idle, 0, 5 - i, busy)
    finally:
        s.close()
    with httpx.Client(base_url=web.url, cookies={"vstudio_session": web.viewer_token}) as c:
        page = c.get("/farm").text
        stats = c.get("/farm/stats")
    busy = re.search(r'<polyline class="busy" points="([^"]+)"', page)
    assert busy is not None and len(busy.group(1).split()) >= 3
    assert "tasks finished per hour" in page.lower()
    assert stats.status_code == 200 and "workers rendering" in stats.text


# WCAG 2 contrast of every element that holds text, against the first opaque background
# found up its ancestors (what a person sees; no alpha blending on our pages).
CONTRAST_JS = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255;
      return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
      return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = el => { for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c; }
    return [255, 255, 255]; };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const st = getComputedStyle(el);
    if (!own || st.visibility === 'hidden' || st.display === 'none') continue;
    if (!el.getClientRects().length) continue;
    if (el.closest('.sr-only, option, [hidden]')) continue;
    const a = lum(rgb(st.color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize);
    const big = size >= 24 || (size >= 18.66 && +st.fontWeight >= 700);
    const need = el.matches('button:disabled, button:disabled *') ? 0 : big ? 3 : 4.5;
    const what = el.tagName + '.' + el.className + ' "' + el.textContent.trim().slice(0, 30);
    if (ratio < need) bad.push(what + '" ' + ratio.toFixed(2));
  }
  return bad;
}"""


def test_text_contrast_meets_wcag_aa_on_the_main_pages(web: Any, browser: Any) -> None:
    job = submit(web.url, web.admin_token, "contrast", frames="1-10", chunk=5)
    page = login(browser, web.url, web.admin_token)
    for url in ("/farm", "/jobs", f"/jobs/{job}", "/workers", "/repo/film", "/repo/film/log"):
        page.goto(web.url + url)
        assert page.evaluate(CONTRAST_JS) == [], url
        if url == "/farm":
            shot(page, "farm-overview")
    page.context.close()
    anon = browser.new_page()
    anon.goto(web.url + "/")
    assert anon.evaluate(CONTRAST_JS) == []
    anon.close()


def test_pages_on_a_postgresql_studio(tmp_path: Path, pg_url: str) -> None:
    """The same pages over a studio whose catalog is PostgreSQL (the at-scale set-up)."""
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=pg_url).close()
    seed_repo(root)
    srv = start_server(root, tmp_path / "server.log")
    try:
        job = submit(srv.url, srv.admin_token, "<b>pg</b> shot", frames="1-30", chunk=10,
                     project="film")
        node = FakeNode(srv.url, srv.admin_token, "node-pg")
        task = node.take()
        node.progress(50, ["on postgres"])
        with httpx.Client(base_url=srv.url, cookies={"vstudio_session": srv.admin_token}) as c:
            for url, text in [("/farm", "1</b> workers rendering"),
                              ("/jobs", "&lt;b&gt;pg&lt;/b&gt; shot"),
                              (f"/jobs/{job}", f'id="t{task["id"]}" class="r"'),
                              (f"/jobs/{job}/live?tasks={task['id']}", '"frames_total":30'),
                              (f"/jobs/{job}/tasks/{task['id']}", "on postgres"),
                              ("/workers", "node-pg"), ("/repo/film?rev=1", "notes.txt"),
                              ("/repo/film", f'<tr data-job="{job}">'),
                              ("/repo/film/log?path=notes.txt", "bob")]:
                r = c.get(url)
                assert r.status_code == 200, url
                assert text in r.text, url
    finally:
        srv.process.terminate()
        srv.process.wait(10)


def test_page_catches_up_after_the_manager_restarts(tmp_path: Path, browser: Any) -> None:
    """The event stream reconnects by itself and the page refreshes what it missed."""
    import subprocess
    import sys

    from tests.conftest import start_server
    from tests.helpers import wait_for
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    srv = start_server(root, tmp_path / "server.log")
    port = srv.url.rsplit(":", 1)[1]
    proc = srv.process
    try:
        job = submit(srv.url, srv.admin_token, "restart", frames="1-20", chunk=10)
        page = login(browser, srv.url, srv.admin_token)
        page.goto(f"{srv.url}/jobs/{job}")
        page.wait_for_function("document.getElementById('live').classList.contains('on')")
        page.evaluate("window.__noReload = 1")
        proc.kill()  # the manager dies (and the page's open stream with it)
        proc.wait(15)
        page.wait_for_function("!document.getElementById('live').classList.contains('on')")
        # While the manager is down nothing can reach the page; it then comes back and a
        # node reports progress on the restarted manager.
        log = open(tmp_path / "server2.log", "ab")  # noqa: SIM115 - the child's output
        proc = subprocess.Popen([sys.executable, "-m", "vstudio", "serve", "--studio",
                                 str(root), "--port", port], stdout=log, stderr=log)
        wait_for(lambda: httpx.get(srv.url + "/openapi.json", timeout=2).status_code == 200,
                 30, "the manager to restart")
        node = FakeNode(srv.url, srv.admin_token, "node-after-restart")
        node.take()
        node.progress(50)
        page.wait_for_function(
            "document.querySelector('#job-head progress').value >= 24.9", timeout=15000)
        assert page.evaluate("window.__noReload") == 1
        page.context.close()
    finally:
        proc.terminate()
        proc.wait(10)


def test_jobs_list_filters_sorts_and_pages(web: Any) -> None:
    import re

    drain_queue(web.url, web.admin_token)
    mine = [submit(web.url, web.artist_token, f"zz-list-{i:02d}", frames="1-2", chunk=2)
            for i in range(3)]
    for i in range(52):
        submit(web.url, web.admin_token, f"aa-bulk-{i:02d}", frames="1", chunk=1,
               project="film")
    # the artist reads the film's jobs (not the admin's project-less ones)
    failed = submit(web.url, web.admin_token, "fails", frames="1", chunk=1, priority=100,
                    project="film")
    node = FakeNode(web.url, web.admin_token, "node-list")
    task = node.take()
    assert task["job_id"] == failed
    node.http.post(f"/api/tasks/{task['id']}/fail", json={"attempt": task["attempt"],
                                                          "error": "boom"})
    for _ in range(3):  # retries (2 by default) then failed
        t = node.take()
        if t["job_id"] != failed:
            break
        node.http.post(f"/api/tasks/{t['id']}/fail", json={"attempt": t["attempt"],
                                                           "error": "boom"})

    def ids(html: str) -> list[int]:
        return [int(x) for x in re.findall(r'<tr data-job="(\d+)"', html)]

    with httpx.Client(base_url=web.url, cookies={"vstudio_session": web.artist_token}) as c:
        assert ids(c.get("/jobs?filter=mine").text) == sorted(mine, reverse=True)
        assert ids(c.get("/jobs?filter=mine&sort=oldest").text) == sorted(mine)
        assert ids(c.get("/jobs?filter=failed").text) == [failed]
        first = c.get("/jobs").text
        assert len(ids(first)) == 50 and "Page 1 of" in first
        second = ids(c.get("/jobs?page=2").text)
        assert second and not set(second) & set(ids(first))
        by_name = c.get("/jobs?sort=name").text
        assert ids(by_name)[0] != ids(first)[0]
        assert "aa-bulk-00" in by_name.split("<tbody")[1][:3000]
        top = ids(c.get("/jobs?sort=priority").text)[0]
        assert top == failed
        # An artist sees the admin's jobs but gets no buttons for them.
        row = re.search(rf'<tr data-job="{failed}".*?</tr>', first + c.get("/jobs?page=2").text,
                        re.S)
        assert row is not None and "data-action" not in row.group(0)
    drain_queue(web.url, web.admin_token)


def test_hidden_tab_lets_go_of_its_stream_and_catches_up(web: Any, browser: Any) -> None:
    drain_queue(web.url, web.admin_token)
    job = submit(web.url, web.admin_token, "background tab", frames="1-20", chunk=10)
    node = FakeNode(web.url, web.admin_token, "node-hidden")
    node.take()
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs/{job}")
    page.wait_for_function("document.getElementById('live').classList.contains('on')")
    flip = ("h => { Object.defineProperty(document, 'hidden', {value: h, configurable: true});"
            " document.dispatchEvent(new Event('visibilitychange')); }")
    page.evaluate(flip, True)
    assert not page.evaluate("document.getElementById('live').classList.contains('on')")
    node.progress(60)
    page.wait_for_timeout(600)  # nothing arrives while hidden: the stream is closed
    assert page.evaluate("document.querySelector('#job-head progress').value") == 0
    page.evaluate(flip, False)
    page.wait_for_function(
        "document.querySelector('#job-head progress').value >= 29.9", timeout=5000)
    page.wait_for_function("document.getElementById('live').classList.contains('on')")
    node.done()
    page.context.close()


# -- keyboard focus after a row action on the jobs list ----------------------------------

def _job_field(base: str, token: str, job: int, field: str) -> Any:
    return api(base, token).get(f"/api/jobs/{job}", params={"tasks": False}).json()[field]


def _active_in_row(job: int, what: str) -> str:
    """JS true when the focus is on `what` (a selector) in job's row, and it is shown."""
    return (f"(() => {{ const a = document.activeElement;"
            f" const want = document.querySelector(\"tr[data-job='{job}'] {what}\");"
            f" return !!a && a === want && a.offsetParent !== null"
            f" && !a.closest('details:not([open])'); }})()")


def test_enter_in_a_rows_priority_field_sets_it_and_keeps_the_focus_there(
        web: Any, browser: Any) -> None:
    """A wrangler types a priority in a row's "More" menu and presses Enter: the priority
    is set (not the row's first action, Pause, done instead), and the focus is back in
    that field of the redrawn row, its menu open, ready for the next number."""
    job = submit(web.url, web.admin_token, "enter sets priority", frames="1-4", chunk=2)
    before = _job_field(web.url, web.admin_token, job, "priority")
    new = 73 if before != 73 else 74
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs")
    page.evaluate("window.__noReload = 1")
    # Keys only: the row's "More", open it, Tab past Delete into the priority field.
    page.focus(f"tr[data-job='{job}'] details.more summary")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == f"prio-row-{job}"
    page.keyboard.press("Control+a")
    page.keyboard.type(str(new))
    page.keyboard.press("Enter")
    wait_for_set = time.monotonic() + 5
    while time.monotonic() < wait_for_set:
        if _job_field(web.url, web.admin_token, job, "priority") == new:
            break
        time.sleep(0.05)
    status = _job_field(web.url, web.admin_token, job, "status")
    assert _job_field(web.url, web.admin_token, job, "priority") == new, (
        f"Enter in the priority field did not set it (the job is {status})")
    assert status == "queued", f"Enter in the priority field also did something else: {status}"
    page.wait_for_function(  # the row was redrawn with the new priority ...
        f"document.querySelector(\"tr[data-job='{job}'] td:nth-child(10)\").textContent "
        f"=== '{new}'")
    # ... and the focus is in its priority field, shown, holding the new number.
    page.wait_for_function(_active_in_row(job, f"#prio-row-{job}"), timeout=3000)
    assert page.input_value(f"#prio-row-{job}") == str(new)
    assert page.evaluate("window.__noReload") == 1  # in place, not a new page
    # The next number goes straight in.
    page.keyboard.press("Control+a")
    page.keyboard.type("12")
    page.keyboard.press("Enter")
    wait_for_set = time.monotonic() + 5
    while (time.monotonic() < wait_for_set
           and _job_field(web.url, web.admin_token, job, "priority") != 12):
        time.sleep(0.05)
    assert _job_field(web.url, web.admin_token, job, "priority") == 12
    page.wait_for_function(_active_in_row(job, f"#prio-row-{job}"), timeout=3000)
    # The job's own page has the same field: Enter sets it there too, focus kept.
    page.goto(f"{web.url}/jobs/{job}")
    page.fill(f"#prio-page-{job}", "44")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('#job-head .facts').textContent.includes('Priority44')")
    assert _job_field(web.url, web.admin_token, job, "priority") == 44
    assert _job_field(web.url, web.admin_token, job, "status") == "queued"
    page.wait_for_function(f"document.activeElement.id === 'prio-page-{job}'", timeout=3000)
    api(web.url, web.admin_token).post(f"/api/jobs/{job}/cancel")
    page.context.close()


def test_set_priority_by_click_leaves_the_focus_on_that_rows_set_button(
        web: Any, browser: Any) -> None:
    """Set by click, then Enter on Set: the focus stays on that row's Set button, its menu
    open; Delete from the same menu hands the focus to the next row's "More"."""
    job = submit(web.url, web.admin_token, "click sets priority", frames="1-4", chunk=2)
    other = submit(web.url, web.admin_token, "the row beside it", frames="1-4", chunk=2)
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs")
    row = page.locator(f"tr[data-job='{job}']")
    row.locator("details.more summary").click()
    row.locator("input[name=priority]").fill("31")
    row.locator("button[data-action='priority']").click()
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{job}'] td:nth-child(10)\").textContent "
        "=== '31'")
    assert _job_field(web.url, web.admin_token, job, "priority") == 31
    page.wait_for_function(_active_in_row(job, "button[data-action='priority']"),
                           timeout=3000)
    # Enter on the focused Set button sets the number typed next to it, again.
    page.fill(f"#prio-row-{job}", "32")
    page.focus(f"tr[data-job='{job}'] button[data-action='priority']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{job}'] td:nth-child(10)\").textContent "
        "=== '32'")
    page.wait_for_function(_active_in_row(job, "button[data-action='priority']"),
                           timeout=3000)
    # Delete (back past the field), asked first: the row goes, and the focus goes to the
    # "More" of the row that took its place, not to the top of the page.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "delete"
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("Enter")
    page.wait_for_function(f"!document.querySelector(\"tr[data-job='{job}']\")")
    page.wait_for_function(
        "(() => { const a = document.activeElement, tr = a && a.closest('tr[data-job]');"
        " return !!tr && a.tagName === 'SUMMARY'; })()", timeout=3000)
    api(web.url, web.admin_token).post(f"/api/jobs/{other}/cancel")
    page.context.close()


def test_pause_resume_and_cancel_by_keyboard_keep_the_focus_on_the_row(
        web: Any, browser: Any) -> None:
    """After Pause the focus is on the row's Resume (Pause is disabled now), after Resume
    on Pause; after Cancel (asked first) on a control of that row that still acts."""
    job = submit(web.url, web.admin_token, "keyboard pause", frames="1-4", chunk=2)
    submit(web.url, web.admin_token, "a row above it", frames="1-4", chunk=2)
    page = login(browser, web.url, web.admin_token)
    page.goto(f"{web.url}/jobs")
    status = f"document.querySelector(\"tr[data-job='{job}'] [data-status]\").textContent"
    page.focus(f"tr[data-job='{job}'] button[data-action='pause']")
    page.keyboard.press("Enter")
    page.wait_for_function(f"{status} === 'paused'")
    page.wait_for_function(_active_in_row(job, "button[data-action='resume']"), timeout=3000)
    page.keyboard.press("Enter")  # Resume, where the focus now is
    page.wait_for_function(f"{status} === 'queued'")
    page.wait_for_function(_active_in_row(job, "button[data-action='pause']"), timeout=3000)
    assert _job_field(web.url, web.admin_token, job, "status") == "queued"
    # Cancel asks first; declined, nothing happens and the focus stays on Cancel.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "cancel"
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert asked and _job_field(web.url, web.admin_token, job, "status") == "queued"
    assert page.evaluate("document.activeElement.dataset.action") == "cancel"
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("Enter")
    page.wait_for_function(f"{status} === 'canceled'")
    # Cancel is disabled now: the focus is on the next control of the row that acts.
    page.wait_for_function(
        f"(() => {{ const a = document.activeElement;"
        f" return !!a && !!a.closest(\"tr[data-job='{job}'] td.acts\") && !a.disabled"
        f" && a.offsetParent !== null; }})()", timeout=3000)
    page.context.close()
