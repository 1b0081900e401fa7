#!/usr/bin/env bash
# A Postgres server on 127.0.0.1 for the test suite, with the role and database that
# integration_tests/profiles.yml expects (DBT_SYNTH_PG_* env vars, same defaults).
# Idempotent and fast when the server is already up. As root (CI) it installs postgresql with apt
# if missing and runs the distribution's cluster through pg_ctlcluster (owned by the `postgres`
# user); as another user it runs a private cluster in .pgdata/ of this repository.
set -euo pipefail

HOST=127.0.0.1
PORT="${DBT_SYNTH_PG_PORT:-5432}"
ROLE="${DBT_SYNTH_PG_USER:-postgres}"
PASSWORD="${DBT_SYNTH_PG_PASSWORD:-postgres}"
DBNAME="${DBT_SYNTH_PG_DBNAME:-dbt_synth}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"

ready() {
  PGPASSWORD="$PASSWORD" psql -h "$HOST" -p "$PORT" -U "$ROLE" -d "$DBNAME" -qtAc 'select 1' \
    >/dev/null 2>&1
}

if command -v psql >/dev/null && ready; then
  echo "postgres: ready on $HOST:$PORT (database $DBNAME)"
  exit 0
fi

if [ "$(id -u)" = 0 ]; then
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  cluster="$(pg_lsclusters -h | awk -v port="$PORT" '$3 == port {print $1, $2; exit}')"
  if [ -z "$cluster" ]; then
    version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
    pg_createcluster "$version" dbt_synth --port "$PORT" >/dev/null
    cluster="$version dbt_synth"
  fi
  # shellcheck disable=SC2086
  set -- $cluster
  if ! pg_lsclusters -h | awk -v v="$1" -v n="$2" '$1 == v && $2 == n {print $4}' | grep -q online
  then
    pg_ctlcluster "$1" "$2" start
  fi
  as_admin() { su postgres -c "psql -p $PORT -d postgres -qtA -v ON_ERROR_STOP=1"; }
else
  bindir="$(dirname "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")"
  data="$REPO/.pgdata"
  if [ ! -f "$data/PG_VERSION" ]; then
    "$bindir/initdb" -D "$data" -U "$(id -un)" --auth=trust >/dev/null
  fi
  if ! "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-h $HOST -p $PORT -k $data" start >/dev/null
  fi
  as_admin() { psql -h "$HOST" -p "$PORT" -d postgres -qtA -v ON_ERROR_STOP=1; }
fi

for _ in $(seq 1 30); do
  pg_isready -h "$HOST" -p "$PORT" -q && break
  sleep 1
done

# SQL on stdin as the cluster's administrator; names and password are quoted by format().
as_admin <<SQL
select format('create role %I login superuser', '$ROLE')
where not exists (select 1 from pg_roles where rolname = '$ROLE')\\gexec
select format('alter role %I with login password %L', '$ROLE', '$PASSWORD')\\gexec
select format('create database %I owner %I', '$DBNAME', '$ROLE')
where not exists (select 1 from pg_database where datname = '$DBNAME')\\gexec
SQL

ready || { echo "postgres: not reachable on $HOST:$PORT as $ROLE" >&2; exit 1; }
echo "postgres: ready on $HOST:$PORT (database $DBNAME)"
