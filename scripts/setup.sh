#!/usr/bin/env bash
# Set up everything vstudio and its tests need on a fresh Debian/Ubuntu machine:
# system packages (when run as root), a virtualenv in .venv with the package and its
# test extras, and a PostgreSQL server at 127.0.0.1:5432 for the PostgreSQL tests.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS="blender synfig ffmpeg subversion fuse3 chromium restic s3fs postgresql-client rsync xz-utils krita inkscape xvfb gimp pencil2d"
if [ "${1:-}" = "--tests" ]; then
  # test-only: an http:// Subversion server (apache2 + mod_dav_svn) for svn-sync's test
  PKGS="$PKGS apache2 libapache2-mod-svn"
fi
missing=()
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# "compat" editable mode is a plain path entry: no import hook at every start-up, which
# keeps fast commands such as `vstudio status` fast (~10 ms less per run).
# (the test extras include py-spy, to profile a running mount: py-spy record -p PID)
.venv/bin/python -m pip install -q -e ".[test]" --config-settings editable_mode=compat

if [ "${1:-}" = "--tests" ]; then
  bash scripts/ensure-postgres.sh
  # A second S3 server for bench/bench_store.py (cheap ranged reads; moto copies the whole
  # object for each): npm's s3rver, in a project-local folder.
  if command -v npm >/dev/null && [ ! -x bench/node/node_modules/.bin/s3rver ]; then
    mkdir -p bench/node
    npm install -q --no-audit --no-fund --prefix bench/node s3rver@3 >/dev/null \
      || echo "setup: npm install s3rver failed: the S3 bench runs on moto only" >&2
  fi
fi
