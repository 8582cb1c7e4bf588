"""The add-on's plain functions: each runs the ``vstudio`` CLI and returns its answer.

No ``bpy`` here, and only the standard library: Blender's Python lacks vstudio's
dependencies. Calling the CLI (``--json``) keeps one HTTP client and one set of error
messages for terminal and Blender alike. These functions block: call them from a worker
thread (``tasks.Runner``), never from Blender's main thread.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI_FILE = Path(__file__).with_name("cli.json")  # written by ``vstudio blender install``
FINAL = ("done", "failed", "canceled")


class CliError(Exception):
    """A failed vstudio call; ``str()`` is the one line the CLI printed."""


@dataclass(frozen=True)
class Settings:
    """The add-on's preferences; empty fields fall back to the working copy's values."""

    command: str = ""  # how to start vstudio, e.g. "/usr/bin/vstudio"
    server: str = ""
    token: str = ""


def cli_argv(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The command that starts vstudio and the environment it needs."""
    if settings.command.strip():
        return shlex.split(settings.command), {}
    try:
        rec = json.loads(CLI_FILE.read_text())
        argv = [str(a) for a in rec["argv"]]
        if argv and os.path.exists(argv[0]):
            return argv, {"PYTHONPATH": str(rec["pythonpath"])} if rec.get("pythonpath") else {}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    found = shutil.which("vstudio")
    if found:
        return [found], {}
    raise CliError("error: the vstudio command was not found: run 'vstudio blender install' "
                   "or set its path in the add-on's preferences")


def working_copy(path: str | Path) -> dict[str, Any] | None:
    """The metadata of the working copy holding ``path`` (with ``root``), or None."""
    d = Path(os.path.abspath(path))
    for folder in (d, *d.parents):
        meta = folder / ".vstudio" / "wc.json"
        if meta.is_file():
            try:
                data = json.loads(meta.read_text())
            except (OSError, ValueError):
                return None
            return {**data, "root": str(folder)} if isinstance(data, dict) else None
    return None


def server_and_token(settings: Settings, file: str | Path | None) -> tuple[str, str]:
    """The farm server and token: the preferences, else the open file's working copy."""
    wc = working_copy(Path(file).parent) if file else None
    server = settings.server or (str(wc.get("server") or "") if wc else "")
    token = settings.token or (str(wc.get("token") or "") if wc else "")
    return server.rstrip("/"), token


def error_line(stderr: str, code: int) -> str:
    """The CLI's one-line message: its ``error:`` line, else its last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("error:", "internal error:")):
            return ln
    return lines[-1] if lines else f"error: vstudio exited with status {code}"


def run(settings: Settings, *args: str, cwd: str | Path | None = None,
        server: str = "", token: str = "", out: Path | None = None,
        timeout: float | None = None) -> str:
    """Run ``vstudio ARGS``; its standard output, or ``CliError`` with its message."""
    argv, extra = cli_argv(settings)
    env = dict(os.environ)
    if extra.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (extra["PYTHONPATH"], env.get("PYTHONPATH", "")) if p)
    # The token travels in the environment, not in argv where any user's `ps` shows it.
    token = token or settings.token
    if token:
        env["VSTUDIO_TOKEN"] = token
    if server:
        env["VSTUDIO_SERVER"] = server
    env["NO_COLOR"] = "1"
    try:
        if out is not None:
            with open(out, "wb") as f:
                proc = subprocess.run([*argv, *args], cwd=cwd, env=env, stdout=f,
                                      stderr=subprocess.PIPE, timeout=timeout)
            stdout = ""
        else:
            proc = subprocess.run([*argv, *args], cwd=cwd, env=env, capture_output=True,
                                  timeout=timeout)
            stdout = proc.stdout.decode("utf-8", "replace")
    except FileNotFoundError:
        raise CliError(f"error: cannot start {argv[0]}: set the vstudio command in the "
                       "add-on's preferences") from None
    except subprocess.TimeoutExpired:
        raise CliError(f"error: vstudio {args[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise CliError(error_line(proc.stderr.decode("utf-8", "replace"), proc.returncode))
    return stdout


def run_json(settings: Settings, *args: str, **kw: Any) -> Any:
    text = run(settings, *args, "--json", **kw)
    try:
        return json.loads(text)
    except ValueError:
        raise CliError(f"error: vstudio {args[0]} printed no JSON: {text[:200]}") from None


def _dir(file: str | Path) -> str:
    return str(Path(os.path.abspath(file)).parent)


# -- the repository, for one file ----------------------------------------------------------

def file_state(s: Settings, file: str | Path) -> dict[str, Any]:
    """``vstudio blender state``: status, lock, revisions and the changed files it uses."""
    return dict(run_json(s, "blender", "state", os.path.abspath(file), cwd=_dir(file)))


def lock(s: Settings, file: str | Path, message: str = "") -> str:
    return run(s, "lock", os.path.abspath(file), "-m", message, cwd=_dir(file)).strip()


def unlock(s: Settings, file: str | Path, force: bool = False) -> str:
    extra = ["--force"] if force else []
    return run(s, "unlock", os.path.abspath(file), *extra, cwd=_dir(file)).strip()


def commit(s: Settings, file: str | Path, message: str,
           also: list[str] | None = None) -> dict[str, Any]:
    """Commit ``file`` and ``also`` (working-copy paths); ``{rev, changed}``."""
    wc = working_copy(_dir(file))
    root = wc["root"] if wc else _dir(file)
    paths = [os.path.abspath(file), *(os.path.join(root, p) for p in also or [])]
    return dict(run_json(s, "commit", *paths, "-m", message, cwd=_dir(file)))


def update(s: Settings, file: str | Path) -> dict[str, Any]:
    """Update the working copy holding ``file``; ``{rev, updated, added, removed, ...}``."""
    return dict(run_json(s, "update", cwd=_dir(file)))


def history(s: Settings, file: str | Path, limit: int = 50) -> list[dict[str, Any]]:
    return list(run_json(s, "log", os.path.abspath(file), "--limit", str(limit),
                         cwd=_dir(file)))


def revision_copy(s: Settings, file: str | Path, rev: int) -> Path:
    """``file`` as of ``rev`` in a read-only temporary file (its name says the revision)."""
    p = Path(os.path.abspath(file))
    wc = working_copy(p.parent) or {}
    folder = (Path(tempfile.gettempdir()) / f"vstudio-{getpass.getuser()}" / "revisions"
              / str(wc.get("project", "files")) / f"r{int(rev)}")
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{p.stem}.r{int(rev)}{p.suffix}"
    if dest.exists():
        dest.chmod(stat.S_IRUSR | stat.S_IWUSR)
    part = dest.with_name(dest.name + ".part")
    run(s, "cat", f"{p}@{int(rev)}", cwd=str(p.parent), out=part)
    os.replace(part, dest)
    dest.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return dest


# -- the farm --------------------------------------------------------------------------

def submit(s: Settings, file: str | Path, frames: str, *, chunk: int = 0, priority: int = 50,
           profile: str = "", encode: str = "", committed: bool = False) -> dict[str, Any]:
    """Submit the saved ``file`` (or its committed revision); ``{id, url, inputs}``."""
    server, token = server_and_token(s, file)
    if not server:
        raise CliError("error: no server: set the server URL in the add-on's preferences")
    args = ["blender", "submit", os.path.abspath(file), "--frames", frames,
            "--priority", str(priority)]
    if chunk:
        args += ["--chunk", str(chunk)]
    if profile:
        args += ["--profile", profile]
    if encode:
        args += ["--encode", encode]
    if committed:
        args.append("--committed")
    wc = working_copy(_dir(file))
    if wc and wc.get("server", "").rstrip("/") == server and wc.get("project"):
        args += ["--project", str(wc["project"])]
    return dict(run_json(s, *args, cwd=_dir(file), server=server, token=token))


def job(s: Settings, file: str | Path | None, job_id: int) -> dict[str, Any]:
    server, token = server_and_token(s, file)
    return dict(run_json(s, "jobs", "show", str(int(job_id)), server=server, token=token))


def job_url(s: Settings, file: str | Path | None, job_id: int) -> str:
    return f"{server_and_token(s, file)[0]}/jobs/{int(job_id)}"


def fetch(s: Settings, file: str | Path, job_id: int) -> list[dict[str, Any]]:
    """Download a finished job's frames and video to ``render/<name>-job<ID>/`` beside it."""
    p = Path(os.path.abspath(file))
    dest = p.parent / "render" / f"{p.stem}-job{int(job_id)}"
    server, token = server_and_token(s, file)
    return list(run_json(s, "jobs", "fetch", str(int(job_id)), str(dest),
                         server=server, token=token))


def render(s: Settings, file: str | Path, farm: bool = False,
           profile: str = "") -> list[dict[str, Any]]:
    """``vstudio render FILE``: this shot and what it needs, locally or on the farm."""
    args = ["render", os.path.abspath(file)]
    server, token = server_and_token(s, file)
    if farm:
        if not server:
            raise CliError("error: no server: set the server URL in the add-on's preferences")
        args += ["--farm", server]
    if profile:
        args += ["--profile", profile]
    return list(run_json(s, *args, cwd=_dir(file), server=server, token=token))


# -- words for the panel ---------------------------------------------------------------

def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def when_short(t: float) -> str:
    """``Dec 06 09:10``: for the narrow sidebar's lists (the year only when not this one)."""
    lt = time.localtime(t)
    return time.strftime("%b %d %H:%M" if lt.tm_year == time.localtime().tm_year
                         else "%Y-%m-%d", lt)


def describe(state: dict[str, Any]) -> str:
    """One line for the header: ``locked by ana since 2026-12-05 09:10``, ``up to date``…"""
    text = str(state.get("summary", ""))
    lk = state.get("lock")
    if lk and text.startswith(f"locked by {lk['owner']}"):
        text += f" since {when(lk['time'])}"
    return text


def held_by_other(state: dict[str, Any]) -> str:
    """The warning for a file someone else holds, or '' (what load_post and save_pre show)."""
    lk = state.get("lock")
    if not lk or lk["owner"] == state.get("user"):
        return ""
    why = f" ({lk['message']})" if lk.get("message") else ""
    return (f"{state['file']} is locked by {lk['owner']} since {when(lk['time'])}{why}: "
            "your changes cannot be committed until they unlock it")


def render_summary(items: list[dict[str, Any]]) -> str:
    counts = {k: sum(1 for i in items if i.get("status") == k)
              for k in ("rendered", "cached", "failed")}
    return f"{counts['rendered']} rendered, {counts['cached']} cached, {counts['failed']} failed"


def job_line(j: dict[str, Any]) -> str:
    return f"job {j['id']} {j['status']} {float(j.get('progress') or 0):.0f}%"
