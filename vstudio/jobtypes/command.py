"""``command`` tasks: a raw argv, run only by workers started with ``--allow-commands``."""

from __future__ import annotations

from pathlib import Path

from vstudio.jobtypes.base import Invocation, PlainParser, TaskError, TaskSpec


def build(spec: TaskSpec, task_dir: Path) -> Invocation:
    argv = spec.params.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise TaskError("a command task needs argv: a non-empty list of strings")
    values = {"{start}": str(spec.start), "{end}": str(spec.end)}
    out: list[str] = []
    for arg in argv:
        for k, v in values.items():
            arg = arg.replace(k, v)
        out.append(arg)
    (task_dir / "out").mkdir(parents=True, exist_ok=True)
    return Invocation(argv=out, cwd=task_dir, outputs={}, parser=PlainParser(), label=out[0])
