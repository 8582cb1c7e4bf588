"""Commands on paths inside a mount: ``vstudio lock``/``unlock`` and ``vstudio mount-status``.

A writable mount already holds the project's location and its user's credentials, so a
command given a path inside it asks the mount, through the file's extended attributes,
instead of opening the project itself: ``setxattr user.vstudio.lock`` takes the lock as
the mount's user, removing it drops the lock, removing ``user.vstudio.lock.force`` breaks
someone else's. The mount's state is the JSON attribute ``user.vstudio.mount`` of its top
folder. No credentials or settings are needed here.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vstudio.errors import BadInput, Conflict, NotFound, PermissionDenied, VStudioError
from vstudio.mounttab import innermost, vstudio_table

# The names the writable mount answers to (``writefs``/``writens``, which need mfusepy:
# not imported here, so that 'vstudio lock' stays quick).
XLOCK = "user.vstudio.lock"
XLOCK_FORCE = "user.vstudio.lock.force"
XMOUNT = "user.vstudio.mount"


@dataclass(frozen=True)
class MountPath:
    mountpoint: Path
    rel: str  # inside the mount: "latest/a/b.blend", "r/3/x", "" for the top


def vstudio_mounts() -> list[Path]:
    """Mount points of vstudio mounts (live or stale), from /proc/self/mounts."""
    return list(vstudio_table())


def find_mount(path: str | Path, mounts: list[Path] | None = None) -> MountPath | None:
    """The vstudio mount holding ``path`` (the innermost one), or None."""
    target = Path(os.path.abspath(path))
    best = innermost(target, vstudio_mounts() if mounts is None else mounts)
    if best is None:
        return None
    return MountPath(best, target.relative_to(best).as_posix().strip("."))


def _repo_path(mp: MountPath, path: str | Path) -> str:
    if mp.rel == "latest" or not mp.rel.startswith("latest/"):
        raise BadInput(f"{path}: only files under {mp.mountpoint}/latest/ can be locked "
                       "(r/ and tags/ are history)")
    return mp.rel[len("latest/"):]


def _refused(e: OSError, path: str | Path, what: str) -> VStudioError:
    if e.errno == errno.ENOENT:
        return NotFound(f"{path}: no such file")
    if e.errno == errno.EISDIR:
        return BadInput(f"{path} is a folder: {what} files")
    if e.errno in (errno.EROFS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return BadInput(f"{path} is in a read-only mount: mount it with --write to {what}")
    if e.errno == errno.ENOTCONN:
        return VStudioError(f"{path}: the mount's process is gone; run "
                            "'vstudio umount' and mount again")
    return PermissionDenied(f"cannot {what} {path}: refused ({os.strerror(e.errno or 0)}); "
                            "the mount's log says why")


def lock(path: str | Path, message: str, mp: MountPath) -> tuple[str, str]:
    """Lock a file through its mount; (its repository path, the lock's owner)."""
    rel = _repo_path(mp, path)
    try:
        os.setxattr(path, XLOCK, message.encode())
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise Conflict(f"{rel} is locked by {_holder(path) or 'someone else'}") from None
        raise _refused(e, path, "lock") from None
    _settle_mode(path, writable=True)
    return rel, _holder(path) or "?"


def unlock(path: str | Path, force: bool, mp: MountPath) -> tuple[str, str]:
    """Drop (or with ``force`` break) a file's lock through its mount; (path, old owner)."""
    rel = _repo_path(mp, path)
    owner = _holder(path)
    if owner is not None and not force:
        me = _mount_user(mp)
        if me is not None and owner != me:
            raise Conflict(f"{rel} is locked by {owner}, not {me}: use --force to break "
                           "the lock")
    try:
        os.removexattr(path, XLOCK_FORCE if force else XLOCK)
    except OSError as e:
        if e.errno == errno.ENODATA:
            raise Conflict(f"{rel} is not locked") from None
        raise _refused(e, path, "unlock") from None
    return rel, owner or "?"


def _mount_user(mp: MountPath) -> str | None:
    try:
        return str(json.loads(os.getxattr(mp.mountpoint, XMOUNT)).get("user"))
    except (OSError, ValueError):
        return None


def _holder(path: str | Path) -> str | None:
    try:
        return os.getxattr(path, XLOCK).decode("utf-8", "replace")
    except OSError:
        return None


def _settle_mode(path: str | Path, writable: bool, timeout: float = 2.0) -> None:
    """Wait (briefly) until the kernel's cached mode of a needs-lock file shows the lock:
    the command then returns with the file writable, as a working copy's lock does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if bool(os.stat(path).st_mode & 0o200) == writable:
                return
        except OSError:
            return
        time.sleep(0.1)


def status(mountpoint: str | Path) -> dict[str, Any]:
    """A writable mount's state (what ``user.vstudio.mount`` of its top holds)."""
    mp = find_mount(mountpoint)
    if mp is None:
        raise NotFound(f"no vstudio mount at {mountpoint}")
    try:
        raw = os.getxattr(mp.mountpoint, XMOUNT)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise BadInput(f"{mp.mountpoint} is a read-only mount: it commits nothing") from None
        if e.errno == errno.ENOTCONN:
            raise VStudioError(f"the mount at {mp.mountpoint} is stale (its process died): "
                               "'vstudio umount' it, then mount again; changes left in "
                               "its write cache are committed by the next mount") from None
        raise VStudioError(f"cannot read the state of {mp.mountpoint}: "
                           f"{os.strerror(e.errno or 0)}") from None
    state: dict[str, Any] = json.loads(raw)
    state["mountpoint"] = str(mp.mountpoint)
    return state


def describe(state: dict[str, Any]) -> list[str]:
    """``vstudio mount-status`` as lines of text."""
    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"

    lines = [f"{state.get('mountpoint', '?')}: {state.get('project', '?')} "
             f"as {state.get('user', '?')}",
             f"pending changes: {state.get('pending', 0)}"]
    if state.get("last_rev"):
        lines.append(f"last commit: r{state['last_rev']} at {when(state.get('last_commit_at'))}")
    if state.get("error"):
        wait = max(0.0, (state.get("next_try") or time.time()) - time.time())
        lines.append(f"COMMIT FAILING since {when(state.get('failing_since'))} "
                     f"({state.get('failures', 0)} attempts; next in {wait:.0f} s): "
                     f"{state['error']}")
        lines.append(f"nothing is lost: the changes wait in {state.get('write_cache', '?')}")
    if "server_reachable" in state:
        lines.append("server: reachable" if state["server_reachable"] else
                     f"server: UNREACHABLE at {when(state.get('server_checked_at'))}: "
                     f"{state.get('server_error')}")
    if "cache_used" in state:
        lines.append(f"write cache: {_mib(state['cache_used'])} of "
                     f"{_mib(state.get('cache_max', 0))} used")
    return lines


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB"
