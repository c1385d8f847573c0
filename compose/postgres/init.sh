#!/bin/sh
# Runs once, when the Postgres container starts on an empty data volume (docker-entrypoint-initdb.d):
# one login role and one private database per service, as manage_all.py provisions them locally.
# PLATFORM_DATABASES lists the services (set by compose and the local overlay, checked against
# topology.toml); each one's password comes from <SERVICE>_DB_PASSWORD (compose/.env). No other role
# may connect to a service's database: CONNECT is revoked from PUBLIC and granted to the owner only.
#
# A service added later needs `docker compose down -v` (losing the data) or this script run by hand:
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/10-platform.sh
set -eu

: "${PLATFORM_DATABASES:?PLATFORM_DATABASES lists the service databases to create}"

for name in $PLATFORM_DATABASES; do
    case "$name" in
        *[!a-z0-9_]* | "") echo "init.sh: invalid database name '$name'" >&2; exit 1 ;;
    esac
    variable="$(echo "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    eval "password=\${$variable:-}"
    if [ -z "$password" ]; then
        echo "init.sh: $variable is not set" >&2
        exit 1
    fi
    echo "init.sh: role and database $name"
    # psql variables (:"name" quotes an identifier, :'name' a literal) keep the password out of the SQL text.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'name') \gexec
REVOKE CONNECT ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"name" TO :"name";
SQL
done
