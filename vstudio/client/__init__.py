"""Clients of the studio server's HTTP API, used by the CLI, the render node, the mount
and remote project rendering; the domain packages never speak HTTP themselves.

- ``http``: one ``ApiClient`` mapping HTTP failures to the studio's errors;
- ``manager``: the render node's calls (register, next, progress, done, fail);
- ``repo``: the repository over HTTP (a working copy's remote backend, the mount's reader);
- ``farm``: the farm calls project rendering needs (``render --farm``).
"""
