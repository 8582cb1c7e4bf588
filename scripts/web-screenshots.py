"""Screenshots of the web page for the README (run by hand; needs Debian's chromium).

    .venv/bin/python scripts/web-screenshots.py [DEST]   (default: docs/screenshots)

Starts a throwaway studio with a few jobs in the states a wrangler meets (running,
stalled, waiting, queued without a matching node, paused) and simulated render nodes,
then photographs the jobs list, a job page, the workers page and the farm overview at
desktop and phone width.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.acceptance.test_web_browser import (  # noqa: E402
    FakeNode,
    _store_put,
    api,
    launch_chromium,
)
from tests.conftest import start_server  # noqa: E402
from vstudio.studio import init_studio  # noqa: E402
from vstudio.worker.sysinfo import system_info  # noqa: E402


def block(name: str = "render", frames: str = "1-48", chunk: int = 4, **kw: object) -> dict:
    return {"name": name, "type": "command", "params": {"argv": ["true"]}, "frames": frames,
            "chunk": chunk, **kw}


def frame_png(tmp: Path) -> Path:
    """A test-card frame made by Debian's ffmpeg (the job page's "last rendered frame")."""
    import subprocess

    out = tmp / "frame_0001.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=960x540",
                    "-frames:v", "1", str(out)], check=True)
    return out


def seed(url: str, token: str, studio: Path, tmp: Path) -> int:
    c = api(url, token)

    def job(**spec: object) -> int:
        r = c.post("/api/jobs", json=spec)
        r.raise_for_status()
        return int(r.json()["id"])

    shot = job(name="ep01 sh010 lighting", priority=70, blocks=[
        block(), block("encode", "1", 1, depends_on=[{"block": "render"}])])
    fragile = job(name="ep01 sh020 fluid bake", blocklist_after=1,
                  blocks=[block(frames="1-8", chunk=2, retries=3)])
    gpu = job(name="ep01 sh030 hair", blocks=[block(tags=["gpu"])])
    job(name="ep01 edit", after=[shot, gpu], blocks=[block(frames="1-240", chunk=24)])
    paused = job(name="ep02 animatic", blocks=[block(frames="1-96", chunk=8)])
    c.post(f"/api/jobs/{paused}/pause")
    c.post(f"/api/jobs/{fragile}/priority", json={"priority": 90})
    bad = FakeNode(url, token, "volunteer-anna")
    t = bad.take()
    bad.http.post(f"/api/tasks/{t['id']}/fail", json={"attempt": t["attempt"],
                                                      "error": "exit 137: out of memory"})
    names = [f"studio-pc-{i}" for i in range(1, 4)]
    nodes = [FakeNode(url, token, name) for name in names]
    for name in names:  # as `vstudio worker` does: say what the machine is
        c.post("/api/workers", json={"name": name, "slots": 1,
                                     "job_types": ["command"], "allow_commands": True,
                                     "system": system_info()})
    oid = _store_put(studio, [frame_png(tmp)])[0]
    shown = shot
    for i, n in enumerate(nodes):
        job_id = n.take()["job_id"]
        shown = job_id if i == 0 else shown  # the job page photographed has a frame
        n.progress(20.0 + 25 * i, [f"Fra:{i + 1} Mem:120M | Sample {i * 8}/32"])
        if i == 0:
            n.done([{"frame": 1, "oid": oid, "name": "frame_0001.png", "seconds": 41.0}])
            n.take()
            n.progress(60.0)
    for i, n in enumerate(nodes):  # live CPU and memory use, as heartbeats carry it
        n.http.post(f"/api/workers/{n.id}/heartbeat",
                    json={"state": "busy", "cpu": 92.0 - 7 * i, "mem": 38.0 + 11 * i})
    c.put(f"/api/workers/{nodes[0].id}/tags", json={"tags": ["gpu", "linux"]})
    desk = FakeNode(url, token, "desk-maria")  # a desktop node rendering at night only
    c.put(f"/api/workers/{desk.id}/schedule",  # a volunteer abroad: hours on her clock
          json={"schedule": "mon-fri 19:00-08:00", "tz": "America/Sao_Paulo"})
    return int(shown)


def main() -> None:
    from playwright.sync_api import sync_playwright

    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vst-shots-"))
    root = tmp / "studio"
    init_studio(root, store_url=None, db_url=None).close()
    srv = start_server(root, tmp / "server.log")
    try:
        shot = seed(srv.url, srv.admin_token, root, tmp)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            for label, size in (("desktop", {"width": 1280, "height": 860}),
                                ("phone", {"width": 390, "height": 844})):
                ctx = browser.new_context(viewport=size, device_scale_factor=1)
                ctx.add_cookies([{"name": "vstudio_session", "value": srv.admin_token,
                                  "url": srv.url}])
                page = ctx.new_page()
                for name, path in (("jobs", "/jobs"), ("job", f"/jobs/{shot}"),
                                   ("workers", "/workers"), ("farm", "/farm")):
                    page.goto(srv.url + path)
                    page.wait_for_load_state("load")
                    page.wait_for_timeout(800)
                    out = dest / f"{name}-{label}.png"
                    page.screenshot(path=str(out), full_page=label == "desktop")
                    print(out)
                    if name == "job" and label == "phone":
                        # A phone shows one screen at a time: the task table is further down.
                        page.evaluate("document.querySelector('#tasks')"
                                      ".scrollIntoView({block: 'start'})")
                        page.wait_for_timeout(300)
                        out = dest / "job-tasks-phone.png"
                        page.screenshot(path=str(out))
                        print(out)
                page.goto("about:blank")  # a context closed on a live page once hung
                ctx.close()
            browser.close()
    finally:
        srv.process.terminate()
        srv.process.wait(10)


if __name__ == "__main__":
    main()
