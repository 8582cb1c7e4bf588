"""``vstudio svn-sync``: pull the revisions a project lacks from a live Subversion repository.

The revisions head+1..youngest come from ``svnadmin dump --incremental`` for a
``file://`` repository (read locally, no server) and from ``svnrdump dump --incremental``
for any other URL, piped straight into ``svn-import``'s importer: a sync interrupted at
any point leaves whole revisions, and the next sync continues after them. The final sync
first closes the Subversion side (a ``pre-commit`` hook for a ``file://`` repository;
for a server, it says what to install), then pulls what was committed until then.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from vstudio.errors import BadInput, VStudioError
from vstudio.repo.backend import WcBackend
from vstudio.repo.svnimport import import_dump
from vstudio.store.api import NO_PROGRESS, Progress

HOOK_MARK = "# installed by vstudio svn-sync --final"


class SvnFailed(VStudioError):
    """A Subversion command failed."""


def _program(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SvnFailed(f"{name} is missing: install Subversion (apt-get install subversion)")
    return path


def local_repo(url: str) -> Path | None:
    """The repository folder of a ``file://`` URL (None for other URLs)."""
    if not url.startswith("file://"):
        return None
    path = Path(unquote(urlparse(url).path))
    if not (path / "format").is_file() or not (path / "db").is_dir():
        raise BadInput(f"{url} is not a Subversion repository (the root of one, made by "
                       "'svnadmin create')")
    return path


def youngest(url: str) -> int:
    repo = local_repo(url)
    cmd = ([_program("svnlook"), "youngest", str(repo)] if repo else
           [_program("svn"), "info", "--non-interactive", "--show-item", "revision", url])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SvnFailed(f"cannot read {url}: {_last_line(done.stderr)}")
    try:
        return int(done.stdout.strip())
    except ValueError:
        raise SvnFailed(f"cannot read the youngest revision of {url}") from None


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def lock_repository(url: str, moved_to: str) -> bool:
    """Refuse further commits to a ``file://`` repository; False for other URLs."""
    repo = local_repo(url)
    if repo is None:
        return False
    hook = repo / "hooks" / "pre-commit"
    if hook.exists() and HOOK_MARK not in hook.read_text(errors="replace"):
        hook.rename(hook.with_name("pre-commit.before-vstudio"))  # kept, not lost
    message = f"This repository moved to vstudio ({moved_to}): commit there.".replace("'", "")
    hook.write_text(f"#!/bin/sh\n{HOOK_MARK}\necho '{message}' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return True


def how_to_lock(url: str) -> str:
    return (f"commits to {url} are still possible: on the Subversion server, make the "
            "repository's hooks/pre-commit refuse them (e.g. '#!/bin/sh' + 'exit 1', made "
            "executable), then run this svn-sync --final again to pull the last revisions")


def _check_same_history(url: str, rev: int, backend: WcBackend) -> None:
    """The project's head must be the repository's revision of that number."""
    import xml.etree.ElementTree as ET

    done = subprocess.run([_program("svn"), "log", "--xml", "--non-interactive", "-r", str(rev),
                           url], capture_output=True)
    if done.returncode != 0:
        raise SvnFailed(f"cannot read {url}: {_last_line(done.stderr.decode('utf-8', 'replace'))}")
    try:
        entry = ET.fromstring(done.stdout).find("logentry")
    except ET.ParseError:
        entry = None
    mine = backend.log(None, 1)[0]
    if entry is None or (entry.findtext("author") or "(no author)") != mine.author or (
            entry.findtext("msg") or "") != mine.message:
        raise BadInput(f"r{rev} of {url} is not the project's r{rev} (other author or "
                       "message): is this the repository the project came from?")


def sync(url: str, backend: WcBackend, progress: Progress = NO_PROGRESS) -> dict[str, Any]:
    """Import the revisions after the project's head up to the repository's youngest."""
    head, top = backend.head(), youngest(url)
    if top < head:
        raise BadInput(f"{url} is at r{top} but the project is at r{head}: "
                       "is this the repository the project came from?")
    if head:
        _check_same_history(url, head, backend)
    if top == head:
        return {"revisions": 0, "skipped": 0, "head": head, "youngest": top,
                "not_carried": [], "files": 0, "lock_rules": [], "helpers": 0}
    repo = local_repo(url)
    rng = f"{head + 1}:{top}"
    cmd = ([_program("svnadmin"), "dump", "-q", "--incremental", "-r", rng, str(repo)] if repo
           else [_program("svnrdump"), "dump", "-q", "--non-interactive", "--incremental",
                 "-r", rng, url])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        failure: BaseException | None = None
        try:
            report = import_dump(proc.stdout, backend, progress)  # type: ignore[arg-type]
        except BaseException as e:
            failure = e
            proc.kill()
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code not in (0, -9) or (code != 0 and failure is None):
            # The dump program's own error explains a truncated stream best.
            err.seek(0)
            raise SvnFailed(f"{os.path.basename(cmd[0])} failed (the project is at "
                            f"r{backend.head()}; run svn-sync again to continue): "
                            f"{_last_line(err.read().decode('utf-8', 'replace'))}")
        if failure is not None:
            raise failure
    return report | {"youngest": top}
