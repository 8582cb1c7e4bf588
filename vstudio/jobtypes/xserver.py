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
import subprocess
import sys


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
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "640x480x24",
                               "-nolisten", "tcp"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as r:
        display = r.readline().strip()  # written once the server accepts clients
    try:
        if not display:
            print("error: Xvfb did not start", file=sys.stderr)
            return 1
        return subprocess.run(argv, env={**os.environ, "DISPLAY": f":{display}"}).returncode
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
