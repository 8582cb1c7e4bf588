"""Run a program that needs an X display (Debian's Krita) on a machine without one.

Krita 5 forces Qt's ``xcb`` platform, so ``QT_QPA_PLATFORM=offscreen`` does not make it
headless: it aborts with "no Qt platform plugin could be initialized". Without
``$DISPLAY`` the program runs under a private ``Xvfb`` (Debian package ``xvfb``) that
picks a free display itself (``-displayfd``), so parallel renders never race for one.

    python -m vstudio.jobtypes.xserver PROGRAM ARGS...
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time


def wrap(argv: list[str]) -> list[str]:
    """``argv`` as it is with a display, else run through this module."""
    if os.environ.get("DISPLAY"):
        return argv
    return [sys.executable, "-m", "vstudio.jobtypes.xserver", *argv]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m vstudio.jobtypes.xserver PROGRAM ARGS...", file=sys.stderr)
        return 2
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        print("error: Xvfb is not installed (apt-get install xvfb); "
              f"{os.path.basename(argv[0])} needs an X display", file=sys.stderr)
        return 1
    for _ in range(TRIES):
        server, display = _start(xvfb)
        try:
            # The number Xvfb hands back has once been one a client could not connect to
            # (a full test run: Krita "could not connect to display :0"); a program that
            # finds no display fails its whole task, so the display is checked first.
            if display and _accepting(server, display):
                env = {**os.environ, "DISPLAY": f":{display}"}
                return subprocess.run(argv, env=env).returncode
        finally:
            server.terminate()
            server.wait()
    print(f"error: Xvfb did not start a display {TRIES} times", file=sys.stderr)
    return 1


TRIES = 3  # Xvfb starts a fresh server each time: a display refused twice is not chance


def _start(xvfb: str) -> tuple[subprocess.Popen[bytes], str]:
    """A private Xvfb on a display it picks itself, and that display's number."""
    read, write = os.pipe()
    # -noreset: an X server resets when its last client disconnects, and a client that
    # connects during the reset is refused; Qt (Krita) and the check below open and close
    # connections of their own, so without it a render failed now and then with "could not
    # connect to display" / "no Qt platform plugin could be initialized".
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "640x480x24",
                               "-nolisten", "tcp", "-noreset"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as r:
        return server, r.readline().strip()  # written once the server accepts clients


def _accepting(server: subprocess.Popen[bytes], display: str, timeout: float = 5.0) -> bool:
    """Whether ``server`` runs and a client connects to its display's socket."""
    path = f"/tmp/.X11-unix/X{display}"
    deadline = time.monotonic() + timeout
    while server.poll() is None and time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(path)
                return True
            except OSError:
                time.sleep(0.05)
    return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
