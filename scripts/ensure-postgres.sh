#!/usr/bin/env bash
# Make sure a PostgreSQL server answers at 127.0.0.1:5432 with trust auth for the tests.
# On this project's machines one already runs; elsewhere (as root) install and start one.
set -euo pipefail
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-postgres: no PostgreSQL at 127.0.0.1:5432; install one (apt-get install postgresql) and allow trust auth for 127.0.0.1" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
dpkg -s postgresql >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq postgresql >/dev/null; }
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
conf=/etc/postgresql/$ver/main
if [ -f "$conf/pg_hba.conf" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
fi
(pg_ctlcluster "$ver" main start || service postgresql start) >/dev/null 2>&1 || true
for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "ensure-postgres: PostgreSQL did not start" >&2; exit 1; }
psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
