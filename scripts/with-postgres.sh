#!/usr/bin/env bash
# Runs CMD… with a throwaway PostgreSQL cluster, so the SQL store's tests meet a real server:
#
#   scripts/with-postgres.sh CMD…          e.g. scripts/with-postgres.sh npx vitest run
#
# - Debian's postgresql is installed with apt-get when absent (the machine may have only
#   node and npm).
# - The cluster lives in a temporary folder: initdb as the postgres user when run as root
#   (initdb refuses root), listening on 127.0.0.1 only, on a free port, its Unix socket in
#   the temporary folder (-k), fsync off (a throwaway cluster needs no durability).
# - A superuser with a random password; CMD gets
#     AGENT_AUTH_TEST_DATABASE_URL  postgres://agent_auth:…@127.0.0.1:PORT/agent_auth_test
#     AGENT_AUTH_TEST_PG_BIN        the folder of pg_dump, psql, … of that cluster
#   Tests that need Postgres fail (never skip) without AGENT_AUTH_TEST_DATABASE_URL.
# - The cluster is stopped and its folder removed when CMD ends, fails, or this script is
#   interrupted (INT, TERM, HUP). The exit status is CMD's.
# - Already inside one (AGENT_AUTH_TEST_DATABASE_URL set): runs CMD as it is.
# Composes with the other wrappers: scripts/with-postgres.sh scripts/with-keyring.sh CMD…
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/with-postgres.sh CMD…" >&2
  exit 2
fi

if [ -n "${AGENT_AUTH_TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

sudo_=()
[ "$(id -u)" -eq 0 ] || sudo_=(sudo)

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ]; then
  echo "with-postgres: installing postgresql (apt-get)" >&2
  "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends postgresql >&2
fi
bin="$(pg_bin)"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/agent-auth-postgres.XXXXXX")"
chmod 700 "$tmp"
# As root, the cluster belongs to the postgres user (initdb and postgres refuse root).
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$tmp"
  as_owner=(runuser -u postgres --)
fi

child=""
started=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$child" ]; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ -n "$started" ]; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

port="$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')"
password="$(node -e 'console.log(require("node:crypto").randomBytes(18).toString("hex"))')"
# The password reaches initdb through a file only the cluster's owner reads (never argv).
printf '%s\n' "$password" > "$tmp/pwfile"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp/pwfile"
chmod 600 "$tmp/pwfile"
"${as_owner[@]}" "$bin/initdb" -D "$tmp/data" -U agent_auth --pwfile="$tmp/pwfile" \
  --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --no-sync >"$tmp/initdb.log" 2>&1 \
  || { cat "$tmp/initdb.log" >&2; exit 1; }
rm -f "$tmp/pwfile"
mkdir -p "$tmp/socket"
[ "$(id -u)" -ne 0 ] || chown postgres: "$tmp/socket"
started=1
"${as_owner[@]}" "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $tmp/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null || { cat "$tmp/postgres.log" >&2; exit 1; }

export PGPASSWORD="$password"
"$bin/psql" -q -h 127.0.0.1 -p "$port" -U agent_auth -d postgres -c "CREATE DATABASE agent_auth_test" >/dev/null
unset PGPASSWORD

export AGENT_AUTH_TEST_DATABASE_URL="postgres://agent_auth:$password@127.0.0.1:$port/agent_auth_test"
export AGENT_AUTH_TEST_PG_BIN="$bin"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (cluster in $tmp)" >&2

set +e
"$@" &
child=$!
wait "$child"
status=$?
child=""
exit "$status"
