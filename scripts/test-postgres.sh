#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for one test run (the ctest fixture
# PgServer) or one benchmark: `start DIR` makes a fresh cluster in DIR/data
# listening only on the Unix socket in DIR; `stop DIR` stops it and removes
# DIR. As root, initdb and postgres run as the `postgres` user (they refuse
# root). Connect with: host=DIR user=postgres dbname=postgres
set -euo pipefail

action=${1:?usage: test-postgres.sh start|stop DIR}
dir=${2:?usage: test-postgres.sh start|stop DIR}
bin=${HERD_POSTGRES_BIN:-/usr/lib/postgresql/15/bin}

as_owner=()
if [[ $(id -u) -eq 0 ]]; then as_owner=(runuser -u postgres --); fi

stop() {
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

case "$action" in
  start)
    if [[ ! -x "$bin/initdb" ]]; then
      echo "test-postgres: $bin/initdb not found: run ./scripts/setup.sh (postgresql-15)" >&2
      exit 1
    fi
    stop  # a server left by an interrupted run
    rm -rf "$dir"
    mkdir -p "$dir"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
    "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
      -o "-k $dir -c listen_addresses='' -c max_connections=300" start >/dev/null ||
      { cat "$dir/log" >&2; exit 1; }
    echo "test-postgres: running, connect with host=$dir user=postgres dbname=postgres"
    ;;
  stop)
    stop
    rm -rf "$dir"
    ;;
  *)
    echo "usage: test-postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
