#!/bin/sh
# wf-postgres-entrypoint: starts the local stack's PostgreSQL (see the
# Dockerfile beside this file and docker-compose.yml).
#
# At each start, in order:
#   1. as root: make $PGDATA and the socket directory the postgres user's,
#      then re-run this script as that user (nothing below runs as root);
#   2. on the first start only (no $PGDATA/PG_VERSION): initdb, with peer
#      authentication on the local socket and scram-sha-256 over TCP;
#   3. a short start on the local socket only (no TCP client can get in
#      before the role is right) to create the role and database "wf" if
#      missing and set the role's password from POSTGRES_PASSWORD, so the
#      env file stays the one place the password is written;
#   4. exec postgres listening on $PG_LISTEN_ADDRESSES:$PGPORT, in the
#      foreground (it gets the container's signals).
# The password never appears on a command line (ps would show it): psql
# reads it from the environment with a backquoted printenv.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${PGPORT:=5432}"
: "${PG_LISTEN_ADDRESSES:=127.0.0.1}"
export PGDATA PGPORT

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "wf-postgres: POSTGRES_PASSWORD is not set (the wf role's password)" >&2
    exit 100
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "wf-postgres: initializing a cluster in $PGDATA"
    initdb -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi

pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p $PGPORT" -w -s start
psql -X -q -v ON_ERROR_STOP=1 -p "$PGPORT" -U postgres -d postgres <<'SQL'
\set pw `printenv POSTGRES_PASSWORD`
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wf') AS need_role \gset
\if :need_role
CREATE ROLE wf LOGIN;
\endif
ALTER ROLE wf PASSWORD :'pw';
SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'wf') AS need_db \gset
\if :need_db
CREATE DATABASE wf OWNER wf;
\endif
SQL
pg_ctl -D "$PGDATA" -m fast -w -s stop

echo "wf-postgres: listening on $PG_LISTEN_ADDRESSES:$PGPORT (database wf, role wf)"
exec postgres -D "$PGDATA" -c listen_addresses="$PG_LISTEN_ADDRESSES" -p "$PGPORT"
