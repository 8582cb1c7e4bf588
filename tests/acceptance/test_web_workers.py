"""Who may take a job's tasks: the workers page shows what each node is (version, OS,
CPU, memory) and which jobs it is kept off, with a way to let it take one again; the job
page edits the tags a node needs.

A real `vstudio serve`, render nodes simulated over the HTTP API, headless Chromium.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.acceptance.test_web_browser import FakeNode, api, browser, login, shot, submit
from tests.acceptance.test_web_states import srv
from tests.helpers import cli, cli_json
from vstudio import __version__
from vstudio.worker.sysinfo import system_info

__all__ = ["browser", "srv"]  # fixtures shared with the other page tests
pytestmark = pytest.mark.timeout(180)  # a stuck browser fails fast, not after 10 min


def _failing_job(base: str, token: str, name: str, **extra: Any) -> int:
    r = api(base, token).post("/api/jobs", json={
        "name": name, "blocklist_after": 1, **extra, "blocks": [
            {"name": "render", "type": "command", "params": {"argv": ["false"]},
             "frames": "1-2", "chunk": 1, "retries": 3}]})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _fail_one(node: FakeNode, job: int) -> None:
    task = node.take()
    assert task["job_id"] == job
    r = node.http.post(f"/api/tasks/{task['id']}/fail",
                       json={"attempt": task["attempt"], "error": "exit 1"})
    assert r.status_code == 200, r.text


def _close(page: Any) -> None:
    page.goto("about:blank")  # a context closed on a live page once hung for minutes
    page.context.close()


def test_workers_page_shows_what_each_node_reported(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    system = system_info()
    r = api(url, tok).post("/api/workers", json={"name": "node-new", "system": system})
    assert r.status_code == 200, r.text
    # A node of an older version says nothing about itself: the page says so.
    assert api(url, tok).post("/api/workers", json={"name": "node-old"}).status_code == 200
    # Nonsense is refused with a message, not stored.
    bad = api(url, tok).post("/api/workers", json={"name": "node-bad",
                                                   "system": {"cores": -1}})
    assert bad.status_code == 422 and "cores" in bad.text
    listed = {w["name"]: w for w in api(url, tok).get("/api/workers").json()}
    assert listed["node-new"]["system"] == system and listed["node-old"]["system"] == {}
    assert "node-bad" not in listed
    page = login(browser, url, srv.viewer_token)
    page.goto(f"{url}/workers")
    new = page.locator("#workers tr:has-text('node-new') [data-system]").inner_text()
    assert f"vstudio {__version__}" in new and f"× {system['cores']}" in new
    assert "GiB RAM" in new and system["cpu"] in new
    old = page.locator("#workers tr:has-text('node-old') [data-system]").inner_text()
    assert old == "not reported"
    _close(page)


def test_blocklist_entry_removed_from_the_workers_page_by_the_job_owner(
        srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    mine = _failing_job(url, srv.artist_token, "arty's shot")
    node = FakeNode(url, tok, "node-flaky")
    _fail_one(node, mine)
    # a job arty sees but may not change: the admin's, of a project every artist reads
    # (one without a project would be the admin's alone, not on arty's page at all)
    assert api(url, tok).post("/api/projects", json={"name": "show"}).is_success
    theirs = _failing_job(url, tok, "admin's shot", project="show")
    _fail_one(node, theirs)
    page = login(browser, url, srv.artist_token)
    page.goto(f"{url}/workers")
    row = page.locator(f"tr[data-worker='{node.id}']")
    assert row.locator("[data-kept]").count() == 2
    assert "(1 failure)" in row.locator(f"[data-kept='{mine}']").inner_text()
    # The artist may let the node back onto their own job only.
    assert row.locator(f"[data-kept='{theirs}'] button").count() == 0
    shot(page, "workers-kept-off")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
    row.locator(f"[data-kept='{mine}'] button").click()
    page.wait_for_function(f"!document.querySelector(\"[data-kept='{mine}']\")")
    assert "node-flaky" in asked[0] and "arty's shot" in asked[0]
    assert page.locator(f"tr[data-worker='{node.id}'] [data-kept='{theirs}']").count() == 1
    assert api(url, tok).get(f"/api/jobs/{mine}").json()["blocklist"] == []
    assert len(api(url, tok).get(f"/api/jobs/{theirs}").json()["blocklist"]) == 1
    # The server checks too: a forged form for the admin's job is refused.
    csrf = page.evaluate("document.body.dataset.csrf")
    r = page.request.post(f"{url}/jobs/{theirs}/unblock",
                          form={"csrf": csrf, "worker": str(node.id), "ctx": "workers"})
    assert r.status == 403
    for form, status in (({"worker": "x"}, 400), ({"worker": "0"}, 400), ({}, 400)):
        r = page.request.post(f"{url}/jobs/{mine}/unblock", form={"csrf": csrf, **form})
        assert r.status == status, (form, r.status)
    assert len(api(url, tok).get(f"/api/jobs/{theirs}").json()["blocklist"]) == 1
    # The API removes one entry the same way.
    r = api(url, tok).delete(f"/api/jobs/{theirs}/blocklist/{node.id}")
    assert r.status_code == 200 and r.json()["id"] == theirs
    assert api(url, tok).get(f"/api/jobs/{theirs}").json()["blocklist"] == []
    _close(page)


def test_job_tags_edited_from_the_job_page_cli_and_api(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    r = api(url, srv.artist_token).post("/api/jobs", json={"name": "needs gpu", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": "1-2", "chunk": 2, "tags": ["gpu"]}]})
    job = int(r.json()["id"])
    node = FakeNode(url, tok, "node-plain")  # no tags
    assert api(url, tok).get(f"/api/jobs/{job}").json()["reason"] == \
        "no online render node has the tag gpu"
    page = login(browser, url, srv.artist_token)
    page.goto(f"{url}/jobs/{job}")
    page.click("#settings summary")
    cell = "[data-tags='render']"
    assert page.input_value(f"{cell} input[name=tags]") == "gpu"
    page.fill(f"{cell} input[name=tags]", "bad tag!")
    page.click(f"{cell} button")
    assert "bad tag 'tag!'" in page.locator("main").inner_text()
    page.goto(f"{url}/jobs/{job}")
    page.click("#settings summary")
    page.fill(f"{cell} input[name=tags]", "")
    page.click(f"{cell} button")
    page.wait_for_url(f"**/jobs/{job}?settings=open#settings")
    assert page.locator("#settings").get_attribute("open") is not None
    assert page.input_value(f"{cell} input[name=tags]") == ""
    block = api(url, tok).get(f"/api/jobs/{job}").json()["blocks"][0]
    assert block["tags"] == []
    assert node.take()["job_id"] == job  # the plain node qualifies now
    # A viewer sees the tags but no form; the CLI and the API set them too.
    viewer = login(browser, url, srv.viewer_token)
    viewer.goto(f"{url}/jobs/{job}")
    assert viewer.locator(f"{cell} form").count() == 0
    _close(viewer)
    env = {"VSTUDIO_SERVER": url, "VSTUDIO_TOKEN": srv.artist_token}
    shown = cli_json("jobs", "tags", str(job), "linux", "gpu", "--block", "render", env=env)
    assert shown["id"] == job
    assert api(url, tok).get(f"/api/jobs/{job}").json()["blocks"][0]["tags"] == ["gpu", "linux"]
    p = cli("jobs", "tags", str(job), "x", "--block", "nope", env=env, check=False)
    assert p.returncode == 1 and "has no block 'nope': use one of render" in p.stderr
    p = cli("jobs", "tags", str(job), "no way", env=env, check=False)
    assert p.returncode == 1 and "tags" in p.stderr and "Traceback" not in p.stderr
    other = srv.add_user("otto", "artist")
    r = api(url, other).put(f"/api/jobs/{job}/tags", json={"tags": []})
    assert r.status_code == 403
    _close(page)


def _worker(url: str, tok: str, wid: int) -> dict[str, Any]:
    return next(w for w in api(url, tok).get("/api/workers").json() if w["id"] == wid)


def _asks(node: FakeNode) -> int:
    """The status of one ask for work that does not wait (200: a task, 204: none)."""
    r = node.http.post(f"/api/workers/{node.id}/next", json={"timeout": 0})
    if r.status_code == 200:
        node.task = r.json()["task"]
    return r.status_code


def test_worker_tags_edited_by_an_admin_on_the_workers_page_and_cli(
        srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    r = api(url, tok).post("/api/jobs", json={"name": "gpu shot", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": "1", "chunk": 1, "tags": ["gpu"]}]})
    job = int(r.json()["id"])
    node = FakeNode(url, tok, "node-a")  # advertises no tags
    assert _asks(node) == 204
    # An artist sees the tags, with no form to change them.
    artist = login(browser, url, srv.artist_token)
    artist.goto(f"{url}/workers")
    assert artist.locator(f"tr[data-worker='{node.id}'] [data-wtags] form").count() == 0
    csrf = artist.evaluate("document.body.dataset.csrf")
    forged = artist.request.post(f"{url}/workers/{node.id}/tags",
                                 form={"csrf": csrf, "tags": "gpu"})
    assert forged.status == 403
    _close(artist)
    page = login(browser, url, tok)
    page.goto(f"{url}/workers")
    cell = f"tr[data-worker='{node.id}'] [data-wtags]"
    page.fill(f"{cell} input[name=tags]", "bad tag!")
    page.click(f"{cell} button")
    page.wait_for_selector("#flash:not([hidden])")
    assert "bad tag 'tag!'" in page.inner_text("#flash")
    assert _worker(url, tok, node.id)["tags"] == []
    page.fill(f"{cell} input[name=tags]", "gpu, linux")
    page.click(f"{cell} button")
    page.wait_for_selector(f"{cell}:has-text('set by an admin')")
    assert page.input_value(f"{cell} input[name=tags]") == "gpu, linux"
    shot(page, "workers-tags")
    w = _worker(url, tok, node.id)
    assert w["tags"] == ["gpu", "linux"] and w["tags_fixed"] is True
    assert _asks(node) == 200 and node.task["job_id"] == job  # the scheduler honours them
    # The node restarts and says it has no tags: the admin's stay.
    again = FakeNode(url, tok, "node-a")
    assert again.id == node.id and _worker(url, tok, node.id)["tags"] == ["gpu", "linux"]
    _close(page)
    # The command line: by name, back to the node's own, and refusals.
    env = {"VSTUDIO_SERVER": url, "VSTUDIO_TOKEN": tok}
    shown = cli_json("workers", "tags", "node-a", "blender", "gpu", env=env)
    assert shown["tags"] == ["blender", "gpu"] and shown["tags_fixed"] is True
    p = cli("workers", "tags", "node-a", "--node", env=env)
    assert "the node's own from its next registration" in p.stdout
    FakeNode(url, tok, "node-a")
    assert _worker(url, tok, node.id)["tags"] == []
    p = cli("workers", "tags", "node-zz", "gpu", env=env, check=False)
    assert p.returncode == 1 and "no render node 'node-zz'" in p.stderr
    p = cli("workers", "tags", "node-a", "no way", env=env, check=False)
    assert p.returncode == 1 and "tags" in p.stderr and "Traceback" not in p.stderr
    p = cli("workers", "tags", "node-a", "x", env={**env, "VSTUDIO_TOKEN": srv.artist_token},
            check=False)
    assert p.returncode == 1 and "only an admin" in p.stderr
    assert _worker(url, tok, node.id)["tags"] == []


def test_schedule_keeps_a_desktop_node_off_outside_its_hours(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    hour = time.localtime().tm_hour
    later = f"{(hour + 2) % 24:02d}:00-{(hour + 3) % 24:02d}:00"  # not now
    around = f"{(hour - 1) % 24:02d}:00-{(hour + 2) % 24:02d}:00"  # now
    node = FakeNode(url, tok, "desk-1")
    r = api(url, tok).post("/api/jobs", json={"name": "night shot", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": "1", "chunk": 1}]})
    job = int(r.json()["id"])
    page = login(browser, url, tok)
    page.goto(f"{url}/workers")
    row = f"tr[data-worker='{node.id}']"
    page.fill(f"{row} [data-hours] input[name=schedule]", "mon-fri 25:00-08:00")
    page.click(f"{row} [data-hours] button")
    page.wait_for_selector("#flash:not([hidden])")
    assert "no time 25:00" in page.inner_text("#flash")
    page.fill(f"{row} [data-hours] input[name=schedule]", f"Mon-Sun  {later}")
    page.click(f"{row} [data-hours] button")
    page.wait_for_selector(f"{row} [data-wstate]:has-text('off schedule')")
    assert page.input_value(f"{row} [data-hours] input[name=schedule]") == f"mon-sun {later}"
    shot(page, "workers-schedule")
    w = _worker(url, tok, node.id)
    assert w["schedule"] == f"mon-sun {later}" and w["off_schedule"] is True
    assert _asks(node) == 204  # a queued job, but not in these hours
    reason = api(url, tok).get(f"/api/jobs/{job}", params={"tasks": False}).json()["reason"]
    assert reason == ("the render nodes that can take it are off schedule now: "
                      f"desk-1 (mon-sun {later})")
    # The overview does not count a resting node's slot as one that empties the queue.
    page.goto(f"{url}/farm")
    assert "No render node takes work now" in page.inner_text("#queue-eta")
    assert "1 off schedule" in page.inner_text("main")
    page.goto(f"{url}/workers")
    # The command line opens the hours around now: the node takes the job.
    env = {"VSTUDIO_SERVER": url, "VSTUDIO_TOKEN": tok}
    p = cli("workers", "schedule", "desk-1", around, env=env)
    assert f"renders {around}" in p.stdout and "off schedule" not in p.stdout
    assert _asks(node) == 200 and node.task["job_id"] == job
    page.wait_for_function(
        f"!document.querySelector(\"{row} [data-wstate]\").textContent.includes('off')")
    _close(page)
    p = cli("workers", "schedule", "desk-1", "weekends", env=env, check=False)
    assert p.returncode == 1 and "cannot read 'weekends'" in p.stderr
    assert "Traceback" not in p.stderr
    r = api(url, srv.artist_token).put(f"/api/workers/{node.id}/schedule",
                                        json={"schedule": ""})
    assert r.status_code == 403
    assert cli_json("workers", "schedule", "desk-1", env=env)["schedule"] is None


def test_worker_cpu_and_memory_use_shown_live(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    node = FakeNode(url, tok, "node-busy")
    page = login(browser, url, srv.viewer_token)
    page.goto(f"{url}/workers")
    cell = f"tr[data-worker='{node.id}'] [data-usage]"
    assert page.inner_text(cell) == "–"  # nothing said yet

    def beat(**usage: Any) -> int:
        return node.http.post(f"/api/workers/{node.id}/heartbeat",
                              json={"state": "idle", **usage}).status_code

    assert beat(cpu=37.0, mem=61.0) == 200
    page.wait_for_function(f"document.querySelector(\"{cell}\").innerText.includes('37%')")
    assert "RAM 61%" in page.inner_text(cell)
    assert beat(cpu=88.0, mem=70.0) == 200  # no reload: the page follows the heartbeats
    page.wait_for_function(f"document.querySelector(\"{cell}\").innerText.includes('88%')")
    assert "RAM 70%" in page.inner_text(cell)
    assert beat(cpu=150, mem=1) == 422 and beat(cpu="x", mem=1) == 422
    w = _worker(url, tok, node.id)
    assert (w["cpu_use"], w["mem_use"]) == (88.0, 70.0)
    page.reload()
    assert "CPU 88%" in page.inner_text(cell)
    _close(page)
    # What a real node measures and sends: percentages of this machine.
    from vstudio.worker.sysinfo import Usage

    usage = Usage()
    time.sleep(0.3)
    got = usage.now()
    assert got is not None and 0 <= got[0] <= 100 and 0 < got[1] < 100


def _fits(page: Any) -> list[Any]:
    """What is wider than its box on the page: the document, or a table's scroll box."""
    return page.evaluate("""() => {
        const wide = [];
        if (document.documentElement.scrollWidth > innerWidth) wide.push(['page',
            document.documentElement.scrollWidth, innerWidth]);
        for (const w of document.querySelectorAll('.table-wrap'))
            if (w.scrollWidth > w.clientWidth) wide.push([w.firstElementChild.id,
                                                          w.scrollWidth, w.clientWidth]);
        return wide; }""")


def test_workers_page_fits_desktop_and_phone_without_sideways_scrolling(
        srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    # A row as full as they get: system, use, tags, hours, a task, a job it is kept off.
    kept = _failing_job(url, tok, "ep01 sh020 fluid bake")
    node = FakeNode(url, tok, "studio-pc-1")
    api(url, tok).post("/api/workers", json={"name": "studio-pc-1", "slots": 1,
                                             "job_types": ["command"], "allow_commands": True,
                                             "system": system_info()})
    _fail_one(node, kept)
    _failing_job(url, tok, "ep01 sh030 hair")
    node.take()
    node.http.post(f"/api/workers/{node.id}/heartbeat",
                   json={"state": "busy", "cpu": 92.0, "mem": 38.0})
    api(url, tok).put(f"/api/workers/{node.id}/tags", json={"tags": ["gpu", "linux"]})
    api(url, tok).put(f"/api/workers/{node.id}/schedule",
                      json={"schedule": "mon-fri 19:00-08:00, sat-sun 00:00-24:00"})
    row = f"tr[data-worker='{node.id}']"
    for size, name in (({"width": 1280, "height": 800}, "desktop"),
                       ({"width": 390, "height": 844}, "phone")):
        page = login(browser, url, tok, viewport=size)
        page.goto(f"{url}/workers")
        assert _fits(page) == [], name
        # Everything a row says is there to read at either size, actions included.
        for cell in ("[data-wstate]", "[data-usage]", "[data-wtags] input[name=tags]",
                     "[data-hours] input[name=schedule]", "[data-system]", f"[data-kept='{kept}']",
                     "button:has-text('Drain')"):
            assert page.locator(f"{row} {cell}").is_visible(), (name, cell)
        assert "CPU 92%" in page.inner_text(f"{row} [data-usage]")
        shot(page, f"workers-fit-{name}")
        if name == "desktop":  # the current task's progress follows its reports live
            node.progress(60.0)
            page.wait_for_function(f"document.querySelector(\"{row} td:nth-child(3)\")"
                                   ".textContent.includes('60%')", timeout=5000)
            # Disable asks first; a no sends nothing
            asked: list[str] = []
            page.once("dialog", lambda d, asked=asked: (asked.append(d.message), d.dismiss()))
            page.click(f"{row} button:has-text('Disable')")
            page.wait_for_timeout(300)
            assert asked == ["Disable render node studio-pc-1? Its running tasks go back "
                             "to the queue."]
            assert _worker(url, tok, node.id)["enabled"] is True
        _close(page)


def _zone_far_from_here() -> tuple[str, str]:
    """A zone about 12 hours from the manager's clock, and an hour range that is now
    there (so it is not now on the manager's clock)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    off = datetime.now().astimezone().utcoffset()
    assert off is not None
    east = (int(off.total_seconds() // 3600) + 12 + 12) % 24 - 12  # hours east of UTC
    zone = f"Etc/GMT{-east:+d}" if east else "UTC"  # POSIX signs: GMT-12 is UTC+12
    there = datetime.now(ZoneInfo(zone)).hour
    return zone, f"{(there - 1) % 24:02d}:00-{(there + 2) % 24:02d}:00"


def test_schedule_hours_on_the_nodes_own_time_zone(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    zone, now_there = _zone_far_from_here()
    node = FakeNode(url, tok, "desk-abroad")
    job = submit(url, tok, "night shot", frames="1", chunk=1)
    put = api(url, tok).put
    # On the manager's clock these hours are 12 hours away: no work for the node.
    w = put(f"/api/workers/{node.id}/schedule", json={"schedule": now_there}).json()
    assert w["off_schedule"] is True and w["schedule_tz"] is None
    assert _asks(node) == 204
    # The same hours on the node's own clock are now.
    env = {"VSTUDIO_SERVER": url, "VSTUDIO_TOKEN": tok}
    p = cli("workers", "schedule", "desk-abroad", now_there, "--tz", zone, env=env)
    assert f"renders {now_there} in {zone}" in p.stdout and "off schedule" not in p.stdout
    assert _asks(node) == 200 and node.task["job_id"] == job
    # Hours changed without a zone keep the node's zone; a bad zone is one line, exit 1.
    w = put(f"/api/workers/{node.id}/schedule", json={"schedule": now_there}).json()
    assert w["schedule_tz"] == zone and w["off_schedule"] is False
    p = cli("workers", "schedule", "desk-abroad", now_there, "--tz", "Mars/Olympus",
            env=env, check=False)
    assert p.returncode == 1 and "unknown time zone 'Mars/Olympus'" in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    r = put(f"/api/workers/{node.id}/schedule",
            json={"schedule": now_there, "tz": "../../etc/passwd"})
    assert r.status_code in (400, 422) and "unknown time zone" in r.text
    assert _worker(url, tok, node.id)["schedule_tz"] == zone
    # The page shows the zone and the node's clock; an admin edits the zone there.
    page = login(browser, url, tok)
    page.goto(f"{url}/workers")
    row = f"tr[data-worker='{node.id}']"
    assert page.input_value(f"{row} input[name=tz]") == zone
    assert page.locator("#zones option[value='Europe/Berlin']").count() == 1
    assert "its clock: " in page.inner_text(f"{row} [data-clock]")
    page.fill(f"{row} input[name=tz]", "Europe/Berlinn")
    page.click(f"{row} [data-hours] button")
    page.wait_for_selector("#flash:not([hidden])")
    assert "unknown time zone 'Europe/Berlinn'" in page.inner_text("#flash")
    page.fill(f"{row} input[name=tz]", "")  # back to the manager's clock: off now
    page.click(f"{row} [data-hours] button")
    page.wait_for_selector(f"{row} [data-off]")  # (its task goes on to the end)
    assert page.locator(f"{row} [data-clock]").count() == 0
    assert _worker(url, tok, node.id)["schedule_tz"] is None
    _close(page)
    put(f"/api/workers/{node.id}/schedule", json={"schedule": now_there, "tz": zone})
    viewer = login(browser, url, srv.viewer_token)
    viewer.goto(f"{url}/workers")
    assert viewer.inner_text(f"{row} [data-tz]") == zone
    _close(viewer)


def test_a_desktop_node_whose_user_is_at_it_says_in_use(srv: Any, browser: Any,
                                                        tmp_path: Any) -> None:
    from vstudio.worker.node import Worker, WorkerOptions

    url, tok = srv.url, srv.admin_token
    # The node's side: an --idle-only node that found its user at the desk says so.
    node = Worker(WorkerOptions(server=url, token=tok, cache_dir=tmp_path))
    node._was_idle = False
    assert node.heartbeat_state() == "idle"  # not --idle-only: never "in use"
    node.idle_monitor = object()  # (this machine has no input devices to watch)
    node._was_idle = None
    assert node.heartbeat_state() == "idle"  # not looked yet
    node._was_idle = False
    assert node.heartbeat_state() == "in use"
    node._was_idle = True
    assert node.heartbeat_state() == "idle"
    # The page's side: such a node is "in use", not idle, and adds no slot to the queue.
    desk = FakeNode(url, tok, "desk-ida")
    r = api(url, tok).post("/api/workers", json={"name": "desk-ida", "idle_only": True,
                                                 "job_types": ["command"],
                                                 "allow_commands": True})
    assert r.status_code == 200
    job = submit(url, tok, "waits for ida", frames="1", chunk=1)
    assert desk.http.post(f"/api/workers/{desk.id}/heartbeat",
                          json={"state": "in use"}).status_code == 200
    page = login(browser, url, srv.viewer_token)
    page.goto(f"{url}/workers")
    row = f"tr[data-worker='{desk.id}']"
    assert page.inner_text(f"{row} [data-wstate]") == "in use"
    assert "its user is at it" in page.inner_text(f"{row}")
    assert "1 in use by their owner" in page.inner_text("#worker-counts")
    assert api(url, tok).get(f"/api/jobs/{job}", params={"tasks": False}).json()["reason"] \
        == "the render nodes that can take it are desktops in use by their owners now: desk-ida"
    page.goto(f"{url}/farm")
    assert "No render node takes work now" in page.inner_text("#queue-eta")
    _close(page)
