#!/bin/sh
# The pooler's lookup role, run by a Job of ours as the superuser (the pooler never holds it):
# creates or updates the role POOLER_AUTH_USER with the password in POOLER_PASSWORD_FILE (the
# credentials Secret's key, mounted alone) and the function PgBouncer's auth_query calls, in the
# application's database. The function returns the SCRAM verifier of the role a client names,
# never a superuser's nor a replication role's: PgBouncer checks the client's password against
# the database's own users, and no second copy of any password exists. Idempotent.
# Exit codes and knobs come from its TypeScript contract (lib/pooling/contracts.ts).
set -eu
# learnflow:contract
: "${PROG:?this is the source of pooler-auth.sh: run the copy the synth renders into the Job}"
: "${POOLER_PASSWORD_FILE:?}" "${POOLER_AUTH_USER:=$DEFAULT_POOLER_AUTH_USER}"
db_wait=${POOLER_AUTH_DB_WAIT_SECONDS:-$DEFAULT_POOLER_AUTH_DB_WAIT_SECONDS}
check_knob POOLER_AUTH_DB_WAIT_SECONDS "$db_wait" >&2 || exit "$EXIT_FAILED"
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }
[ -s "$POOLER_PASSWORD_FILE" ] || fail "$EXIT_FAILED" "the pooler's password file $POOLER_PASSWORD_FILE is missing or empty (key pooler-password of the credentials Secret)"

deadline=$(($(date +%s) + db_wait))
until pg_isready -q -t 5; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "$EXIT_CONNECTION_FAILED" "no connection to ${PGHOST:-localhost}:${PGPORT:-5432} within ${db_wait}s"
  sleep 2
done

# The password reaches psql as a variable read from the file (\set with backquotes), quoted by
# psql (:'...'), never on a command line or in the environment.
psql -X -q -v ON_ERROR_STOP=1 --no-password -v auth_user="$POOLER_AUTH_USER" -v schema="$POOLER_AUTH_SCHEMA" <<SQL || fail "$EXIT_FAILED" "could not set up the pooler's lookup role in ${PGDATABASE:-}"
\set password \`cat "$POOLER_PASSWORD_FILE"\`
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'auth_user') AS create_role \gset
\if :create_role
CREATE ROLE :"auth_user" LOGIN;
\endif
ALTER ROLE :"auth_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 10 PASSWORD :'password';
\unset password
BEGIN;
CREATE SCHEMA IF NOT EXISTS :"schema";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"auth_user";
CREATE OR REPLACE FUNCTION :"schema".user_lookup(in i_username text, out uname text, out phash text)
  RETURNS record LANGUAGE sql SECURITY DEFINER STABLE SET search_path = pg_catalog AS
  'SELECT usename::text, passwd FROM pg_catalog.pg_shadow WHERE usename = i_username AND NOT usesuper AND NOT userepl';
REVOKE ALL ON FUNCTION :"schema".user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"schema".user_lookup(text) TO :"auth_user";
COMMIT;
SQL
printf '%s: role %s and %s.user_lookup ready in %s\n' "$PROG" "$POOLER_AUTH_USER" "$POOLER_AUTH_SCHEMA" "${PGDATABASE:-}"
