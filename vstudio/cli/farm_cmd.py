"""``submit``, ``jobs`` and ``workers``: the render farm from the command line (over HTTP)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from vstudio.cli.common import emit, json_option, server_options
from vstudio.client.http import ApiClient
from vstudio.farm.hours import describe
from vstudio.farm.model import JOB_STATUSES

FINAL = ("done", "failed", "canceled")


class Api(ApiClient):
    """The farm's HTTP API from the command line."""


def __getattr__(name: str) -> Any:
    # ``vstudio submit`` is registered as ``farm_cmd:submit_group``; it lives next door.
    if name == "submit_group":
        from vstudio.cli.farm_submit import submit_group

        return submit_group
    raise AttributeError(name)


# -- jobs ------------------------------------------------------------------------------
@click.group("jobs", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with no subcommand: ls).")
@click.pass_context
def jobs_group(ctx: click.Context, as_json: bool) -> None:
    """List, inspect and steer jobs (default: ls)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(jobs_ls, as_json=as_json)


def _human_jobs(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no jobs")
    for j in rows:
        click.echo(f"{j['id']:>6}  {j['status']:<9} {j['progress']:>5.1f}%  "
                   f"{j['tasks_done']}/{j['tasks_total']} tasks  p{j['priority']:<3} "
                   f"{j['owner']:<12} {j['name']}")
        if j.get("reason"):
            click.echo(f"        {j['reason']}")


@jobs_group.command("ls")
@click.option("--owner", default=None)
@click.option("--status", type=click.Choice(JOB_STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100)
@json_option
@server_options
def jobs_ls(owner: str | None, status: str | None, limit: int, as_json: bool, server: str,
            token: str | None) -> None:
    """Jobs, newest first."""
    rows = Api(server, token).call("GET", "/api/jobs", owner=owner, status=status, limit=limit)
    emit(rows, as_json, _human_jobs)


def _human_job(j: dict[str, Any]) -> None:
    click.echo(f"job {j['id']} {j['name']!r} by {j['owner']}: {j['status']}, "
               f"{j['progress']:.1f}%, priority {j['priority']}")
    if j.get("reason"):
        click.echo(f"  {j['reason']}")
    for t in j.get("tasks", []):
        extra = f" on {t['worker']}" if t["worker"] else ""
        err = f"  ({t['error']})" if t.get("error") and t["status"] != "done" else ""
        click.echo(f"  task {t['id']:>6} {t['block']:<10} {t['frames']:<12} {t['status']:<9}"
                   f" {t['progress']:>5.1f}%{extra}{err}")
    for b in j.get("blocklist", []):
        click.echo(f"  blocklisted: {b['worker']} ({b['failures']} failures)")


@jobs_group.command("show")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@json_option
@server_options
def jobs_show(job_id: int, as_json: bool, server: str, token: str | None) -> None:
    """A job with its blocks and tasks."""
    emit(Api(server, token).call("GET", f"/api/jobs/{job_id}"), as_json, _human_job)


@jobs_group.command("watch")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@json_option
@server_options
def jobs_watch(job_id: int, as_json: bool, server: str, token: str | None) -> None:
    """Follow a job's progress live until it is done, failed or canceled."""
    import httpx

    api = Api(server, token)
    job = api.call("GET", f"/api/jobs/{job_id}", tasks=False)
    last = None
    while job["status"] not in FINAL:
        line = (job["status"], job["progress"], job["tasks_done"])
        if line != last:
            _watch_line(job, as_json)
            last = line
        try:  # wait for an event of this job, then read its state
            with api.http.stream("GET", "/api/events", params={"job": job_id},
                                 timeout=httpx.Timeout(60, read=20)) as r:
                for text in r.iter_lines():
                    if text.startswith("data:"):
                        break
        except httpx.HTTPError:
            time.sleep(1)
        job = api.call("GET", f"/api/jobs/{job_id}", tasks=False)
    _watch_line(job, as_json)
    if job["status"] != "done":
        sys.exit(1)


def _watch_line(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({k: job[k] for k in ("id", "status", "progress", "tasks_done",
                                                   "tasks_total")}))
    else:
        click.echo(f"job {job['id']}: {job['status']} {job['progress']:.1f}% "
                   f"({job['tasks_done']}/{job['tasks_total']} tasks)")


def _job_action(name: str, method: str = "POST") -> click.Command:
    @click.command(name)
    @click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
    @json_option
    @server_options
    def cmd(job_id: int, as_json: bool, server: str, token: str | None) -> None:
        api = Api(server, token)
        if method == "DELETE":
            api.call("DELETE", f"/api/jobs/{job_id}")
            emit({"id": job_id, "deleted": True}, as_json,
                 lambda d: click.echo(f"deleted job {d['id']}"))
            return
        job = api.call("POST", f"/api/jobs/{job_id}/{name}")
        emit(job, as_json, lambda j: click.echo(f"job {j['id']}: {j['status']}"))

    cmd.help = {"pause": "Hand out no new task of a job.", "resume": "Resume a paused job.",
                "cancel": "Cancel a job and stop its running tasks.",
                "retry": "Queue a job's failed and canceled tasks again.",
                "delete": "Delete a job and its records."}[name]
    return cmd


for _n in ("pause", "resume", "cancel", "retry"):
    jobs_group.add_command(_job_action(_n))
jobs_group.add_command(_job_action("delete", "DELETE"))


@jobs_group.command("priority")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@click.argument("priority", type=click.IntRange(0, 100))
@json_option
@server_options
def jobs_priority(job_id: int, priority: int, as_json: bool, server: str,
                  token: str | None) -> None:
    """Change a job's priority (0-100, higher first)."""
    job = Api(server, token).call("POST", f"/api/jobs/{job_id}/priority", {"priority": priority})
    emit(job, as_json, lambda j: click.echo(f"job {j['id']}: priority {j['priority']}"))


@jobs_group.command("tags")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@click.argument("tags", nargs=-1)
@click.option("--block", help="Only this block (default: every block of the job).")
@json_option
@server_options
def jobs_tags(job_id: int, tags: tuple[str, ...], block: str | None, as_json: bool,
              server: str, token: str | None) -> None:
    """Set the tags a render node needs to take a job's tasks (none: any node)."""
    job = Api(server, token).call("PUT", f"/api/jobs/{job_id}/tags",
                                  {"tags": list(tags), "block": block})
    emit(job, as_json, lambda j: click.echo(
        f"job {j['id']}: tags {', '.join(tags) or '(none)'}"))


@jobs_group.command("clear-blocklist")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@server_options
def jobs_clear_blocklist(job_id: int, server: str, token: str | None) -> None:
    """Let the workers kept off a job (too many failures) take its tasks again."""
    Api(server, token).call("DELETE", f"/api/jobs/{job_id}/blocklist")
    click.echo(f"job {job_id}: blocklist cleared")


@jobs_group.command("retry-task")
@click.argument("task_id", type=click.IntRange(1, 2**31 - 1))
@server_options
def jobs_retry_task(task_id: int, server: str, token: str | None) -> None:
    """Queue one task again."""
    Api(server, token).call("POST", f"/api/tasks/{task_id}/retry")
    click.echo(f"task {task_id} queued")


@jobs_group.command("log")
@click.argument("task_id", type=click.IntRange(1, 2**31 - 1))
@json_option
@server_options
def jobs_log(task_id: int, as_json: bool, server: str, token: str | None) -> None:
    """A task's log."""
    data = Api(server, token).call("GET", f"/api/tasks/{task_id}/log", limit=10_000)
    emit(data, as_json, lambda d: click.echo("\n".join(x["line"] for x in d["lines"])))


@jobs_group.command("fetch")
@click.argument("job_id", type=click.IntRange(1, 2**31 - 1))
@click.argument("dest", type=click.Path(file_okay=False))
@json_option
@server_options
def jobs_fetch(job_id: int, dest: str, as_json: bool, server: str, token: str | None) -> None:
    """Download a job's outputs into DEST/BLOCK/NAME."""
    api = Api(server, token)
    outputs = api.call("GET", f"/api/jobs/{job_id}/outputs")
    from vstudio.farm.wire import remember_rows
    from vstudio.store.remote import RemoteStore

    store: Any = RemoteStore(server, token)
    remember_rows(store, outputs)
    root = Path(dest)
    written = []
    for o in outputs:
        name = Path(o["name"]).name  # never let a recorded name escape DEST
        if not name or name in (".", ".."):
            continue
        target = root / Path(o["block"]).name / name
        target.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(o["oid"], target)
        written.append({"path": str(target), "oid": o["oid"], "frame": o["frame"]})
    emit(written, as_json, lambda d: click.echo(f"fetched {len(d)} file(s) into {root}"))


# -- workers ---------------------------------------------------------------------------
def _usage(w: dict[str, Any]) -> str:
    if w.get("cpu_use") is None:
        return ""
    return f"  cpu {w['cpu_use']:.0f}% mem {w['mem_use']:.0f}%"


def _human_workers(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("no workers")
    for w in rows:
        # the server names only tasks of jobs you may see; it counts the others
        others = w.get("other_tasks", 0)
        tasks = ",".join(map(str, w["tasks"])) or ("" if others else "-")
        if others:
            tasks += f"{' +' if w['tasks'] else ''}{others} of jobs you may not see"
        state = "off schedule" if w.get("off_schedule") and not (w["tasks"] or others) \
            and w["state"] not in ("offline", "disabled") else w["state"]
        hours = (f"  hours {describe(w['schedule'], w.get('schedule_tz'))}"
                 if w.get("schedule") else "")
        click.echo(f"{w['id']:>4}  {w['name']:<24} {state:<9} slots {w['slots']}  "
                   f"tasks {tasks}  tags {','.join(w['tags']) or '-'}{hours}{_usage(w)}")


@click.group("workers", invoke_without_command=True)
@click.option("--drain", type=click.IntRange(1, 2**31 - 1), default=None, metavar="ID",
              help="let worker ID finish its tasks and take no new ones")
@click.option("--disable", type=click.IntRange(1, 2**31 - 1), default=None, metavar="ID")
@click.option("--enable", type=click.IntRange(1, 2**31 - 1), default=None, metavar="ID")
@json_option
@click.option("--server", metavar="URL", default=None,
              help="Studio server URL (default: $VSTUDIO_SERVER).")
@click.option("--token", metavar="TOKEN", default=None,
              help="API token (default: $VSTUDIO_TOKEN).")
@click.pass_context
def workers_cmd(ctx: click.Context, drain: int | None, disable: int | None,
                enable: int | None, as_json: bool, server: str | None,
                token: str | None) -> None:
    """Render nodes: state, tasks, tags (and drain/disable/enable one; tags, schedule)."""
    if ctx.invoked_subcommand is not None:
        return
    ctx.invoke(_workers_ls, drain=drain, disable=disable, enable=enable, as_json=as_json,
               server=server, token=token)


@server_options
def _workers_ls(drain: int | None, disable: int | None, enable: int | None, as_json: bool,
                server: str, token: str | None) -> None:
    api = Api(server, token)
    for action, wid in (("drain", drain), ("disable", disable), ("enable", enable)):
        if wid is not None:
            api.call("POST", f"/api/workers/{wid}/{action}")
    emit(api.call("GET", "/api/workers"), as_json, _human_workers)


def _worker_id(api: Api, name: str) -> int:
    """A worker by name (or id, as ``vstudio workers`` lists them)."""
    rows = api.call("GET", "/api/workers")
    for w in rows:
        if w["name"] == name or str(w["id"]) == name:
            return int(w["id"])
    known = ", ".join(w["name"] for w in rows) or "none registered"
    raise click.ClickException(f"no render node {name!r} (known: {known})")


@workers_cmd.command("tags")
@click.argument("name")
@click.argument("tags", nargs=-1)
@click.option("--node", "own", is_flag=True,
              help="Use the node's own tags again (from its next registration).")
@json_option
@server_options
def workers_tags(name: str, tags: tuple[str, ...], own: bool, as_json: bool, server: str,
                 token: str | None) -> None:
    """Set the tags of render node NAME (admin): jobs needing a tag go to nodes that have
    it. They outlive the node's restarts; no TAG: none."""
    if own and tags:
        raise click.UsageError("give tags or --node, not both")
    api = Api(server, token)
    w = api.call("PUT", f"/api/workers/{_worker_id(api, name)}/tags",
                 {"tags": None if own else list(tags)})
    emit(w, as_json, lambda w: click.echo(
        f"{w['name']}: tags {', '.join(w['tags']) or '(none)'}"
        + ("" if w["tags_fixed"] else " (the node's own from its next registration)")))


@workers_cmd.command("schedule")
@click.argument("name")
@click.argument("schedule", default="")
@click.option("--tz", metavar="ZONE", default=None,
              help="The node's time zone, an IANA name such as Europe/Berlin: the hours are "
                   "read on its clock (\"\": the manager's; not given: as it was).")
@json_option
@server_options
def workers_schedule(name: str, schedule: str, tz: str | None, as_json: bool, server: str,
                     token: str | None) -> None:
    """Set the hours when render node NAME may render (admin), e.g.
    "mon-fri 19:00-08:00, sat-sun 00:00-24:00", on the node's clock (--tz) or else the
    manager's; no SCHEDULE: always."""
    api = Api(server, token)
    body = {"schedule": schedule} if tz is None else {"schedule": schedule, "tz": tz}
    w = api.call("PUT", f"/api/workers/{_worker_id(api, name)}/schedule", body)
    emit(w, as_json, lambda w: click.echo(
        f"{w['name']}: renders "
        + (describe(w["schedule"], w.get("schedule_tz")) if w["schedule"] else "at any time")
        + (" (off schedule now)" if w["off_schedule"] else "")))
