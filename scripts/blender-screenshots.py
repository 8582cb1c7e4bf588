"""Screenshots of the Blender add-on for the README (run by hand; not a test).

    .venv/bin/python scripts/blender-screenshots.py [DEST]   (default: docs/screenshots)

Needs Debian's blender, xvfb (xvfb-run) and ffmpeg. Starts a throwaway studio and server
with a render node, a small working copy (a shot using a texture, two revisions, a lock of
ana's and one of ben's), installs the add-on into a temporary Blender user folder, then
runs Blender on a virtual screen: the add-on asks for the shot's state and history, the
shot goes to the farm and renders, and Blender photographs itself with
``bpy.ops.screen.screenshot``. Writes ``blender-sidebar.png`` (the vstudio tab: Repository,
Locks, Farm) and ``blender-window.png`` (the whole window, status bar included).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import start_server  # noqa: E402
from tests.helpers import VSTUDIO, cli, stop  # noqa: E402
from tests.render_projects import write_png  # noqa: E402
from vstudio.jobtypes.samples import make_blend  # noqa: E402
from vstudio.studio import init_studio  # noqa: E402

SCREEN = (1280, 800)

# Runs inside Blender (with a window): waits for the add-on's answers, then photographs.
INSIDE = r'''
import json, sys, time
import bpy
from vstudio_blender import ui
from vstudio_blender.app import APP

out = sys.argv[sys.argv.index("--") + 1]
# Only the vstudio tab in the sidebar, so it is the one shown (Blender 3.4 cannot switch
# tabs from Python), and the Locks list unfolded.
for cls in list(bpy.types.Panel.__subclasses__()):
    if (getattr(cls, "bl_space_type", "") == "VIEW_3D" and getattr(cls, "bl_region_type", "")
            == "UI" and getattr(cls, "bl_category", "") != "vstudio"):
        try:
            bpy.utils.unregister_class(cls)
        except RuntimeError:
            pass
bpy.utils.unregister_class(ui.VSTUDIO_PT_locks)
ui.VSTUDIO_PT_locks.bl_options = set()
bpy.utils.register_class(ui.VSTUDIO_PT_locks)

steps = ["state", "history", "submit", "done", "redraw", "shoot"]
started = time.monotonic()


def window():
    win = bpy.context.window_manager.windows[0]
    area = next(a for a in win.screen.areas if a.type == "VIEW_3D")
    return win, area


def tick():
    win, area = window()
    file = bpy.data.filepath
    if time.monotonic() - started > 240:
        print("SCREENSHOT-TIMEOUT", steps, APP.messages)
        bpy.ops.wm.quit_blender()
        return None
    step = steps[0]
    if step == "state" and APP.state(file):
        area.spaces[0].show_region_ui = True
        with bpy.context.temp_override(window=win, area=area):
            bpy.ops.vstudio.history()
        steps.pop(0)
    elif step == "history" and APP.history.get(file):
        with bpy.context.temp_override(window=win, area=area):
            bpy.ops.vstudio.submit(frames="1-2", chunk=1)
        steps.pop(0)
    elif step == "submit" and APP.jobs:
        steps.pop(0)
    elif step == "done" and all(j.get("status") == "done" for j in APP.jobs.values()):
        # Nothing active: the sidebar's Item tab (Blender's own Transform panel, which
        # cannot be unregistered) empties and goes, leaving the vstudio tab in front.
        bpy.context.view_layer.objects.active = None
        for ob in bpy.context.view_layer.objects:
            ob.select_set(False)
        steps.pop(0)
    elif step == "redraw":
        for a in win.screen.areas:
            a.tag_redraw()
        steps.pop(0)
        return 1.5  # the screenshot reads what is on screen: let it draw first
    elif step == "shoot":
        with bpy.context.temp_override(window=win, area=area):
            bpy.ops.screen.screenshot(filepath=out + "/window.png")
        region = next(r for r in area.regions if r.type == "UI")
        with open(out + "/rect.json", "w") as f:
            json.dump({"x": region.x, "y": region.y, "w": region.width, "h": region.height,
                       "win_h": win.height}, f)
        bpy.ops.wm.quit_blender()
        return None
    return 0.5


bpy.app.timers.register(tick, first_interval=2.0)
'''


def project(tmp: Path, url: str, ana: str, ben: str) -> Path:
    """ana's working copy: a needs-lock shot using a texture, two revisions, two locks."""
    wc = tmp / "ana"
    cli("checkout", f"{url}/film", str(wc), "--token", ana)
    write_png(wc / "tex" / "wall.png", 16, 16, (200, 190, 170))
    make_blend(wc / "shots" / "sh010.blend", frames=2, texture=wc / "tex" / "wall.png")
    cli("lock", "--rule", "*.blend", cwd=wc)
    cli("commit", "-m", "sh010: layout", cwd=wc)
    cli("lock", "shots/sh010.blend", "-m", "animating", cwd=wc)
    write_png(wc / "tex" / "wall.png", 16, 16, (180, 120, 90))
    cli("commit", "-m", "warmer wall", cwd=wc)
    ben_wc = tmp / "ben"
    cli("checkout", f"{url}/film", str(ben_wc), "--token", ben)
    cli("lock", "tex/wall.png", "-m", "repainting the wall", cwd=ben_wc)
    return wc / "shots" / "sh010.blend"


# 256 colours are plenty for Blender's flat theme and make the files a third the size
PALETTE = "split[a][b];[a]palettegen[p];[b][p]paletteuse"
SIDEBAR_H = 560  # the panels' height at the default UI scale; below it is empty viewport


def crop(src: Path, dest: Path, rect: dict[str, int]) -> None:
    top = rect["win_h"] - rect["y"] - rect["h"]  # Blender counts from the bottom
    h = min(rect["h"], SIDEBAR_H)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf",
                    f"crop={rect['w']}:{h}:{rect['x']}:{top},{PALETTE}", str(dest)],
                   check=True)


def main() -> None:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
    for exe, pkg in (("blender", "blender"), ("xvfb-run", "xvfb"), ("ffmpeg", "ffmpeg")):
        if not shutil.which(exe):
            sys.exit(f"error: {exe} is missing: apt-get install {pkg}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vstudio-blender-shots-") as t:
        tmp = Path(t)
        init_studio(tmp / "studio", store_url=None, db_url=None).close()
        server = start_server(tmp / "studio", tmp / "server.log")
        node = None
        try:
            cli("project", "create", "film", "--studio", str(tmp / "studio"))
            ana, ben = server.add_user("ana"), server.add_user("ben")
            shot = project(tmp, server.url, ana, ben)
            env = {"BLENDER_USER_CONFIG": str(tmp / "bl-config"),
                   "BLENDER_USER_SCRIPTS": str(tmp / "bl-scripts")}
            cli("blender", "install", env=env)
            log = open(tmp / "worker.log", "wb")  # noqa: SIM115 - handed to the child
            node = subprocess.Popen(
                [*VSTUDIO, "worker", "--server", server.url, "--token",
                 server.add_user("node1", "worker"), "--poll", "1", "--cache",
                 str(tmp / "wcache")], stdout=log, stderr=log)
            (tmp / "inside.py").write_text(INSIDE)
            clean = {k: v for k, v in os.environ.items()
                     if k not in ("VSTUDIO_TOKEN", "VSTUDIO_SERVER")}
            proc = subprocess.run(
                ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24",
                 "blender", str(shot), "--python", str(tmp / "inside.py"), "--", str(tmp)],
                env={**clean, **env}, capture_output=True, text=True, timeout=600)
            if not (tmp / "rect.json").is_file():
                sys.exit("error: Blender took no screenshot: "
                         + (proc.stdout + proc.stderr)[-2000:])
            rect = json.loads((tmp / "rect.json").read_text())
            crop(tmp / "window.png", dest / "blender-sidebar.png", rect)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp / "window.png"),
                            "-vf", f"scale=960:-1,{PALETTE}", str(dest / "blender-window.png")],
                           check=True)
        finally:
            if node is not None:
                stop(node)
            server.stop()
    for name in ("blender-sidebar.png", "blender-window.png"):
        print(dest / name)


if __name__ == "__main__":
    main()
