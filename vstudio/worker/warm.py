"""A warm Blender per slot: one long-lived ``blender -b`` that renders task after task.

Starting Blender (~0.8 s) and opening the .blend (up to ~0.9 s) dominated small chunks. A
session keeps one Blender process alive, driven by JSON lines on its stdin; it re-opens the
file only when the task's file, inputs or settings changed. The task's inputs are hard-linked
into a folder of the session's own, so ``//relative`` textures and libraries still resolve
after the task folder that brought them is gone.

Replies come on stdout after a marker with a per-session random nonce, so neither Blender's
echo of a script nor a file's text can fake one. Render output (``Fra:``, ``Saved:``) goes
through the same parser and output checks as a cold ``blender`` command. The process is its
own session leader: cancel and timeouts kill the group, and the worker starts a new session.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vstudio.jobtypes.base import Invocation
from vstudio.jobtypes.blender import settings_script
from vstudio.worker.runner import DIE_WITH_PARENT, Run, RunResult, ignore

# Runs inside Blender. Settings scripts end with SystemExit(code) on a refused task, as they
# do on the command path; the code is passed back so messages stay the same.
_DRIVER = r"""
import bpy, ctypes, json, os, sys, traceback
_libc = ctypes.CDLL(None)
_mark = os.environ["VSTUDIO_WARM_MARK"]
def _reply(**kw):
    sys.stdout.flush()
    _libc.fflush(None)  # Blender's own C-level lines first, then the reply
    sys.stdout.write(_mark + " " + json.dumps(kw) + "\n")
    sys.stdout.flush()
_reply(ready=True, pid=os.getpid())
for _line in sys.stdin:
    try:
        _cmd = json.loads(_line)
    except ValueError:
        continue
    try:
        if _cmd.get("load"):
            bpy.ops.wm.open_mainfile(filepath=_cmd["file"], load_ui=False,
                                     use_scripts=bool(_cmd.get("trusted")))
        _want = _cmd["settings"].get("scene")
        _wins = bpy.context.window_manager.windows
        if _want and _want in bpy.data.scenes and _wins:  # as -S does; else the script says
            _wins[0].scene = bpy.data.scenes[_want]
        _sc = bpy.context.scene
        if _cmd.get("engine"):
            _sc.render.engine = _cmd["engine"]
        try:
            exec(_cmd["script"], {"bpy": bpy, "__name__": "vstudio_settings"})
        except SystemExit as _e:
            _reply(done=True, code=_e.code if isinstance(_e.code, int) else 1)
            continue
        if _cmd.get("post"):  # as a second --python-expr after the settings script
            exec(_cmd["post"], {"bpy": bpy, "__name__": "vstudio_post"})
        _sc = bpy.context.scene
        _sc.render.filepath = _cmd["out"]
        _sc.render.image_settings.file_format = _cmd["format"]
        _sc.render.use_file_extension = True
        if _cmd.get("threads"):
            _sc.render.threads_mode = "FIXED"
            _sc.render.threads = _cmd["threads"]
        for _a, _b in _cmd["runs"]:
            _sc.frame_start, _sc.frame_end = _a, _b
            bpy.ops.render.render(animation=True)
        _reply(done=True, code=0)
    except Exception as _e:
        traceback.print_exc()
        sys.stderr.flush()
        # last, so that it is the error the task reports
        print("vstudio" + ": " + (str(_e).strip().splitlines() or [type(_e).__name__])[-1],
              flush=True)
        _reply(done=True, code=1, failed=True)
"""


def _runs(frames: list[int]) -> list[list[int]]:
    """Contiguous [first, last] ranges of ``frames`` (sorted)."""
    out: list[list[int]] = []
    for f in frames:
        if out and f == out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out


class BlenderSession:
    """One Blender process for one slot. Not thread-safe: a slot uses it for one task at a time."""

    def __init__(self, workdir: Path, threads: int | None = None) -> None:
        self.workdir = workdir
        self.threads = threads
        self.mark = "\x1evstudio-warm-" + secrets.token_hex(8)
        self.proc: subprocess.Popen[bytes] | None = None
        self.key: str | None = None  # what is open: file, inputs and settings
        self.tasks = 0
        self.buf = b""
        self.ran_scripts = False  # a trusted file was opened with its scripts allowed
        self.file = ""  # the file last opened (a pool prefers the session that has it)

    def start(self) -> BlenderSession:
        """Start Blender now, so that its start-up overlaps with waiting for work.

        Call from a long-lived thread: PDEATHSIG fires when the *thread* that forked exits.
        """
        exe = shutil.which("blender") or "blender"
        env = {**os.environ, "VSTUDIO_WARM_MARK": self.mark}
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            # the folder after "--" is for Blender's Python only; it names the process, so
            # that `pgrep -f` finds a node's sessions as it finds its task processes
            [exe, "-b", "-Y", "--python-expr", _DRIVER, "--", str(self.workdir)],
            cwd=self.workdir, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=DIE_WITH_PARENT)
        self.key, self.tasks, self.buf, self.ran_scripts = None, 0, b"", False
        self.file = ""
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def close(self, grace: float = 3.0) -> None:
        """End the session: EOF on stdin ends the driver's loop; then the group is killed."""
        p = self.proc
        if p is None:
            return
        try:
            if p.stdin is not None:
                p.stdin.close()
            p.wait(grace)
        except (OSError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        if p.stdout is not None:
            p.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.proc = None

    @staticmethod
    def _key(warm: dict[str, Any]) -> str:
        """What must match for a task to use the open file as it is."""
        # "version" (a local render's key of the file and all it reads) and "post" (a script
        # after the settings) are optional: a worker's inputs are content ids already
        key = json.dumps([warm["file"], warm["trusted"], sorted(warm["inputs"].items()),
                          warm["settings"], warm["engine"], warm.get("version"),
                          warm.get("post")])
        if warm["file"] not in warm["inputs"]:  # a shared-disk path: it may have changed
            st = os.stat(warm["file"])
            key += f"|{st.st_mtime_ns}|{st.st_size}"
        return key

    def _stage(self, warm: dict[str, Any]) -> tuple[str, bool]:
        """Where Blender opens the file, and whether it must (re)open it."""
        inputs: dict[str, str] = warm["inputs"]
        if warm["file"] not in inputs:  # a shared-disk path: opened where it is
            path = warm["file"]
        else:
            path = str(self.workdir / "files" / warm["file"])
        if self._key(warm) == self.key:
            return path, False
        files = self.workdir / "files"
        shutil.rmtree(files, ignore_errors=True)
        src_dir = Path(warm["files_dir"])
        for rel in inputs:
            dest = files / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src_dir / rel, dest)
            except OSError:
                shutil.copyfile(src_dir / rel, dest)
        self.key = None  # until Blender says it opened the file
        return path, True

    def stale_for(self, inv: Invocation) -> bool:
        """Whether ``inv`` needs a fresh process rather than this one."""
        assert inv.warm is not None
        return self.ran_scripts and self._key(inv.warm) != self.key

    def command(self, inv: Invocation) -> tuple[dict[str, Any], bool]:
        """The command for ``inv`` and whether it re-opens the file."""
        warm = inv.warm
        assert warm is not None
        path, load = self._stage(warm)
        self.ran_scripts |= load and bool(warm["trusted"])
        cmd = {"load": load, "file": path, "trusted": warm["trusted"],
               "settings": warm["settings"],
               "engine": warm["engine"], "script": settings_script(warm["settings"]),
               "out": warm["out"], "format": warm["format"], "post": warm.get("post"),
               "runs": _runs(sorted(inv.outputs)), "threads": self.threads}
        return cmd, load

    def opened(self, inv: Invocation) -> None:
        """Blender opened ``inv``'s file: the next task with the same key reuses it."""
        assert inv.warm is not None
        self.key = self._key(inv.warm)
        self.file = inv.warm["file"]


class WarmRun(Run):
    """A task rendered by a :class:`BlenderSession`; same callbacks and checks as :class:`Run`.

    ``session_lost`` says the session died on its own (not canceled): the caller renders the
    task again with a fresh ``blender`` command.
    """

    def __init__(self, session: BlenderSession, inv: Invocation,
                 on_progress: Callable[[float, int | None], None] = ignore,
                 on_log: Callable[[str], None] = ignore,
                 on_saved: Callable[[int, Path], None] = ignore) -> None:
        self._init_state(inv, on_progress, on_log, on_saved)
        self.session = session
        self.session_lost = False
        assert session.proc is not None
        self.proc = session.proc
        self.pgid = session.proc.pid
        cmd, self.load = session.command(inv)
        session.tasks += 1
        on_log(f"vstudio: warm blender session pid {session.pid}, task {session.tasks} of "
               f"the session, {'opening the file' if self.load else 'file already open'}")
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self.session_lost = True

    def wait(self) -> RunResult:
        if self.session_lost:
            return RunResult(returncode=-1, error="the warm blender session had ended")
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        mark = self.session.mark.encode()
        reply: dict[str, Any] | None = None
        s = self.session
        while reply is None:
            if b"\n" not in s.buf and b"\r" not in s.buf:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break  # end of output: the process is gone
                s.buf += chunk
                continue
            raw, s.buf = _first_line(s.buf)
            if not raw.startswith(mark):
                self._line(raw)
                continue
            with contextlib.suppress(ValueError):
                msg = json.loads(raw[len(mark):].decode())
                if msg.get("done"):  # not the "ready" of a fresh session
                    reply = msg
        seconds = time.monotonic() - self._started
        if reply is None:
            if self.session.buf:
                self._line(self.session.buf)
                self.session.buf = b""
            code = self.proc.wait()
            if self.canceled:
                self._signal(signal.SIGKILL)
                return self._result(code, seconds)
            self.session_lost = True
            return RunResult(returncode=code, seconds=seconds,
                             error=f"the warm blender session ended (code {code})")
        if reply.get("failed"):
            self.session.key = None  # the open file is unknown now: open it again next time
        elif self.load:
            self.session.opened(self.inv)
        return self._result(int(reply.get("code", 1)), seconds)


def _first_line(buf: bytes) -> tuple[bytes, bytes]:
    """Split at the first \\r or \\n (Blender redraws some lines with \\r)."""
    cut = min(i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0)
    return buf[:cut], buf[cut + 1:]
