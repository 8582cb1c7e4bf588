"""Runs inside Blender: performs steps through the installed add-on and records what it saw.

``blender -b FILE --python blender_driver.py -- STEPS.json OUT.json``. A step is
``{"op": NAME, "args": {...}}`` (``bpy.ops.vstudio.NAME``) or ``{"py": CODE}``. After
each, the add-on's background calls are drained (no event loop runs under ``-b``) and the
step's reports, the open file's state and the jobs are written out for the test to check.
"""

import json
import sys
import time
import traceback

import bpy
from vstudio_blender import core, ui
from vstudio_blender.app import APP


def record(step, seconds, seen):
    file = bpy.data.filepath
    state = APP.state(file) if file else None
    return {"step": step, "seconds": seconds, "messages": APP.messages[seen:],
            "file": file, "state": state, "line": ui.state_line(file)[0],
            "error": APP.errors.get(file), "jobs": {str(k): v for k, v in APP.jobs.items()},
            "history": APP.history.get(file), "renders": APP.renders.get(file),
            "locks": ui.lock_lines(state) if state else []}


def main():
    args = sys.argv[sys.argv.index("--") + 1:]
    with open(args[0]) as f:
        steps = json.load(f)
    out = []
    seen = 0
    APP.runner.drain()  # what load_post started
    out.append(record({"py": "load"}, 0.0, seen))
    seen = len(APP.messages)
    for step in steps:
        t = time.perf_counter()
        try:
            if "op" in step:
                getattr(bpy.ops.vstudio, step["op"])(**step.get("args", {}))
            else:
                exec(step["py"], {"bpy": bpy, "APP": APP, "core": core})
        except Exception as e:
            APP.messages.append(("EXCEPTION", f"{type(e).__name__}: {e}"))
            traceback.print_exc()
        seconds = time.perf_counter() - t
        APP.runner.drain(step.get("timeout", 300))
        out.append(record(step, seconds, seen))
        seen = len(APP.messages)
    with open(args[1], "w") as f:
        json.dump(out, f, indent=1, default=str)


main()
