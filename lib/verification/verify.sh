#!/bin/sh
# Health verification, stages 3 and 4 of the seed's four, run by a Job after the migrations.
#   stage 3: the database accepts a connection and answers SELECT 1;
#   stage 4: the migrations are applied up to the newest version of the plan, and every table
#            they create exists.
# Both wait, bounded, because with kubectl everything is applied at once.
# Exit codes: 0 healthy; 1 configuration error; 5 health check failed; 8 database connection failed.
set -eu

: "${EXPECTED_TABLES?}" "${EXPECTED_VERSION:?}"
db_wait=${VERIFY_DB_WAIT_SECONDS:-300}
migrations_wait=${VERIFY_MIGRATIONS_WAIT_SECONDS:-600}
export PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}" PGAPPNAME="${PGAPPNAME:-learnflow-verify}"

say() { printf 'learnflow-verify: %s\n' "$*"; }
fail() { code=$1; shift; printf 'learnflow-verify: %s\n' "$*" >&2; exit "$code"; }
for knob in VERIFY_DB_WAIT_SECONDS VERIFY_MIGRATIONS_WAIT_SECONDS; do
  eval "value=\${$knob:-0}"
  case $value in ''|*[!0-9]*) fail 1 "$knob: '$value' is not a whole number of seconds" ;; esac
done
psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
target="${PGHOST:-localhost}:${PGPORT:-5432}/${PGDATABASE:-}"

# Stage 3: ping, retried until the deadline. An authentication failure will not heal: stop at once.
deadline=$(($(date +%s) + db_wait))
err=$(mktemp "${TMPDIR:-/tmp}/verify.XXXXXX")
trap 'rm -f "$err"' EXIT
until version=$(psql_q -c 'SELECT version()' 2>"$err"); do
  if grep -q 'authentication failed\|password' "$err"; then fail 8 "stage 3: login to $target refused: $(cat "$err")"; fi
  [ "$(date +%s)" -lt "$deadline" ] || fail 8 "stage 3: no connection to $target within ${db_wait}s: $(cat "$err")"
  sleep 2
done
say "stage 3 database ping: ok ($target, ${version%% on *})"

# Stage 4: wait for the newest migration, then check every table. Values reach psql as
# variables on stdin (psql does not interpolate -c), never spliced into SQL.
if [ "$EXPECTED_VERSION" = 0 ]; then say "stage 4 schema: no migrations to check"; exit 0; fi
deadline=$(($(date +%s) + migrations_wait))
while :; do
  newest=$(printf '%s\n' "SELECT coalesce(max(version::numeric)::text, 'none') FROM applied_migrations WHERE to_regclass('public.applied_migrations') IS NOT NULL;" \
    | psql_q 2>"$err") || {
      grep -q 'does not exist' "$err" && newest=none || fail 8 "stage 4: lost $target: $(cat "$err")"
    }
  if [ "$newest" != none ] && [ "$newest" -ge "$EXPECTED_VERSION" ] 2>/dev/null; then break; fi
  [ "$(date +%s)" -lt "$deadline" ] || fail 5 "stage 4: migrations not applied within ${migrations_wait}s: newest applied version is $newest, expected $EXPECTED_VERSION (see the migration Job's log)"
  sleep 2
done
missing=$(printf '%s\n' "SELECT string_agg(t, ' ' ORDER BY n) FROM unnest(string_to_array(:'tables', ' ')) WITH ORDINALITY AS x(t, n) WHERE to_regclass(t) IS NULL;" \
  | psql_q -v tables="$EXPECTED_TABLES" 2>"$err") || fail 8 "stage 4: lost $target: $(cat "$err")"
[ -z "$missing" ] || fail 5 "stage 4: tables missing: $missing (expected: $EXPECTED_TABLES)"
set -- $EXPECTED_TABLES
say "stage 4 schema: all $# tables present, migrations applied up to $newest"
