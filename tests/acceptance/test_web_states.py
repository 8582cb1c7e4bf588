"""The page tells the truth about jobs that cannot move, and about a manager that is away.

A real `vstudio serve`, render nodes simulated over the HTTP API, headless Chromium.
Each test here failed on the page before job states were defined in one place
(``farm.condition``): delete without asking, "running" while pausing, stalled jobs
shown as running, queued jobs without a reason, and no word when the manager is down.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_web_browser import FakeNode, api, browser, login, shot, submit
from tests.helpers import cli_json, wait_for

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared
pytestmark = pytest.mark.timeout(180)  # a stuck browser fails fast, not after 10 min


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Any]:
    from tests.conftest import start_server
    from vstudio.studio import init_studio

    root = tmp_path / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    s = start_server(root, tmp_path / "server.log")
    s.artist_token = s.add_user("arty", "artist")  # type: ignore[attr-defined]
    s.viewer_token = s.add_user("vera", "viewer")  # type: ignore[attr-defined]
    try:
        yield s
    finally:
        s.process.terminate()
        s.process.wait(10)


def _job(base: str, token: str, **spec: Any) -> int:
    r = api(base, token).post("/api/jobs", json=spec)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _cmd_block(**kw: Any) -> dict[str, Any]:
    return {"name": "render", "type": "command", "params": {"argv": ["true"]},
            "frames": "1-4", "chunk": 2, **kw}


def _state(base: str, token: str, job: int) -> tuple[str, str]:
    j = api(base, token).get(f"/api/jobs/{job}", params={"tasks": False}).json()
    return j["status"], j["reason"]


def test_queued_waiting_and_stalled_jobs_say_why_in_api_cli_and_page(srv: Any,
                                                                      browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    # Nobody to render at all.
    lonely = _job(url, tok, name="lonely", blocks=[_cmd_block()])
    assert _state(url, tok, lonely) == ("queued",
                                        "no render node has registered with this manager")
    # A node that renders only for one job: it fails there and is kept off the job.
    fragile = _job(url, tok, name="fragile", blocklist_after=1,
                   blocks=[_cmd_block(retries=3, frames="1-2", chunk=1)])
    api(url, tok).post(f"/api/jobs/{lonely}/pause")
    node = FakeNode(url, tok, "node-a")
    task = node.take()
    assert task["job_id"] == fragile
    r = node.http.post(f"/api/tasks/{task['id']}/fail",
                       json={"attempt": task["attempt"], "error": "exit 1"})
    assert r.status_code == 200, r.text
    status, reason = _state(url, tok, fragile)
    assert status == "stalled" and "node-a" in reason, reason
    # A tag no node has, a job waiting on another, raw commands with no node allowing them.
    gpu = _job(url, tok, name="needs gpu", blocks=[_cmd_block(tags=["gpu"])])
    after = _job(url, tok, name="after gpu", after=[gpu], blocks=[_cmd_block()])
    assert _state(url, tok, gpu) == ("queued", "no online render node has the tag gpu")
    assert _state(url, tok, after) == ("waiting", f"waiting for job {gpu} to finish")
    # The CLI filters on the same statuses and prints the same reason.
    env = {"VSTUDIO_SERVER": url, "VSTUDIO_TOKEN": tok}
    rows = cli_json("jobs", "ls", "--status", "stalled", "--json", env=env)
    assert [(j["id"], j["status"]) for j in rows] == [(fragile, "stalled")]
    rows = cli_json("jobs", "ls", "--status", "waiting", "--json", env=env)
    assert [j["id"] for j in rows] == [after]
    shown = cli_json("jobs", "show", str(gpu), "--json", env=env)
    assert shown["reason"] == "no online render node has the tag gpu"
    # The page: reasons in the list, the Stalled filter, the job page's own line.
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs")
    assert "no online render node has the tag gpu" in \
        page.locator(f"tr[data-job='{gpu}'] [data-reason]").inner_text()
    assert page.locator(f"tr[data-job='{after}'] [data-status]").inner_text() == "waiting"
    shot(page, "jobs-reasons")
    page.goto(f"{url}/jobs?filter=stalled")
    assert page.locator("#jobs-body tr[data-job]").count() == 1
    assert page.locator(f"tr[data-job='{fragile}'] [data-status]").inner_text() == "stalled"
    page.goto(f"{url}/jobs/{fragile}")
    assert "kept off this job" in page.locator("#job-head [data-reason]").inner_text()
    # "Retry failed" has nothing to retry here; clearing the blocklist unsticks the job.
    assert page.locator("#job-head button[data-action='retry']").is_disabled()
    page.context.close()


def test_pause_shows_pausing_at_once_then_paused_live(srv: Any, browser: Any) -> None:
    url = srv.url
    job = submit(url, srv.artist_token, "long one", frames="1-30", chunk=10)
    node = FakeNode(url, srv.admin_token, "node-p")
    node.take()
    node.progress(20)
    page = login(browser, url, srv.artist_token)
    page.goto(f"{url}/jobs?filter=mine")
    row = f"tr[data-job='{job}']"
    assert page.locator(f"{row} [data-status]").inner_text() == "running"
    page.click(f"{row} button[data-action='pause']")
    # The answer to the click already says pausing: no minutes of "running".
    page.wait_for_function(
        f"document.querySelector(\"{row} [data-status]\").textContent === 'pausing'",
        timeout=5000)
    assert page.locator(f"{row} button[data-action='pause']").is_disabled()
    assert page.locator(f"{row} button[data-action='resume']").is_enabled()
    assert "still running" in page.locator(f"{row} [data-reason]").inner_text()
    assert _state(url, srv.admin_token, job)[0] == "pausing"
    node.done()
    page.wait_for_function(
        f"document.querySelector(\"{row} [data-status]\").textContent === 'paused'",
        timeout=10000)
    page.context.close()


def test_delete_and_cancel_ask_first_and_a_no_sends_nothing(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    job = submit(url, tok, "keep me", frames="1-4", chunk=2)
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs/{job}")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    asked: list[str] = []
    answer = {"yes": False}

    def answer_dialog(d: Any) -> None:
        asked.append(d.message)
        d.accept() if answer["yes"] else d.dismiss()

    page.on("dialog", answer_dialog)
    page.click("#job-head button[data-action='delete']")
    page.click("#job-head button[data-action='cancel']")
    # give a request that should not exist the time to leave
    page.wait_for_timeout(500)
    assert asked == [f"Delete job {job} and its outputs?",
                     f"Cancel job {job}? Running tasks are stopped."]
    assert sent == []
    assert api(url, tok).get(f"/api/jobs/{job}").status_code == 200
    # A yes goes through (the delete's yes is covered from the list in test_web_browser;
    # here the page stays, so the browser context closes cleanly).
    answer["yes"] = True
    page.click("#job-head button[data-action='cancel']")
    wait_for(lambda: _state(url, tok, job)[0] == "canceled", 10, "the job to be canceled")
    page.goto("about:blank")
    page.context.close()


def test_manager_down_shows_a_banner_and_failed_actions_say_so(srv: Any,
                                                               browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    job = submit(url, tok, "watched", frames="1-4", chunk=2)
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs/{job}")
    page.wait_for_function("document.getElementById('live').classList.contains('on')",
                           timeout=10000)
    assert page.locator("#offline").is_hidden()
    assert page.inner_text("#live [data-live-text]") == "live"  # in words, not only green
    srv.process.terminate()
    srv.process.wait(10)
    page.wait_for_selector("#offline", state="visible", timeout=15000)
    assert page.inner_text("#live [data-live-text]") == "reconnecting…"
    assert "not answering" in page.locator("#offline").inner_text()
    page.click("#job-head button[data-action='pause']")
    page.wait_for_selector("#flash", state="visible", timeout=10000)
    assert "did not answer" in page.locator("#flash").inner_text()
    shot(page, "manager-down")
    page.context.close()


def test_job_page_shows_its_settings_and_filters_tasks(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    first = _job(url, tok, name="first", blocks=[_cmd_block()])
    job = _job(url, tok, name="shot", after=[first], priority=70, blocks=[
        {"name": "render", "type": "command", "params": {"argv": ["true", "{start}"]},
         "frames": "1-40", "chunk": 10, "retries": 0, "timeout": 3600},
        {"name": "encode", "type": "command", "params": {"argv": ["true"]}, "frames": "1",
         "depends_on": [{"block": "render"}]}])
    node = FakeNode(url, tok, "node-f")
    for _ in range(2):  # the first job's two tasks, then the shot may start
        assert node.take()["job_id"] == first
        node.done()
    task = node.take()
    assert task["job_id"] == job
    node.http.post(f"/api/tasks/{task['id']}/fail", json={"attempt": task["attempt"],
                                                          "error": "exit 1"})
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs/{job}")
    # the encode waits for the render's frames: the legend counts it as waiting
    assert page.locator("[data-count='waiting']").inner_text() == "1"
    page.click("#settings summary")
    settings = page.locator("#settings").inner_text()
    assert "Submitted by" in settings and f"job {first}" in settings
    row = page.locator("#settings tbody tr").first.inner_text()
    assert "render" in row and "argv=" in row and "\t10\t" in row and "1h 00m" in row, row
    assert "\t1-40\t" in row, row  # the block's frames
    assert "render (whole)" in page.locator("#settings tbody tr").nth(1).inner_text()
    # Only the failed task, then only node-f's tasks, then the task that renders frame 25.
    page.select_option("#tstatus", "failed")
    page.click("form[aria-label='Filter tasks'] button")
    page.wait_for_load_state()
    assert page.locator("#tasks tbody tr").count() == 1
    assert page.locator(f"#tr{task['id']} [data-tstatus]").inner_text() == "failed"
    page.goto(f"{url}/jobs/{job}?frame=25#tasks")
    hit = page.locator("#tasks tbody tr.hit")
    assert hit.count() == 1 and "21-30" in hit.inner_text()
    page.goto(f"{url}/jobs/{job}?tworker=node-f")
    assert page.locator("#tasks tbody tr").count() == 1
    page.goto(f"{url}/jobs/{job}?tstatus=<script>&frame=abc&tworker=%00")
    assert page.locator("#tasks tbody tr").count() == 0  # junk filters show nothing, no error
    page.context.close()


def test_jobs_list_search_filters_and_bulk_actions(srv: Any, browser: Any) -> None:
    import re

    import httpx

    url, art = srv.url, srv.artist_token
    a1 = submit(url, art, "alpha one", frames="1-2", chunk=1)
    a2 = submit(url, art, "alpha two", frames="1-2", chunk=1)
    beta = submit(url, art, "beta", frames="1-2", chunk=1)
    # another person's job arty sees: of a project open to every artist (a job without a
    # project would be the admin's alone)
    assert api(url, srv.admin_token).post("/api/projects", json={"name": "show"}).is_success
    theirs = submit(url, srv.admin_token, "alpha of the admin", frames="1-2", chunk=1,
                    project="show")

    def ids(html: str) -> list[int]:
        return [int(x) for x in re.findall(r'<tr data-job="(\d+)"', html)]

    with httpx.Client(base_url=url, cookies={"vstudio_session": art}) as c:
        assert ids(c.get("/jobs?q=ALPHA").text) == [theirs, a2, a1]
        assert ids(c.get("/jobs", params={"q": "alpha", "owner": "arty"}).text) == [a2, a1]
        assert ids(c.get("/jobs?type=command&sort=name").text) == [theirs, a1, a2, beta]
        assert ids(c.get("/jobs?type=blender").text) == []
        assert ids(c.get("/jobs?q=%3Cscript%3E&owner=%00&type=nope").text) == []
        # a job that is not yours is refused, the others are done, all in one request
        page = c.get("/jobs").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = c.post("/jobs/bulk", data={"csrf": csrf, "action": "pause",
                                       "ids": [str(beta), str(theirs)], "back": "/jobs?q=b"})
        assert r.status_code == 303 and r.headers["location"] == "/jobs?q=b&bulk=pause.1.1"
        assert "pause: 1 job done, 1 refused" in c.get(r.headers["location"]).text
        r = c.post("/jobs/bulk", data={"csrf": csrf, "action": "explode", "ids": [str(a1)]})
        assert r.status_code == 400
        r = c.post("/jobs/bulk", data={"csrf": csrf, "action": "pause", "ids": [str(a1)],
                                       "back": "//evil.example/"})
        assert r.headers["location"].startswith("/jobs?bulk=")
    assert _state(url, art, beta)[0] == "paused"
    assert _state(url, art, theirs)[0] == "queued"
    assert _state(url, art, a1)[0] == "paused"
    api(url, art).post(f"/api/jobs/{a1}/resume")
    # In the browser: select two, one question naming how many, both deleted.
    page = login(browser, url, art)
    page.goto(f"{url}/jobs?q=alpha&owner=arty")
    page.check(f"tr[data-job='{a1}'] input[name=ids]")
    page.check(f"tr[data-job='{a2}'] input[name=ids]")
    page.select_option("#bulk-action", "delete")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.click("#bulk button[type=submit]")
    page.wait_for_selector("#bulk-result")
    assert asked == ["Apply this to the 2 selected jobs?"]
    assert "delete: 2 jobs done" in page.locator("#bulk-result").inner_text()
    assert api(url, art).get(f"/api/jobs/{a1}").status_code == 404
    assert api(url, art).get(f"/api/jobs/{a2}").status_code == 404
    # Keyboard: an action on a row keeps the focus in that row.
    page.goto(f"{url}/jobs?filter=mine")
    page.focus(f"tr[data-job='{beta}'] button[data-action='resume']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{beta}'] [data-status]\").textContent "
        "=== 'queued'")
    page.wait_for_function(
        f"document.activeElement && document.activeElement.closest(\"tr[data-job='{beta}']\")")
    page.context.close()


def test_every_status_filter_of_the_jobs_list_has_its_link(srv: Any) -> None:
    import re

    import httpx

    from vstudio.web.jobs_list import FILTERS

    url, tok = srv.url, srv.admin_token
    gone = submit(url, tok, "gone", frames="1-2", chunk=1)
    kept = submit(url, tok, "kept", frames="1-2", chunk=1)
    api(url, tok).post(f"/api/jobs/{gone}/cancel")
    with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:
        page = c.get("/jobs").text
        nav = page[page.index('aria-label="Filter jobs by status"'):]
        nav = nav[:nav.index("</nav>")]
        # A canceled job (to delete it, say) was listed only by typing ?filter=canceled.
        linked = set(re.findall(r'href="/jobs(?:\?filter=(\w+))?"', nav))
        assert linked == {"" if f == "all" else f for f in FILTERS}
        rows = re.findall(r'<tr data-job="(\d+)"', c.get("/jobs?filter=canceled").text)
        assert rows == [str(gone)] and str(kept) not in rows


def test_farm_overview_shows_work_by_project_and_owner_and_time_to_empty(srv: Any) -> None:
    import re

    import httpx

    url = srv.url
    submit(url, srv.artist_token, "overview", frames="1-6", chunk=1)
    node = FakeNode(url, srv.admin_token, "node-o")
    with httpx.Client(base_url=url, cookies={"vstudio_session": srv.admin_token}) as c:
        node.take()
        page = c.get("/farm").text
        row = re.search(r'<table id="by-owner".*?</table>', page, re.S)
        assert row is not None
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
        assert [re.sub("<[^>]+>", "", x) for x in cells[1:4]] == ["arty", "1", "5"], cells
        assert "not known yet" in page  # nothing finished: no pace to go by
        node.done()
        node.take()
        page = c.get("/farm").text
        assert re.search(r"Time to empty the queue at the recent pace: about <b>[^<]+</b> "
                         r"\(1 slot\)", page), page[:3000]


def test_pages_of_a_job_in_a_project_the_person_may_not_read_are_refused(srv: Any) -> None:
    import httpx

    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(srv.studio)
    try:
        accounts.create_project(s.engine, "secret")
        accounts.add_user(s.engine, "keeper", "artist")
        accounts.set_right(s.engine, "secret", "keeper", "read", True)  # rights now set
    finally:
        s.close()
    url, tok = srv.url, srv.admin_token
    job = _job(url, tok, name="secret shot", project="secret", blocks=[_cmd_block()])
    node = FakeNode(url, tok, "node-s")
    task = node.take()
    node.progress(10, ["secret log line"])
    with httpx.Client(base_url=url, cookies={"vstudio_session": srv.artist_token}) as c:
        for path in (f"/jobs/{job}", f"/jobs/{job}/live", f"/jobs/{job}/media",
                     f"/jobs/{job}/tasks/{task['id']}",
                     f"/jobs/{job}/tasks/{task['id']}/log", f"/jobs/{job}/outputs/{'0' * 64}"):
            r = c.get(path)
            assert r.status_code == 403, (path, r.status_code)
            assert "secret log line" not in r.text and "secret shot" not in r.text
        for path in ("/jobs", "/jobs?q=secret", f"/jobs/live?ids={job}", "/farm"):
            r = c.get(path)
            assert r.status_code == 200 and "secret shot" not in r.text, path
            assert f'data-job="{job}"' not in r.text and ">secret<" not in r.text, path
    with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:  # an admin sees it
        assert "secret shot" in c.get("/jobs").text and c.get(f"/jobs/{job}").status_code == 200


def test_pages_of_another_users_private_job_are_refused(srv: Any) -> None:
    """Issue 12: a job without a project is its owner's (and admins') alone: to another
    artist and a viewer its pages are refused, and the list, the overview and the workers
    page show neither its name nor its owner."""
    import httpx

    url = srv.url
    other = srv.add_user("olga", "artist")
    job = _job(url, srv.artist_token, name="arty's own shot", blocks=[_cmd_block()])
    node = FakeNode(url, srv.admin_token, "node-p")
    task = node.take()
    node.progress(10, ["private log line"])
    for tok in (other, srv.viewer_token):
        with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:
            for path in (f"/jobs/{job}", f"/jobs/{job}/live", f"/jobs/{job}/media",
                         f"/jobs/{job}/tasks/{task['id']}",
                         f"/jobs/{job}/tasks/{task['id']}/log",
                         f"/jobs/{job}/outputs/{'0' * 64}"):
                r = c.get(path)
                assert r.status_code == 403, (path, r.status_code)
                assert "private log line" not in r.text and "own shot" not in r.text
            for path in ("/jobs", "/jobs?q=shot", f"/jobs/live?ids={job}", "/farm",
                         "/workers", "/workers/rows", "/jobs/rows"):
                r = c.get(path)
                assert r.status_code == 200 and "own shot" not in r.text, path
                assert f'data-job="{job}"' not in r.text and "arty" not in r.text, path
            assert "a job you may not see" in c.get("/workers").text  # busy, not with what
    for tok in (srv.artist_token, srv.admin_token):  # its owner and an admin see it
        with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:
            assert "own shot" in c.get("/jobs").text and "own shot" in c.get("/workers").text
            assert c.get(f"/jobs/{job}/tasks/{task['id']}/log").status_code == 200


def test_typed_text_ticked_boxes_and_focus_survive_the_live_refresh(srv: Any,
                                                                    browser: Any) -> None:
    """The workers list and the jobs list are redrawn as things change (and the workers
    list every 5 s): what someone is typing or has ticked there stays, and so does focus."""
    url, tok = srv.url, srv.admin_token
    node = FakeNode(url, tok, "node-a")
    first, second = (submit(url, tok, f"shot {i}", frames="1-2", chunk=2) for i in (1, 2))
    page = login(browser, url, tok)
    page.goto(f"{url}/workers")
    row = f"tr[data-worker='{node.id}']"

    def refreshed(new_row: str) -> None:
        page.evaluate("document.querySelector('#workers-body table').dataset.old = '1'")
        page.wait_for_selector(new_row, timeout=4000)  # the list was redrawn ...
        assert page.locator("#workers-body table[data-old]").count() == 0  # ... as a whole

    def focused() -> str:
        return str(page.evaluate("document.activeElement.getAttribute('aria-label')"))

    # Typed, then on to the Save button without pressing it; a node registers meanwhile.
    page.fill(f"{row} input[name=tags]", "gpu, half typed")
    page.keyboard.press("Tab")
    FakeNode(url, tok, "node-b")
    refreshed("#workers tr:has-text('node-b')")
    assert page.input_value(f"{row} input[name=tags]") == "gpu, half typed"
    assert focused() == "Save the tags of node-a"
    # Typing in the hours field: the caret stays in it, where it was.
    page.fill(f"{row} input[name=schedule]", "mon-fri 19:0")
    page.keyboard.press("ArrowLeft")
    FakeNode(url, tok, "node-c")
    refreshed("#workers tr:has-text('node-c')")
    assert page.input_value(f"{row} input[name=schedule]") == "mon-fri 19:0"
    assert focused() == "Hours when node-a may render"
    assert page.evaluate("document.activeElement.selectionStart") == len("mon-fri 19:")
    page.keyboard.type("3")
    assert page.input_value(f"{row} input[name=schedule]") == "mon-fri 19:30"
    # The redrawn rows' forms still post in place (htmx), not as a new page.
    page.evaluate("window.__noReload = 1")
    page.fill(f"{row} input[name=schedule]", "")
    page.click(f"{row} [data-wtags] button")
    page.wait_for_selector(f"{row} [data-wtags]:has-text('set by an admin')")
    assert page.evaluate("window.__noReload") == 1
    assert page.input_value(f"{row} input[name=tags]") == "gpu, half, typed"  # as saved
    # The jobs list: a search being typed, a ticked box and a priority being typed.
    page.goto(f"{url}/jobs")
    page.fill("#q", "sho")
    page.check(f"tr[data-job='{first}'] input[name=ids]")
    page.click(f"tr[data-job='{second}'] details.more summary")
    page.fill(f"#prio-row-{second}", "77")
    new = submit(url, tok, "shot new")  # a job appears: the list is redrawn
    page.wait_for_selector(f"tr[data-job='{new}']", timeout=4000)
    assert page.input_value("#q") == "sho"
    assert page.is_checked(f"tr[data-job='{first}'] input[name=ids]")
    assert page.input_value(f"#prio-row-{second}") == "77"
    assert page.evaluate("document.activeElement.id") == f"prio-row-{second}"
    page.context.close()


def test_log_pane_opened_by_keyboard_scrolls_by_keyboard(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    job = submit(url, tok, "chatty", frames="1", chunk=1)
    node = FakeNode(url, tok, "node-log")
    task = node.take()
    node.progress(5, [f"Fra:1 Sample {i}/400" for i in range(400)])
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs/{job}")
    page.focus(f"a[data-task-log='{task['id']}']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "document.querySelector('#log-pane pre').textContent.includes('Sample 399/400')")
    top = "document.querySelector('#log-pane pre').scrollTop"
    page.evaluate(f"{top} = 0")
    page.keyboard.press("PageDown")
    page.wait_for_function(f"{top} > 0", timeout=2000)  # the log scrolls, not the page
    page.keyboard.press("End")
    page.wait_for_function("(p => p.scrollTop + p.clientHeight >= p.scrollHeight - 2)"
                           "(document.querySelector('#log-pane pre'))", timeout=2000)
    page.context.close()


def test_jobs_list_sorts_by_progress_frames_elapsed_and_eta(srv: Any) -> None:
    import re

    import httpx

    url, tok = srv.url, srv.admin_token
    small = submit(url, tok, "small", frames="1-2", chunk=1)
    big = submit(url, tok, "big", frames="1-8", chunk=1)
    node = FakeNode(url, tok, "node-sort")
    for _ in range(2):  # the small one finishes
        assert node.take()["job_id"] == small
        node.done()
    assert node.take()["job_id"] == big  # one of big's 8 frames is half done
    node.progress(50)
    idle = submit(url, tok, "idle", frames="1-4", chunk=1)  # nothing started

    def ids(query: str) -> list[int]:
        with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:
            text = c.get(f"/jobs?{query}").text
        return [int(x) for x in re.findall(r'<tr data-job="(\d+)"', text)]

    assert ids("sort=progress") == [small, big, idle]  # most done first
    assert ids("sort=frames") == [big, idle, small]  # most frames first
    assert ids("sort=elapsed")[-1] == idle  # never started: last
    assert ids("sort=eta") == [big, idle, small]  # longest to go first; none known: after
    with httpx.Client(base_url=url, cookies={"vstudio_session": tok}) as c:
        head = c.get("/jobs?sort=progress").text
    # Every column a list shows sorts from its header.
    for key in ("progress", "frames", "elapsed", "eta"):
        assert f'href="/jobs?sort={key}"' in head, key


def test_page_counts_frames_queue_and_clock_as_they_are(srv: Any, browser: Any) -> None:
    """48 frames and their encode read 48, a paused job's tasks are not "queued", and a
    paused job's clock stands still: in the browser, as a wrangler reads them."""
    import re
    import time

    url, tok = srv.url, srv.admin_token
    resting = submit(url, tok, "paused one", frames="1-16", chunk=1)
    node = FakeNode(url, tok, "node-c")
    assert node.take()["job_id"] == resting
    node.done()
    api(url, tok).post(f"/api/jobs/{resting}/pause")
    shot_id = _job(url, tok, name="shot", blocks=[
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": "1-48", "chunk": 12},
        {"name": "encode", "type": "ffmpeg", "params": {"block": "render"}, "frames": "1-48",
         "chunk": 48, "depends_on": [{"block": "render", "mode": "frame"}]}])
    assert node.take()["job_id"] == shot_id
    node.done()
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs")
    assert page.inner_text(f"tr[data-job='{shot_id}'] [data-frames]") == "12/48"
    page.goto(f"{url}/farm")
    queued = re.search(r"(\d+)\s+tasks queued", page.inner_text("#farm-stats"))
    assert queued is not None and int(queued.group(1)) == 3 + 1, queued  # not + 15 paused
    page.goto(f"{url}/jobs/{resting}")
    before = page.inner_text("#job-head [data-elapsed]")
    time.sleep(1.2)
    page.reload()
    assert page.inner_text("#job-head [data-elapsed]") == before  # the clock stopped
    page.context.close()


def test_jobs_list_row_actions_fit_one_line_on_desktop(srv: Any, browser: Any) -> None:
    """At 1280 px every row's actions stay on one line (the rarer ones in a "More" menu),
    and the menu opens and its buttons are reached by keyboard."""
    url, tok = srv.url, srv.admin_token
    # The widest row: running, with a failed task (pause, cancel and retry allowed).
    running = _job(url, tok, name="running shot with a failed frame and a long name",
                   blocks=[_cmd_block(retries=0, frames="1-4", chunk=1)])
    paused = submit(url, tok, "paused shot", frames="1-4", chunk=1)
    node = FakeNode(url, tok, "node-row")
    task = node.take()
    assert task["job_id"] == running
    r = node.http.post(f"/api/tasks/{task['id']}/fail",
                       json={"attempt": task["attempt"], "error": "exit 1"})
    assert r.status_code == 200, r.text
    assert node.take()["job_id"] == running
    node.progress(40)
    api(url, tok).post(f"/api/jobs/{paused}/pause")
    submit(url, tok, "queued shot", frames="1-4", chunk=1)
    page = browser.new_context(viewport={"width": 1280, "height": 860})
    page.add_cookies([{"name": "vstudio_session", "value": tok, "url": url}])
    page = page.new_page()
    page.goto(f"{url}/jobs")
    lines = page.evaluate("""() => [...document.querySelectorAll('#jobs tr[data-job]')].map(tr => {
        const shown = [...tr.querySelectorAll('td.acts button, td.acts summary')]
            .filter(b => b.offsetParent !== null && !b.closest('details:not([open]) .menu'));
        const rs = shown.map(b => b.getBoundingClientRect());
        // one line: every control shares a band of height with every other
        const oneLine = Math.max(...rs.map(r => r.top)) < Math.min(...rs.map(r => r.bottom));
        return [tr.dataset.job, shown.length, oneLine];
    })""")
    assert len(lines) == 3, lines
    for job, shown, one_line in lines:
        assert shown >= 3 and one_line, (job, shown, one_line)
    # By keyboard: focus the running job's "More", open it, tab to Delete.
    page.focus(f"tr[data-job='{running}'] details.more summary")
    page.keyboard.press("Enter")
    assert page.locator(f"tr[data-job='{running}'] details.more[open]").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "delete"
    page.context.close()
