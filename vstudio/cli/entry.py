"""Console entry point: kept tiny so that fast commands (``status``) start quickly.

Each command's module is imported only when that command runs (see ``COMMANDS``).
"""

from __future__ import annotations

import os
import sys

# command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "init": "vstudio.cli.studio_cmd:init_cmd",
    "project": "vstudio.cli.studio_cmd:project_group",
    "user": "vstudio.cli.studio_cmd:user_group",
    "serve": "vstudio.cli.serve_cmd:serve_cmd",
    "store": "vstudio.cli.store_cmd:store_group",
    "catalog": "vstudio.cli.history_cmd:catalog_group",
    "checkout": "vstudio.cli.wc_cmd:checkout_cmd",
    "status": "vstudio.cli.wc_cmd:status_cmd",
    "add": "vstudio.cli.wc_cmd:add_cmd",
    "rm": "vstudio.cli.wc_cmd:rm_cmd",
    "mv": "vstudio.cli.wc_cmd:mv_cmd",
    "commit": "vstudio.cli.wc_cmd:commit_cmd",
    "update": "vstudio.cli.wc_cmd:update_cmd",
    "log": "vstudio.cli.history_cmd:log_cmd",
    "diff": "vstudio.cli.wc_cmd:diff_cmd",
    "revert": "vstudio.cli.wc_cmd:revert_cmd",
    "lock": "vstudio.cli.lock_cmd:lock_cmd",
    "unlock": "vstudio.cli.lock_cmd:unlock_cmd",
    "cat": "vstudio.cli.history_cmd:cat_cmd",
    "tag": "vstudio.cli.history_cmd:tag_cmd",
    "info": "vstudio.cli.history_cmd:info_cmd",
    "svn-import": "vstudio.cli.svn_cmd:svn_import_cmd",
    "svn-sync": "vstudio.cli.svn_cmd:svn_sync_cmd",
    "submit": "vstudio.cli.farm_cmd:submit_group",
    "jobs": "vstudio.cli.farm_cmd:jobs_group",
    "workers": "vstudio.cli.farm_cmd:workers_cmd",
    "worker": "vstudio.cli.worker_cmd:worker_cmd",
    "demo": "vstudio.cli.demo_cmd:demo_cmd",
    "deps": "vstudio.cli.render_cmd:deps_cmd",
    "render": "vstudio.cli.render_cmd:render_cmd",
    "mount": "vstudio.cli.mount_cmd:mount_cmd",
    "umount": "vstudio.cli.mount_cmd:umount_cmd",
    "mount-status": "vstudio.cli.mount_cmd:mount_status_cmd",
    "blender": "vstudio.cli.blender_cmd:blender_group",
}

# Commands with a hand-made fast path that must not pay for click/rich imports.
FAST_PATHS: dict[str, str] = {
    "status": "vstudio.cli.fast_status:main",
    "render": "vstudio.render.noop:main",
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in FAST_PATHS and not os.environ.get("VSTUDIO_NO_FAST_PATH"):
        from importlib import import_module

        mod_name, _, attr = FAST_PATHS[args[0]].partition(":")
        code = getattr(import_module(mod_name), attr)(args[1:])
        if code is not None:  # None: the fast path declined, use the full CLI
            sys.exit(code)
    from vstudio.cli.app import run

    run(args)
