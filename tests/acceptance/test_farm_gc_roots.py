"""`store gc` keeps what the farm names only in its catalog: inputs, outputs, thumbnails."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import ServerProc
from tests.helpers import cli, cli_json


def test_gc_keeps_farm_inputs_and_outputs(server: ServerProc, tmp_path: Path) -> None:
    from vstudio.store.remote import RemoteStore

    env = {"VSTUDIO_SERVER": server.url, "VSTUDIO_TOKEN": server.admin_token}
    blend = tmp_path / "shot.blend"
    blend.write_bytes(b"BLENDER-v304" + bytes(range(256)) * 64)
    job = cli_json("submit", "blender", str(blend), "--frames", "1-2", "--chunk", "2",
                   env=env)["id"]
    store = RemoteStore(server.url, server.admin_token)
    frames = {f: store.put_bytes(f"frame {f} pixels".encode() * 50) for f in (1, 2)}
    thumb = store.put_bytes(b"thumbnail bytes" * 20)
    orphan = store.put_bytes(b"nothing refers to me" * 30)
    with httpx.Client(base_url=server.url, timeout=30,
                      headers={"Authorization": f"Bearer {server.admin_token}"}) as c:
        inputs = c.get(f"/api/jobs/{job}").json()["inputs"]
        wid = c.post("/api/workers", json={"name": "gc-node"}).json()["id"]
        task = c.post(f"/api/workers/{wid}/next", json={"timeout": 0}).json()["task"]
        r = c.post(f"/api/tasks/{task['id']}/done", json={"attempt": task["attempt"], "outputs": [
            {"frame": f, "oid": oid, "name": f"frame_{f:04d}.png", "thumbnail_oid": thumb}
            for f, oid in frames.items()]})
        assert r.status_code == 200, r.text

    studio = ["--studio", str(server.studio)]
    for _ in range(2):  # gc marks on one run and deletes on a later one
        cli("store", "gc", "--grace", "0", *studio)
    keep = [*frames.values(), thumb, inputs[0]["oid"]]
    for oid in keep:
        out = tmp_path / f"got-{oid[:8]}"
        cli("store", "get", oid, str(out), *studio)
        assert out.stat().st_size > 0
    assert (tmp_path / f"got-{inputs[0]['oid'][:8]}").read_bytes() == blend.read_bytes()
    gone = cli("store", "get", orphan, str(tmp_path / "orphan"), *studio, check=False)
    assert gone.returncode == 1 and "error:" in gone.stderr  # gc did run and remove garbage
