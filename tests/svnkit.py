"""Subversion helpers for the svn-import/svn-sync tests: real svn, svnadmin, svnrdump."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.helpers import need


def svn(*args: str, cwd: Path | None = None) -> bytes:
    return subprocess.run(["svn", "--non-interactive", *args], cwd=cwd, check=True,
                          capture_output=True).stdout


def new_repo(base: Path) -> tuple[Path, str, Path]:
    """An empty repository and a checkout of it: (repo, file:// URL, working copy)."""
    need("svnadmin", "apt-get install subversion")
    need("svn", "apt-get install subversion")
    base.mkdir(parents=True, exist_ok=True)
    repo = base / "repo"
    subprocess.run(["svnadmin", "create", str(repo)], check=True)
    url = f"file://{repo}"
    wc = base / "wc"
    svn("checkout", "-q", url, str(wc))
    return repo, url, wc


def commit(wc: Path, message: str, user: str = "ann") -> None:
    svn("add", "-q", "--force", ".", cwd=wc)
    svn("commit", "-q", "-m", message, "--username", user, cwd=wc)
    svn("update", "-q", "--ignore-externals", cwd=wc)


def dump(repo: Path, dest: Path, *extra: str) -> Path:
    with open(dest, "wb") as f:
        subprocess.run(["svnadmin", "dump", "-q", *extra, str(repo)], stdout=f, check=True)
    return dest


def compare(studio: Path, project: str, url: str, revs: dict[int, int]) -> None:
    """Project revision -> Subversion revision: same files, bytes, authors, messages."""
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        reader = open_reader(s)
        log = {c.rev: c for c in reader.log(project)}
        for rev, svn_rev in revs.items():
            listing = svn("list", "-R", f"{url}@{svn_rev}").decode().split("\n")
            files = sorted(p for p in listing if p and not p.endswith("/"))
            # Subversion's empty folders are kept as the project's empty folders.
            empty = sorted(d.rstrip("/") for d in listing if d.endswith("/") and not any(
                q.startswith(d) and q != d for q in listing))
            tree = reader.tree(project, rev)
            assert sorted(p for p, e in tree.items() if e.is_dir) == empty, f"r{rev}"
            tree = {p: e for p, e in tree.items() if not e.is_dir}
            assert sorted(tree) == files, f"r{rev}"
            for p in files:
                want = svn("cat", f"{url}/{p}@{svn_rev}")
                e = tree[p]
                assert reader.read(e.oid, 0, e.size + 1) == want, f"{p}@r{rev}"
            info = ET.fromstring(svn("log", "--xml", "-r", str(svn_rev), url))
            entry = info.find("logentry")
            assert entry is not None
            assert log[rev].author == (entry.findtext("author") or "(no author)")
            assert log[rev].message == (entry.findtext("msg") or "")
    finally:
        s.close()


def head(studio: Path, project: str) -> int:
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio)
    try:
        return open_reader(s).head(project)
    finally:
        s.close()
