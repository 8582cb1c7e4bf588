"""Job types: each turns a task payload into one child process (argv, never a shell string).

``build(task, task_dir)`` returns the :class:`Invocation`; ``available(allow_commands)``
lists the types this machine can run, which is what a worker advertises to the manager.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any

from vstudio.jobtypes.base import (
    Event,
    Invocation,
    MissingInput,
    TaskError,
    TaskSpec,
    check_inputs,
)

__all__ = ["TYPES", "Event", "Invocation", "MissingInput", "TaskError", "TaskSpec",
           "available", "build"]

# type -> (module, programs of which one must be installed; empty: always available).
# A module may also define ``installed()`` for what else it needs (Krita: a display).
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "blender": ("vstudio.jobtypes.blender", ("blender",)),
    "synfig": ("vstudio.jobtypes.synfig", ("synfig",)),
    "krita": ("vstudio.jobtypes.krita", ("krita",)),
    "ffmpeg": ("vstudio.jobtypes.ffmpeg", ("ffmpeg",)),
    "inkscape": ("vstudio.jobtypes.inkscape", ("inkscape",)),
    "gimp": ("vstudio.jobtypes.gimp", ("gimp",)),
    "pencil2d": ("vstudio.jobtypes.pencil2d", ("pencil2d",)),
    "command": ("vstudio.jobtypes.command", ()),
}


def available(allow_commands: bool = False) -> list[str]:
    """The job types this machine can run; ``command`` only when explicitly allowed."""
    out = []
    for name, (module, programs) in TYPES.items():
        if name == "command" and not allow_commands:
            continue
        if programs and not any(shutil.which(p) for p in programs):
            continue
        check = getattr(import_module(module), "installed", None)
        if check is None or check():
            out.append(name)
    return out


def build(task: dict[str, Any], task_dir: Path, *, allow_commands: bool = False,
          allow_local_paths: bool = False) -> Invocation:
    """The invocation for ``task``; inputs must already be in ``task_dir/files``.

    ``allow_local_paths``: the task may name absolute paths on this machine's disk.
    """
    spec = replace(TaskSpec.from_payload(task), local_paths=allow_local_paths)
    if spec.type not in TYPES:
        raise TaskError(f"unknown job type {spec.type!r}")
    if spec.type == "command" and not allow_commands:
        raise TaskError("this worker does not run command tasks (start it with --allow-commands)")
    check_inputs(spec, task_dir / "files")
    module = import_module(TYPES[spec.type][0])
    inv: Invocation = module.build(spec, task_dir)
    return inv
