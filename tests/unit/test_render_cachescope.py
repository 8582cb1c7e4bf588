"""Render cache scopes (issue 12): the names the client writes and the server checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vstudio import mounttab
from vstudio.render import cachescope as cs


def test_names_and_their_scopes() -> None:
    assert cs.manifest_ref("p.film", "ab") == "render/p.film/ab"
    assert cs.chunk_prefix("u.ana", "ab") == "render-chunks/u.ana/ab/"
    assert cs.of_name("render/p.film/ab") == cs.Scope("p", "film")
    assert cs.of_name("render-chunks/u.ana/ab/1-10") == cs.Scope("u", "ana")
    assert str(cs.of_name("render/p.my.film-2/ab")) == "p.my.film-2"
    # no scope: written before scopes, a foreign kind, a bad name, not the cache
    for name in ("render/" + "ab" * 32, "render/x.film/ab", "render/p./ab", "render/p.-a/ab",
                 "render/p.film", "projects/film/revs/1", "render-chunks/ab/1-2"):
        assert cs.of_name(name) is None, name
    assert cs.names_a_scope("render/p.film/") and cs.names_a_scope("render-chunks/u.a/k")
    assert not cs.names_a_scope("render/") and not cs.names_a_scope("render/p.film")
    assert cs.is_cache("render/") and not cs.is_cache("render") and not cs.is_cache("")


class _Remote:
    """What ``scope_for`` asks of a RemoteStore."""

    server_url = "http://studio:8642"

    def me(self) -> str:
        return "ana"


def _wc(root: Path, meta: dict[str, str]) -> Path:
    (root / ".vstudio").mkdir(parents=True)
    (root / ".vstudio" / "wc.json").write_text(json.dumps(meta))
    return root


def test_listing_prefixes_are_the_readable_scopes_under_a_prefix() -> None:
    scopes = ["p.film", "p.open", "u.ana", "p.bad/name"]  # the last is no scope: skipped
    assert cs.listing_prefixes("render/", scopes) == [
        "render/p.film/", "render/p.open/", "render/u.ana/"]
    assert cs.listing_prefixes("render-chunks/", scopes) == [
        "render-chunks/p.film/", "render-chunks/p.open/", "render-chunks/u.ana/"]
    assert cs.listing_prefixes("render/p.f", scopes) == ["render/p.film/"]
    assert cs.listing_prefixes("render/u.", scopes) == ["render/u.ana/"]
    assert cs.listing_prefixes("render/x.", scopes) == []
    assert cs.listing_prefixes("render/", []) == []


def test_scope_of_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounttab, "vstudio_table", dict)
    monkeypatch.setenv("VSTUDIO_USER", "Ana B.")
    remote = _wc(tmp_path / "wc", {"kind": "remote", "server": "http://studio:8642/",
                                   "project": "film"})
    (remote / "shots").mkdir()
    local = _wc(tmp_path / "lwc", {"kind": "local", "studio": "/s", "project": "book"})
    plain = tmp_path / "plain"
    plain.mkdir()
    assert cs.scope_for(remote / "shots", _Remote()) == "p.film"
    assert cs.scope_for(plain, _Remote()) == "u.ana"
    # a working copy of another server's project is plain files to this one
    other = _Remote()
    other.server_url = "http://elsewhere:8642"
    assert cs.scope_for(remote, other) == "u.ana"
    # a local store checks no rights: any working copy names its project, else the user
    assert cs.scope_for(local, object()) == "p.book"
    assert cs.scope_for(remote, object()) == "p.film"
    assert cs.scope_for(plain, object()) == "u.Ana_B."
    # a mount of a project of this server (its source name is vstudio:PROJECT@SERVER)
    monkeypatch.setattr(mounttab, "vstudio_table",
                        lambda: {plain: "vstudio:reel@http://STUDIO:8642"})
    assert cs.scope_for(plain / "latest", _Remote()) == "p.reel"
    assert cs.scope_for(plain / "latest", object()) == "p.reel"


@pytest.mark.parametrize("source", [
    "vstudio:reel@http://elsewhere:8642",  # server A's project reel, the cache on B
    "vstudio:reel@http://studio:8643",  # another port: another server
    "vstudio:reel@https://studio:8642",
    "vstudio:reel",  # a studio folder's project (or a mount made before servers were named)
    "vstudio:reel@",
    "vstudio:reel@http://studio:port",
])
def test_a_mount_of_another_servers_project_is_the_users_scope(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Issue 12: a mount's project names the cache's scope only on the mount's own server:
    server A's ``reel`` is not server B's ``reel``."""
    monkeypatch.setattr(mounttab, "vstudio_table", lambda: {tmp_path: source})
    assert mounttab.mount_source(tmp_path / "latest" / "shots")[0] == "reel"
    assert cs.scope_for(tmp_path / "latest" / "shots", _Remote()) == "u.ana"
    # a local store checks no rights: any mount's project names its scope there
    assert cs.scope_for(tmp_path / "latest", object()) == "p.reel"


def test_the_mount_table_names_a_mounts_server() -> None:
    assert mounttab.source_name("film", "http://h:1") == "vstudio:film@http://h:1"
    assert mounttab.source_name("film", None) == "vstudio:film"
    assert mounttab.source_name("film", "http://a,b:1") == "vstudio:film"  # libfuse's comma
    assert cs.same_server("http://Studio:80/", "http://studio")
    assert cs.same_server("https://s", "https://s:443/x")
    assert not cs.same_server("http://s:1", "https://s:1")
    assert not cs.same_server("", "") and not cs.same_server("http://s:x", "http://s:x")
