"""The farm over real HTTP: CLI, simulated render nodes, rights, events, lost workers,
and the manager killed with SIGKILL and restarted mid-job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ServerProc, start_server
from tests.helpers import cli, cli_json, wait_for
from vstudio.store.remote import RemoteStore


def client(srv: ServerProc, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=30,
                        headers={"Authorization": f"Bearer {token or srv.admin_token}"})


def env(srv: ServerProc, token: str | None = None) -> dict[str, str]:
    return {"VSTUDIO_SERVER": srv.url, "VSTUDIO_TOKEN": token or srv.admin_token}


def take(c: httpx.Client, wid: int, timeout: float = 0) -> dict[str, Any] | None:
    r = c.post(f"/api/workers/{wid}/next", json={"timeout": timeout})
    assert r.status_code in (200, 204), r.text
    return r.json()["task"] if r.status_code == 200 else None


def done(c: httpx.Client, task: dict[str, Any]) -> httpx.Response:
    """Report the task done with one stored frame per frame; a node reports only files
    it stored itself (each with the grant its upload brought)."""
    store = RemoteStore(str(c.base_url).rstrip("/"), c.headers["Authorization"].split()[1])
    oid = store.put_bytes(b"a frame")
    outs = [{"frame": f, "oid": oid, "grant": store.grant(oid), "name": f"frame_{f:04d}.png",
             "seconds": 0.1} for f in task["frames"]]
    return c.post(f"/api/tasks/{task['id']}/done",
                  json={"attempt": task["attempt"], "outputs": outs})


def test_cli_and_simulated_workers(server: ServerProc) -> None:
    artist = server.add_user("ann", "artist")
    job = cli_json("submit", "command", "--frames", "1-9", "--chunk", "3", "--name", "echo",
                   "--priority", "70", "--", "echo", "{start}", "{end}", env=env(server, artist))
    assert set(job) == {"id"}
    shown = cli_json("jobs", "show", str(job["id"]), env=env(server, artist))
    assert shown["status"] == "queued" and len(shown["tasks"]) == 3
    assert {t["frames"] for t in shown["tasks"]} == {"1-3", "4-6", "7-9"}
    assert all(set(t) >= {"status", "frames", "progress", "worker"} for t in shown["tasks"])

    wtoken = server.add_user("node", "worker")
    with client(server, wtoken) as c:
        wid = c.post("/api/workers", json={"name": "node1", "allow_commands": True}).json()["id"]
        t = take(c, wid)
        assert t is not None and t["params"]["argv"] == ["echo", "{start}", "{end}"]
        r = c.post(f"/api/tasks/{t['id']}/progress",
                   json={"attempt": t["attempt"], "progress": 40, "frame": 2, "log": ["Fra:2"]})
        assert r.json() == {"cancel": False}
        mid = cli_json("jobs", "show", str(job["id"]), env=env(server, artist))
        running = [x for x in mid["tasks"] if x["status"] == "running"]
        assert mid["status"] == "running" and running[0]["worker"] == "node1"
        assert running[0]["progress"] == 40
        # a worker token only takes and reports work
        assert c.get("/api/jobs").status_code == 403
        assert c.post("/api/jobs", json={"name": "x", "blocks": []}).status_code in (403, 422)
        assert done(c, t).status_code == 200
        while (t := take(c, wid)) is not None:
            assert done(c, t).status_code == 200
    final = cli_json("jobs", "show", str(job["id"]), env=env(server, artist))
    assert final["status"] == "done" and all(x["progress"] == 100 for x in final["tasks"])
    log = cli("jobs", "log", str(final["tasks"][0]["id"]), env=env(server, artist)).stdout
    assert "Fra:2" in log
    assert cli_json("workers", env=env(server))[0]["name"] == "node1"


def _project(srv: ServerProc, name: str) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    s = Studio.open(srv.studio)
    try:
        accounts.create_project(s.engine, name)
    finally:
        s.close()


def test_rights_and_bad_input(server: ServerProc) -> None:
    ann, bob = server.add_user("ann", "artist"), server.add_user("bob", "artist")
    viewer = server.add_user("vic", "viewer")
    _project(server, "film")  # everyone reads it: bob sees ann's job there, may not act on it
    job = cli_json("submit", "command", "--project", "film", "--frames", "1", "--", "true",
                   env=env(server, ann))["id"]
    p = cli("jobs", "cancel", str(job), env=env(server, bob), check=False)
    assert p.returncode == 1 and "only its owner" in p.stderr
    # a job without a project is ann's alone: bob is told it is not his to see
    private = cli_json("submit", "command", "--frames", "1", "--", "true",
                       env=env(server, ann))["id"]
    p = cli("jobs", "cancel", str(private), env=env(server, bob), check=False)
    assert p.returncode == 1 and "not visible to you" in p.stderr
    p = cli("submit", "command", "--frames", "1", "--", "true", env=env(server, viewer),
            check=False)
    assert p.returncode == 1 and "error:" in p.stderr
    assert [j["id"] for j in cli_json("jobs", "ls", env=env(server, viewer))] == [job]
    assert cli_json("jobs", "cancel", str(private), env=env(server))["status"] == "canceled"
    assert cli_json("jobs", "pause", str(job), env=env(server))["status"] == "paused"
    assert [j["id"] for j in cli_json("jobs", "ls", "--status", "paused",
                                      env=env(server))] == [job]
    assert cli_json("jobs", "ls", "--status", "queued", env=env(server)) == []
    p = cli("jobs", "ls", "--status", "bogus", env=env(server), check=False)
    assert p.returncode == 2 and "bogus" in p.stderr
    with client(server, ann) as c:
        for body in ({}, {"name": "x", "blocks": []},
                     {"name": "x", "blocks": [{"type": "blender", "params": {}}]},
                     {"name": "x", "blocks": [{"type": "nope", "frames": "1"}]},
                     {"name": "x", "after": [999999],
                      "blocks": [{"type": "command", "params": {"argv": ["x"]}, "frames": "1"}]},
                     {"name": "x\x00", "blocks": [{"type": "command", "params": {"argv": ["x"]},
                                                   "frames": "1-3x-1"}]}):
            r = c.post("/api/jobs", json=body)
            assert 400 <= r.status_code < 500 and r.json()["detail"], (body, r.text)
        assert c.get("/api/jobs/2147483648").status_code == 422
        assert c.get("/api/jobs/12345").status_code == 404
        r = c.post("/api/tasks/1/progress", json={"attempt": 1, "progress": 101})
        assert r.status_code == 422
    assert httpx.get(server.url + "/api/jobs").status_code == 401


def _restart(srv: ServerProc, tmp: Path) -> ServerProc:
    srv.process.send_signal(signal.SIGKILL)
    srv.process.wait(10)
    return start_server(srv.studio, tmp / "server2.log")


def test_manager_killed_mid_job_loses_nothing(studio_dir: Path, tmp_path: Path) -> None:
    srv = start_server(studio_dir, tmp_path / "server.log")
    try:
        with client(srv) as c:
            job = c.post("/api/jobs", json={"name": "k", "blocks": [
                {"type": "command", "params": {"argv": ["true"]}, "frames": "1-6",
                 "chunk": 2}]}).json()["id"]
            wid = c.post("/api/workers", json={"name": "n", "slots": 2,
                                               "allow_commands": True}).json()["id"]
            a, b = take(c, wid), take(c, wid)
            assert a and b
            assert done(c, a).status_code == 200  # acknowledged: must survive
        srv = _restart(srv, tmp_path)
        with client(srv) as c:
            shown = c.get(f"/api/jobs/{job}").json()
            status = {t["id"]: t["status"] for t in shown["tasks"]}
            assert status[a["id"]] == "done" and status[b["id"]] == "running"
            outs = c.get(f"/api/jobs/{job}/outputs").json()
            assert [o["frame"] for o in outs] == a["frames"]
            # the running task's lease is still valid: its worker keeps reporting
            r = c.post(f"/api/tasks/{b['id']}/progress",
                       json={"attempt": b["attempt"], "progress": 50})
            assert r.status_code == 200
            assert done(c, b).status_code == 200
            while (t := take(c, wid)) is not None:
                assert done(c, t).status_code == 200
            assert c.get(f"/api/jobs/{job}").json()["status"] == "done"
    finally:
        srv.process.kill()
        srv.process.wait(10)


def test_lost_worker_is_requeued_and_events_stream(studio_dir: Path, tmp_path: Path) -> None:
    with open(studio_dir / "studio.toml", "a", encoding="utf-8") as f:
        f.write("\n[farm]\nlease_seconds = 1\nreap_seconds = 0.2\n")
    srv = start_server(studio_dir, tmp_path / "server.log")
    events: list[dict[str, Any]] = []

    def listen() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server is killed at the end
            _listen()

    def _listen() -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as c, c.stream(
                "GET", "/api/events", headers={"Authorization": f"Bearer {srv.admin_token}"}) as r:
            kind = ""
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append({"kind": kind, **json.loads(line[5:])})
                    if len(events) > 50:
                        return

    threading.Thread(target=listen, daemon=True).start()
    try:
        with client(srv) as c:
            job = c.post("/api/jobs", json={"name": "l", "blocks": [
                {"type": "command", "params": {"argv": ["true"]}, "frames": "1"}]}).json()["id"]
            lost = c.post("/api/workers", json={"name": "lost", "allow_commands": True}).json()
            assert lost["lease_seconds"] == 1
            t1 = take(c, lost["id"])
            assert t1 is not None
            other = c.post("/api/workers", json={"name": "other",
                                                 "allow_commands": True}).json()["id"]
            start = time.monotonic()
            t2 = take(c, other, timeout=10)  # woken when the lease runs out
            assert t2 is not None and t2["id"] == t1["id"] and t2["attempt"] == t1["attempt"] + 1
            assert time.monotonic() - start < 3
            assert done(c, t1).status_code == 409  # the lost worker's late report
            assert c.get(f"/api/jobs/{job}").json()["tasks"][0]["worker"] == "other"
            c.post(f"/api/tasks/{t2['id']}/progress", json={"attempt": t2["attempt"],
                                                            "progress": 30})
            assert done(c, t2).status_code == 200
            wait_for(lambda: any(e["kind"] == "task" and e.get("progress") == 30
                                 for e in events), 10, "a progress event")
            wait_for(lambda: any(e["kind"] == "job" and e.get("id") == job for e in events),
                     10, "a job event")
            wait_for(lambda: any(e["kind"] == "worker" and e.get("name") == "lost"
                                 and e.get("state") == "offline" for e in events),
                     10, "the lost worker's offline event")
            # it comes back: asking for work (or a heartbeat) makes it online again, live
            assert take(c, lost["id"]) is None
            wait_for(lambda: any(e["kind"] == "worker" and e.get("name") == "lost"
                                 and e.get("state") == "idle" for e in events),
                     10, "the returning worker's event")
            assert c.get("/api/workers").json()[0]["state"] == "idle"
    finally:
        srv.process.kill()
        srv.process.wait(10)


def test_submit_uploads_and_fetch_downloads(server: ServerProc, tmp_path: Path) -> None:
    from vstudio.store.remote import RemoteStore

    blend = tmp_path / "shot.blend"
    blend.write_bytes(b"BLENDER-v304" + bytes(range(256)) * 40)
    job = cli_json("submit", "blender", str(blend), "--frames", "1-2", "--chunk", "2",
                   "--resolution", "64x36", "--samples", "4", "--encode", "shot.mp4",
                   env=env(server))["id"]
    with client(server) as c:
        shown = c.get(f"/api/jobs/{job}").json()
        assert [b["name"] for b in shown["blocks"]] == ["render", "encode"]
        assert shown["blocks"][0]["params"]["resolution"] == [64, 36]
        (inp,) = shown["inputs"]
        store = RemoteStore(server.url, server.admin_token)
        assert inp["path"] == "shot.blend" and store.get_bytes(inp["oid"]) == blend.read_bytes()
        wid = c.post("/api/workers", json={"name": "r"}).json()["id"]
        t = take(c, wid)
        assert t is not None and t["params"]["file"] == "shot.blend"
        # the node gets each input with a read grant for it (its only way to read it)
        assert [{k: v for k, v in i.items() if k != "grant"} for i in t["inputs"]] == [inp]
        assert t["inputs"][0]["grant"]
        frames = {f: store.put_bytes(f"png {f}".encode()) for f in t["frames"]}
        r = c.post(f"/api/tasks/{t['id']}/done", json={"attempt": t["attempt"], "outputs": [
            {"frame": f, "oid": oid, "name": f"frame_{f:04d}.png"} for f, oid in frames.items()]})
        assert r.status_code == 200
        enc = take(c, wid)
        assert enc is not None and enc["block"] == "encode"
        assert sorted(u["oid"] for u in enc["upstream"]) == sorted(frames.values())
        video = store.put_bytes(b"mp4 bytes")
        c.post(f"/api/tasks/{enc['id']}/done", json={"attempt": enc["attempt"], "outputs": [
            {"oid": video, "name": "shot.mp4"}]})
    fetched = cli_json("jobs", "fetch", str(job), str(tmp_path / "out"), env=env(server))
    assert len(fetched) == 3
    assert (tmp_path / "out" / "encode" / "shot.mp4").read_bytes() == b"mp4 bytes"
    assert (tmp_path / "out" / "render" / "frame_0002.png").read_bytes() == b"png 2"


def test_watch_drain_priority_retry(server: ServerProc) -> None:
    e = env(server)
    low = cli_json("submit", "command", "--frames", "1-2", "--priority", "10", "--", "true",
                   env=e)["id"]
    high = cli_json("submit", "command", "--frames", "1", "--priority", "20", "--", "true",
                    env=e)["id"]
    assert cli_json("jobs", "priority", str(low), "90", env=e)["priority"] == 90
    watch = subprocess.Popen([sys.executable, "-m", "vstudio", "jobs", "watch", str(low),
                              "--json"], env={**os.environ, **e},
                             stdout=subprocess.PIPE, text=True)
    with client(server) as c:
        wid = c.post("/api/workers", json={"name": "d", "allow_commands": True}).json()["id"]
        cli("workers", "--drain", str(wid), env=e)
        assert cli_json("workers", env=e)[0]["state"] == "draining"
        assert take(c, wid) is None  # a draining worker gets nothing new
        cli("workers", "--enable", str(wid), env=e)
        t = take(c, wid)
        assert t is not None and t["job_id"] == low  # priority changed: low is first now
        assert c.post(f"/api/tasks/{t['id']}/fail",
                      json={"attempt": t["attempt"], "error": "bad frame"}).status_code == 200
        t2 = take(c, wid)
        assert t2 is not None
        assert done(c, t2).status_code == 200
        while (t := take(c, wid)) is not None:
            assert done(c, t).status_code == 200
        cli("jobs", "clear-blocklist", str(low), env=e)
        first = cli_json("jobs", "show", str(low), env=e)["tasks"][0]
        cli("jobs", "retry-task", str(first["id"]), env=e)
        assert cli_json("jobs", "show", str(low), env=e)["status"] in ("queued", "running")
        t = take(c, wid)
        assert t is not None and t["id"] == first["id"] and t["attempt"] > first["attempt"]
        assert done(c, t).status_code == 200
    out, _ = watch.communicate(timeout=60)
    assert watch.returncode == 0
    assert json.loads(out.strip().splitlines()[-1])["status"] == "done"
    assert cli_json("jobs", "show", str(high), env=e)["status"] == "done"


def test_jobs_of_unreadable_projects_are_hidden(server: ServerProc) -> None:
    from vstudio.catalog import accounts
    from vstudio.studio import Studio

    keeper, ann = server.add_user("keeper", "artist"), server.add_user("ann", "artist")
    s = Studio.open(server.studio)
    try:
        accounts.create_project(s.engine, "secret")
        accounts.set_right(s.engine, "secret", "keeper", "write", True)
    finally:
        s.close()
    job = cli_json("submit", "command", "--frames", "1", "--project", "secret", "--", "true",
                   env=env(server, keeper))["id"]
    assert [j["id"] for j in cli_json("jobs", "ls", env=env(server, keeper))] == [job]
    assert cli_json("jobs", "ls", env=env(server, ann)) == []
    p = cli("jobs", "show", str(job), env=env(server, ann), check=False)
    assert p.returncode == 1 and "may not read" in p.stderr
    assert cli_json("jobs", "show", str(job), env=env(server))["project"] == "secret"
    p = cli("submit", "command", "--frames", "1", "--project", "secret", "--", "true",
            env=env(server, ann), check=False)
    assert p.returncode == 1
