"""Studio discovery and studio.toml parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vstudio import config
from vstudio.errors import BadInput, StudioNotFound


def _studio(root: Path, body: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "studio.toml").write_text(body or '[studio]\nname = "x"\n')
    return root


def test_found_from_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _studio(tmp_path / "s")
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.delenv("VSTUDIO_STUDIO", raising=False)
    assert config.find_studio() == root.resolve()


def test_environment_beats_the_current_folder(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    here = _studio(tmp_path / "here")
    there = _studio(tmp_path / "there")
    monkeypatch.chdir(here)
    monkeypatch.setenv("VSTUDIO_STUDIO", str(there))
    assert config.find_studio() == there.resolve()
    assert config.find_studio(here) == here.resolve()


def test_no_studio_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VSTUDIO_STUDIO", raising=False)
    with pytest.raises(StudioNotFound, match="vstudio init"):
        config.find_studio()
    with pytest.raises(StudioNotFound, match="not a studio"):
        config.find_studio(tmp_path)


def test_relative_urls_resolve_against_the_studio(tmp_path: Path) -> None:
    root = _studio(tmp_path / "s", '[catalog]\nurl = "sqlite:///cat.db"\n[store]\nurl = "blobs"\n'
                   'key_file = "/k"\n')
    cfg = config.load(root)
    assert cfg.db_url == f"sqlite:///{(root / 'cat.db').resolve()}"
    assert cfg.store_url == f"file://{(root / 'blobs').resolve()}"
    assert cfg.store_options == {"key_file": "/k"}


def test_s3_and_postgres_urls_are_kept(tmp_path: Path) -> None:
    root = _studio(tmp_path / "s", '[catalog]\nurl = "postgresql://u@h/db"\n'
                   '[store]\nurl = "s3://b/p?endpoint=http://h:1"\n')
    cfg = config.load(root)
    assert cfg.db_url == "postgresql://u@h/db"
    assert cfg.store_url == "s3://b/p?endpoint=http://h:1"


def test_broken_toml_is_a_clear_error(tmp_path: Path) -> None:
    root = _studio(tmp_path / "s", "[studio\nname=")
    with pytest.raises(BadInput, match="not valid TOML"):
        config.load(root)


def test_written_config_reads_back(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    config.write_config(tmp_path, name='we"ird', db_url="sqlite:///c.db", store_url="file://st",
                        store_options={"key_file": "/a b"})
    cfg = config.load(tmp_path)
    assert cfg.name == 'we"ird'
    assert cfg.store_options["key_file"] == "/a b"


@pytest.mark.parametrize(("body", "names"), [
    ("[server]\nport = 99999\n", ("[server] port", "1 to 65535", "99999")),
    ("[server]\nport = \"8642\"\n", ("[server] port", "whole number")),
    ("[server]\nprot = 8642\n", ("unknown key [server] prot", "port")),
    ("[farm]\nlease_seconds = nan\n", ("[farm] lease_seconds", "nan")),
    ("[farm]\nlease_seconds = -1\n", ("[farm] lease_seconds", "0.5 to 86400")),
    ("[farm]\nreap_seconds = true\n", ("[farm] reap_seconds", "True")),
    ("[server]\nsession_hours = inf\n", ("[server] session_hours",)),
    ("[store]\nupload_threads = 2.5\n", ("[store] upload_threads", "whole number")),
    ("[store]\nencryption = \"yes\"\n", ("[store] encryption", "'passphrase'")),
    ("[catalog]\nurl = \"mysql://x/y\"\n", ("[catalog] url", "postgresql://")),
    ("[studio]\nname = \"\"\n", ("[studio] name", "non-empty")),
    ("[sever]\nport = 1\n", ("unknown section [sever]", "server")),
    ("server = 1\n", ("[server] must be a table",)),
])
def test_bad_values_name_the_file_and_key(tmp_path: Path, body: str,
                                          names: tuple[str, ...]) -> None:
    root = _studio(tmp_path / "s", body)
    with pytest.raises(BadInput) as e:
        config.load(root)
    message = e.value.message
    assert "\n" not in message and str(root / "studio.toml") in message
    for name in names:
        assert name in message


def test_every_documented_key_is_accepted(tmp_path: Path) -> None:
    root = _studio(tmp_path / "s", '[studio]\nname = "s"\n[catalog]\nurl = "sqlite:///c.db"\n'
                   '[store]\nurl = "st"\nkey_file = "/k"\nupload_threads = 8\n'
                   'rebuilt_cache_mb = 100\n[server]\nhost = "::"\nport = 1\n'
                   'session_hours = 1.5\nmax_body_mb = 1\nmax_upload_mb = 100\n'
                   'web_sample_seconds = 30\n[farm]\nlease_seconds = 1\nreap_seconds = 0.2\n')
    cfg = config.load(root)
    assert cfg.server["port"] == 1 and cfg.farm["lease_seconds"] == 1
