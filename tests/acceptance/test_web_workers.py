"""Who may take a job's tasks: the workers page shows what each node is (version, OS,
CPU, memory) and which jobs it is kept off, with a way to let it take one again; the job
page edits the tags a node needs.

A real `vstudio serve`, render nodes simulated over the HTTP API, headless Chromium.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.test_web_browser import FakeNode, api, browser, login, shot
from tests.acceptance.test_web_states import srv
from tests.helpers import cli, cli_json
from vstudio import __version__
from vstudio.worker.sysinfo import system_info

__all__ = ["browser", "srv"]  # fixtures shared with the other page tests
pytestmark = pytest.mark.timeout(180)  # a stuck browser fails fast, not after 10 min


def _failing_job(base: str, token: str, name: str) -> int:
    r = api(base, token).post("/api/jobs", json={
        "name": name, "blocklist_after": 1, "blocks": [
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
    theirs = _failing_job(url, tok, "admin's shot")
    _fail_one(node, theirs)
    page = login(browser, url, srv.artist_token)
    page.goto(f"{url}/workers")
    row = page.locator(f"tr[data-worker='{node.id}']")
    assert row.locator("[data-kept]").count() == 2
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
