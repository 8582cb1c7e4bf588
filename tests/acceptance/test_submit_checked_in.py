"""Submitting a file the store already holds under other pieces (issue 17, bug 1).

A small .blend is committed with FastCDC (one request for many small files), while a
submit uploads it with the .blend chunker: same bytes, other pieces. The server used to
grant such an upload nothing ("needs a read grant"), so nobody could submit a checked-in
file. Whoever proves they hold the bytes of the pieces that rebuild it gets the grant.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProc
from tests.helpers import cli, cli_json, need
from vstudio.catalog import accounts
from vstudio.errors import PermissionDenied
from vstudio.jobtypes.samples import make_blend
from vstudio.render import outputs
from vstudio.store.remote import RemoteStore
from vstudio.studio import Studio


def _project(srv: ServerProc) -> dict[str, str]:
    tokens = {n: srv.add_user(n) for n in ("ana", "ben", "cid")}
    s = Studio.open(srv.studio)
    try:
        accounts.create_project(s.engine, "film")
        for name in ("ana", "ben"):  # cid has no rights on film
            accounts.set_right(s.engine, "film", name, "write", True)
    finally:
        s.close()
    return tokens


def test_anyone_with_rights_submits_a_checked_in_file(server: ServerProc,
                                                       tmp_path: Path) -> None:
    need("blender", "apt-get install blender")
    t = _project(server)
    url = f"{server.url}/film"
    wc = {n: tmp_path / n for n in ("ana", "ben")}
    cli("checkout", url, str(wc["ana"]), "--token", t["ana"])
    make_blend(wc["ana"] / "shots" / "a.blend", frames=2)
    cli("commit", "-m", "shot a", cwd=wc["ana"])
    cli("checkout", url, str(wc["ben"]), "--token", t["ben"])
    env = {n: {"VSTUDIO_SERVER": server.url, "VSTUDIO_TOKEN": t[n]} for n in wc}
    jobs = []
    for who in ("ana", "ben"):  # the committer and another artist of the project
        blend = wc[who] / "shots" / "a.blend"
        for cmd in (("blender", "submit"), ("submit", "blender")):
            r = cli(*cmd, str(blend), "--frames", "1-2", "--project", "film", "--json",
                    env=env[who], cwd=wc[who], check=False)
            assert r.returncode == 0, f"{who} {cmd}: {r.stderr}"
            jobs.append(cli_json("jobs", "show", str(_id(r.stdout)), env=env[who]))
    assert [j["status"] for j in jobs] == ["queued"] * 4
    # the reverse order: a file uploaded by a submit first, committed afterwards
    make_blend(wc["ben"] / "shots" / "b.blend", frames=1)
    cli("blender", "submit", str(wc["ben"] / "shots" / "b.blend"), "--frames", "1",
        env=env["ben"], cwd=wc["ben"])
    cli("commit", "-m", "shot b", cwd=wc["ben"])
    cli("update", cwd=wc["ana"])
    assert (wc["ana"] / "shots" / "b.blend").read_bytes() == \
        (wc["ben"] / "shots" / "b.blend").read_bytes()


def test_a_stored_file_is_not_granted_for_pieces_naming_it(server: ServerProc,
                                                           tmp_path: Path) -> None:
    """Other pieces are checked by rebuilding them, so they must not read the file itself
    (a delta on X rebuilds X without its bytes)."""
    t = _project(server)
    data = b"ana's secret frame list " * 4000
    oid = RemoteStore(server.url, t["ana"]).put_bytes(data)
    r = httpx.post(f"{server.url}/api/store/files", headers={"Authorization":
                   f"Bearer {t['cid']}"}, json={"id": oid, "pieces": [],
                                                 "transform": "zstd-delta",
                                                 "params": {"base": oid}})
    assert r.status_code == 200 and "grant" not in r.json(), r.text
    # cid, holding the bytes, is granted (an upload under the same pieces)
    cid = RemoteStore(server.url, t["cid"])
    assert cid.put_bytes(data) == oid and cid.get_bytes(oid) == data


def _id(stdout: str) -> int:
    return int(json.loads(stdout)["id"])


def test_an_artist_records_and_reads_a_render_manifest(server: ServerProc) -> None:
    """A render manifest names its own render key (no object): an artist's farm render must
    record it (it was refused as "needs a read grant"), and naming a key earns no grant."""
    t = _project(server)
    frame = RemoteStore(server.url, t["ana"]).put_bytes(b"frame one")
    ana = RemoteStore(server.url, t["ana"])
    assert ana.put_bytes(b"frame one") == frame  # ana's upload, ana's grant
    key = "ab" * 32
    outputs.record(ana, "p.film", key, {"file": "a.blend"}, {1: frame}, None, "png", 24.0)
    ben = RemoteStore(server.url, t["ben"])
    assert outputs.lookup(ben, "p.film", key)["frames"] == [[1, frame]]
    assert ben.get_bytes(frame) == b"frame one"  # the cache hands its frames out
    with pytest.raises(PermissionDenied):  # cid may not read film
        outputs.lookup(RemoteStore(server.url, t["cid"]), "p.film", key)
    # a ref named after a secret object does not hand that object out
    secret = ana.put_bytes(b"ana's secret")
    cid = RemoteStore(server.url, t["cid"])
    cid.put_ref(f"render/u.cid/{secret}", json.dumps({"key": secret}).encode())
    reader = RemoteStore(server.url, t["cid"])
    assert outputs.lookup(reader, "u.cid", secret) == {"key": secret}
    with pytest.raises(PermissionDenied):
        reader.get_bytes(secret)
