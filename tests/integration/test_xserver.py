"""The private X display a program without ``$DISPLAY`` (Krita) runs under: a real Xvfb."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import need
from vstudio.jobtypes import xserver

# connects to the X socket of $DISPLAY as an X client would; exit 3 when it cannot
_CLIENT = ("import os, socket; s = socket.socket(socket.AF_UNIX); "
           "s.connect('/tmp/.X11-unix/X' + os.environ['DISPLAY'].lstrip(':')); print('ok')")


def test_the_program_runs_with_a_display_that_accepts_clients() -> None:
    need("Xvfb", "apt-get install xvfb")
    p = subprocess.run([sys.executable, "-m", "vstudio.jobtypes.xserver", sys.executable,
                        "-c", _CLIENT], env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                       text=True, timeout=60)
    assert (p.returncode, p.stdout.strip()) == (0, "ok"), p.stderr


def test_a_display_nobody_serves_is_not_taken() -> None:
    need("Xvfb", "apt-get install xvfb")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not xserver._accepting(gone, "987", timeout=1.0)  # the server died
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:  # runs, but display 987 has no socket: refused after the timeout
        assert not xserver._accepting(alive, "987", timeout=0.3)
    finally:
        alive.kill()
        alive.wait()


def test_no_program_is_bad_usage() -> None:
    assert xserver.main([]) == 2
