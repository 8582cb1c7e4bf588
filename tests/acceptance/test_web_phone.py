"""A wrangler's pages on a phone, and the task grid by keyboard alone.

A real `vstudio serve`, render nodes simulated over the HTTP API, headless Chromium at
390x844 (a phone) and 1280x800. Both tests failed before the phone layout of the job
page's task table and the farm overview's tables, and before the grid's cells took the
keyboard (a roving tabindex: one tab stop per block, arrow keys, Enter opens the log).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.acceptance.test_web_browser import FakeNode, api, browser, login, shot
from tests.acceptance.test_web_states import srv

__all__ = ["browser", "srv"]  # fixtures shared with the other page tests
pytestmark = pytest.mark.timeout(180)  # a stuck browser fails fast, not after 10 min

PHONE = {"width": 390, "height": 844}

# Every element whose content is wider than its own box (a box that scrolls or clips
# sideways), beyond a pixel of rounding. Boxes hidden on purpose for screen readers only
# (1 px, clipped) and elements not shown are left out: nobody can scroll them.
WIDER_THAN_BOX = """() => {
    const wide = [];
    if (document.documentElement.scrollWidth > innerWidth + 1)
        wide.push(['page', document.documentElement.scrollWidth, innerWidth]);
    for (const el of document.body.querySelectorAll('*')) {
        if (!el.getClientRects().length || el.closest('.sr-only, [hidden], svg')) continue;
        const st = getComputedStyle(el);
        if (st.clip !== 'auto' && st.position === 'absolute') continue;
        if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0) {
            const cls = typeof el.className === 'string' && el.className
                ? '.' + el.className.split(' ').join('.') : '';
            const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls;
            wide.push([name, el.scrollWidth, el.clientWidth]);
        }
    }
    return wide; }"""


def _job(base: str, token: str, name: str, frames: str = "1-48") -> int:
    """A job of two blocks (a render and an encode after it), as a wrangler meets them."""
    body: dict[str, Any] = {"name": name, "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["true"]},
         "frames": frames, "chunk": 4, "tags": ["linux"]},
        {"name": "encode", "type": "command", "params": {"argv": ["true"]},
         "frames": "1", "chunk": 1, "depends_on": [{"block": "render"}]}]}
    r = api(base, token).post("/api/jobs", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _close(page: Any) -> None:
    page.goto("about:blank")  # a context closed on a live page once hung for minutes
    page.context.close()


def test_job_page_farm_and_jobs_list_fit_a_phone(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    job = _job(url, tok, "ep01 sh020 fluid bake with a long name")
    _job(url, tok, "ep01 sh030 hair")
    # Running tasks on nodes with studio-length names: the worker column is the widest.
    nodes = [FakeNode(url, tok, f"render-node-{i:02d}.studio.example") for i in range(2)]
    for n in nodes:
        n.http.put(f"/api/workers/{n.id}/tags", json={"tags": ["linux"]})
        task = n.take()
        assert task["job_id"] == job
        n.progress(40.0)
    page = login(browser, url, tok, viewport=PHONE)
    for path in (f"/jobs/{job}", "/farm", "/jobs"):
        page.goto(url + path)
        if path.startswith("/jobs/"):  # the settings too, folded open
            page.click("#settings summary")
        wide = page.evaluate(WIDER_THAN_BOX)
        assert wide == [], (path, wide)
        shot(page, "phone-" + path.strip("/").replace("/", "-"))
    # What matters is shown, in each place, at phone size.
    page.goto(f"{url}/jobs/{job}")
    first = page.locator("#tasks tbody tr").first
    for cell in ("td:nth-child(1)", "[data-tstatus]", "[data-tprogress]", "a[data-task-log]"):
        assert first.locator(cell).is_visible(), cell
    running = page.locator("#tasks tbody tr", has_text="render-node-00.studio.example")
    # The worker moved under the status: shown there, its own column hidden.
    assert running.locator("[data-tworker] >> visible=true").inner_text() == \
        "render-node-00.studio.example"
    assert running.locator("[data-tframes]").inner_text() == "1-4"
    page.goto(f"{url}/farm")
    owner = page.locator("#by-owner tbody tr").first
    assert owner.locator("td").nth(1).inner_text().startswith("admin")
    for cell in ("td.name a", "[data-status]", "progress"):
        assert page.locator(f"#open-jobs tr[data-job='{job}'] {cell}").is_visible(), cell
    page.goto(f"{url}/jobs")
    row = page.locator(f"#jobs tr[data-job='{job}']")
    for cell in ("td.name a", "[data-status]", "progress", "[data-frames]"):
        assert row.locator(cell).is_visible(), cell
    # The row's actions are on the list itself on a phone, and they work from there.
    pause = row.locator("button[data-action='pause']")
    assert pause.is_visible()
    pause.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"document.querySelector(\"#jobs tr[data-job='{job}'] [data-status]\")"
        ".textContent.startsWith('paus')", timeout=5000)
    got = api(url, tok).get(f"/api/jobs/{job}", params={"tasks": False}).json()["status"]
    assert got == "pausing"  # its two tasks still run
    assert page.evaluate(WIDER_THAN_BOX) == []
    _close(page)


def test_grid_cells_are_reached_and_opened_by_keyboard(srv: Any, browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    job = _job(url, tok, "keyboard grid", frames="1-400")  # 100 cells: two rows
    node = FakeNode(url, tok, "node-kb")
    node.http.put(f"/api/workers/{node.id}/tags", json={"tags": ["linux"]})
    task = node.take()
    node.progress(10.0, ["Fra:1 Sample 1/16"])
    ids = sorted(t["id"] for t in api(url, tok).get(f"/api/jobs/{job}").json()["tasks"])
    page = login(browser, url, tok)
    page.goto(f"{url}/jobs/{job}")
    active = "document.activeElement"
    # Tab from the top of the page until a grid cell has the focus: keys only, no mouse.
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate(f"{active}.parentElement.classList.contains('grid')"):
            break
    else:
        raise AssertionError("no grid cell takes the keyboard focus")
    assert page.evaluate(f"{active}.id") == f"t{task['id']}"  # the block's first cell
    # One tab stop per block: only the focused cell is in the tab order.
    assert page.evaluate("document.querySelectorAll('.grid i[tabindex=\"0\"]').length") == 2
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    third = ids[2]
    assert page.evaluate(f"{active}.id") == f"t{third}"
    assert "frames 9-12" in (page.evaluate(f"{active}.getAttribute('aria-label')") or "")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Home")
    assert page.evaluate(f"{active}.id") == f"t{task['id']}"
    # Down moves a whole row of cells, and not past the last row; End reaches the
    # block's last task.
    per_row = page.evaluate("""() => { const g = document.querySelector('.grid');
        const top = g.firstElementChild.offsetTop;
        return Array.from(g.children).filter(c => c.offsetTop === top).length; }""")
    assert 1 < per_row < 100, per_row
    page.keyboard.press("ArrowDown")
    assert page.evaluate(f"{active}.id") == f"t{ids[per_row]}"
    if 2 * per_row >= 100:  # two rows
        page.keyboard.press("ArrowDown")
        assert page.evaluate(f"{active}.id") == f"t{ids[per_row]}"
    page.keyboard.press("ArrowUp")
    assert page.evaluate(f"{active}.id") == f"t{task['id']}"
    page.keyboard.press("End")
    assert page.evaluate(f"{active}.id") == f"t{ids[99]}"  # 100 render tasks (400 / 4)
    # Enter opens that task's log; the focus stays in the grid for the next cell.
    page.keyboard.press("Home")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#log-pane pre').textContent"
                           ".includes('Sample 1/16')", timeout=5000)
    assert page.is_visible("#log-pane")
    assert page.inner_text("[data-log-title]") == f"Log of task {task['id']}"
    assert page.evaluate(f"{active}.id") == f"t{task['id']}"
    # The cell says its state in words, and keeps saying it as the task moves on.
    label = f"document.getElementById('t{task['id']}').getAttribute('aria-label')"
    assert page.evaluate(label).endswith(", running"), page.evaluate(label)
    node.done()
    page.wait_for_function(f"{label}.endsWith(', done')", timeout=5000)
    assert page.evaluate(f"document.getElementById('t{task['id']}').title").endswith(", done")
    # Tab leaves the grid for the next block's grid (its own tab stop), not cell by cell.
    page.keyboard.press("Tab")
    assert page.evaluate(f"{active}.id") == f"t{ids[100]}"  # the encode block's one task
    page.keyboard.press(" ")
    page.wait_for_function(f"document.querySelector('[data-log-title]').textContent"
                           f" === 'Log of task {ids[100]}'", timeout=5000)
    # Clicks on any block's grid open logs too (not only the first block's).
    for cell in (ids[5], ids[100]):
        page.click(f"#t{cell}")
        page.wait_for_function(f"document.querySelector('[data-log-title]').textContent"
                               f" === 'Log of task {cell}'", timeout=5000)
    _close(page)


def test_a_node_whose_task_ended_is_idle_in_its_row_and_the_counts(srv: Any,
                                                                    browser: Any) -> None:
    url, tok = srv.url, srv.admin_token
    r = api(url, tok).post("/api/jobs", json={"name": "fragile", "blocks": [
        {"name": "render", "type": "command", "params": {"argv": ["false"]},
         "frames": "1-2", "chunk": 1, "retries": 0, "tags": ["nowhere"]}]})
    assert r.status_code == 201, r.text
    node = FakeNode(url, tok, "node-after-failure")
    node.http.put(f"/api/workers/{node.id}/tags", json={"tags": ["nowhere"]})
    task = node.take()
    node.http.post(f"/api/tasks/{task['id']}/fail",
                   json={"attempt": task["attempt"], "error": "exit 1"})
    page = login(browser, url, tok)
    page.goto(f"{url}/workers")
    row = f"tr[data-worker='{node.id}']"
    # The row said "busy" while the summary above it counted the node idle.
    assert page.inner_text(f"{row} [data-wstate]") == "idle"
    assert "1 idle" in page.inner_text("main")
    _close(page)
