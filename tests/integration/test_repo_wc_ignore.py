"""Ignore patterns never hide tracked files: a commit must not delete them."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli, cli_json


def test_tracked_files_matching_ignore_patterns_are_kept(tmp_path: Path) -> None:
    root = tmp_path / "studio"
    cli("init", str(root))
    cli("project", "create", "film", "--studio", str(root))
    wc = tmp_path / "wc"
    cli("checkout", f"{root}/film", str(wc))
    (wc / "scene.psd").write_text("layers")
    (wc / "old").mkdir()
    (wc / "old" / "a.txt").write_text("kept")
    (wc / "notes.txt").write_text("v1")
    cli("commit", "-m", "first", cwd=wc)
    # Ignore rules that match tracked things, as the defaults matched *.blend1 and
    # Thumbs.db files that an svn import brought in.
    (wc / ".vstudioignore").write_text("*.psd\nold/\n")
    (wc / "notes.txt").write_text("v2")
    assert cli("status", cwd=wc).stdout == "A  .vstudioignore\nM  notes.txt\n"
    assert cli("status", cwd=wc, env={"VSTUDIO_NO_FAST_PATH": "1"}).stdout == \
        "A  .vstudioignore\nM  notes.txt\n"
    cli("commit", "-m", "unrelated", cwd=wc)
    co = tmp_path / "co"
    cli("checkout", f"{root}/film", str(co))
    assert (co / "scene.psd").read_text() == "layers"
    assert (co / "old" / "a.txt").read_text() == "kept"
    assert cli_json("status", cwd=co) == []  # not shown as deleted after a checkout
    (co / "new.psd").write_text("untracked: still ignored")
    (co / "old" / "b.txt").write_text("untracked in a tracked folder")
    (co / "top.txt").write_text("new")
    # Untracked files in ignored places stay ignored; only tracked ones are seen.
    assert cli("status", cwd=co).stdout == "A  top.txt\n"
