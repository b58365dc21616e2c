#!/usr/bin/env bash
# A throwaway PostgreSQL for the Falco store's HA backend: Debian's server, its own data directory,
# listening on 127.0.0.1 only, on a free port. The server refuses to run as root, so it runs as the
# `postgres` user the package creates, with its data under a directory that user owns.
#   postgres.sh up STATE    -> prints `export AEGIS_POSTGRES_DSN=...`
#   postgres.sh down STATE
set -euo pipefail
cmd=${1:?up|down}
state=${2:?state directory}
bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
up)
  mkdir -p "$state"
  if [ -f "$state/data-dir" ]; then
    echo "postgres.sh: $state already holds a server ($(cat "$state/data-dir")): run down first" >&2
    exit 1
  fi
  data=$(mktemp -d "${TMPDIR:-/tmp}/aegis-pg.XXXXXX")
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  echo "$data" > "$state/data-dir"
  # A failed start leaves nothing behind.
  failed() { rm -rf "$data" "$state/data-dir"; exit 1; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$password" > "$data/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$data/pwfile"
  as_postgres "$bin/initdb" -D "$data/db" -U aegis --auth=scram-sha-256 --pwfile="$data/pwfile" -E UTF8 >"$state/initdb.log" 2>&1 ||
    { echo "postgres.sh: initdb failed" >&2; cat "$state/initdb.log" >&2; failed; }
  rm -f "$data/pwfile"
  # Durable commits as in production (fsync, synchronous_commit on); the socket directory is the
  # data directory, so nothing is written to /run.
  as_postgres "$bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$data -c max_connections=200" start >&2 ||
    { echo "postgres.sh: the server did not start" >&2; cat "$data/server.log" >&2; failed; }
  PGPASSWORD=$password "$bin/psql" -h 127.0.0.1 -p "$port" -U aegis -d postgres -q -c "CREATE DATABASE aegis" >&2
  echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
  echo "export AEGIS_POSTGRES_DSN=postgres://aegis:$password@127.0.0.1:$port/aegis"
  ;;
down)
  [ -f "$state/data-dir" ] || exit 0
  data=$(cat "$state/data-dir")
  as_postgres "$bin/pg_ctl" -D "$data/db" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$data" "$state/data-dir"
  ;;
*) echo "usage: postgres.sh up|down STATE" >&2; exit 2 ;;
esac
