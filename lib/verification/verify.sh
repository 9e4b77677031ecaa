#!/bin/sh
# Health verification, stages 3 and 4 of the four, run by a Job after the migrations.
#   stage 3: the database accepts a connection and answers SELECT version();
#            with read replicas, each answers, is in recovery and replays within
#            VERIFY_MAX_LAG_BYTES of the primary's WAL;
#   stage 4: the migrations are applied up to the newest version of the plan, and every table
#            they create exists.
# Both wait, bounded, because with kubectl everything is applied at once. Knobs, defaults and
# exit codes come from its TypeScript contract (lib/verification/verify-contract.ts), which the
# synth renders into this copy below.
set -eu
# learnflow:contract
: "${PROG:?this is the source of verify.sh: run the copy the synth renders into the Job}"

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }

: "${EXPECTED_TABLES?}" "${EXPECTED_VERSION:?}"
db_wait=${VERIFY_DB_WAIT_SECONDS:-$DEFAULT_VERIFY_DB_WAIT_SECONDS}
migrations_wait=${VERIFY_MIGRATIONS_WAIT_SECONDS:-$DEFAULT_VERIFY_MIGRATIONS_WAIT_SECONDS}
max_lag=${VERIFY_MAX_LAG_BYTES:-$DEFAULT_VERIFY_MAX_LAG_BYTES}
replica_wait=${VERIFY_REPLICA_WAIT_SECONDS:-$DEFAULT_VERIFY_REPLICA_WAIT_SECONDS}
knobs_ok=1
check_knob VERIFY_MAX_LAG_BYTES "$max_lag" >&2 || knobs_ok=''
check_knob VERIFY_REPLICA_WAIT_SECONDS "$replica_wait" >&2 || knobs_ok=''
check_knob VERIFY_DB_WAIT_SECONDS "$db_wait" >&2 || knobs_ok=''
check_knob VERIFY_MIGRATIONS_WAIT_SECONDS "$migrations_wait" >&2 || knobs_ok=''
[ -n "$knobs_ok" ] || exit "$EXIT_USAGE"
case $EXPECTED_VERSION in *[!0-9]*) fail "$EXIT_USAGE" "EXPECTED_VERSION: '$EXPECTED_VERSION' is not a version number" ;; esac
export PGAPPNAME="${PGAPPNAME:-$PROG}"
connect_timeout=${PGCONNECT_TIMEOUT:-5}
psql_q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
target="${PGHOST:-localhost}:${PGPORT:-5432}/${PGDATABASE:-}"
err=$(mktemp "${TMPDIR:-/tmp}/verify.XXXXXX")
trap 'rm -f "$err"' EXIT

# Stage 3: ping, retried until the deadline; no attempt waits past it (libpq waits at least
# 2 s, the rule's minimum). An authentication failure will not heal: stop at once.
deadline=$(($(date +%s) + db_wait))
t=$connect_timeout
[ "$db_wait" -ge "$t" ] || t=$db_wait
until version=$(PGCONNECT_TIMEOUT=$t psql_q -c 'SELECT version()' 2>"$err"); do
  if cause=$(tls_failure "$(cat "$err")"); then fail "$EXIT_CONNECTION_FAILED" "stage 3: cannot verify $target, not retrying: $cause: $(cat "$err")"; fi
  if grep -q 'authentication failed\|password' "$err"; then fail "$EXIT_CONNECTION_FAILED" "stage 3: login to $target refused: $(cat "$err")"; fi
  left=$((deadline - $(date +%s) - 2)) # what is left after the pause below
  [ "$left" -ge 2 ] || fail "$EXIT_CONNECTION_FAILED" "stage 3: no connection to $target within ${db_wait}s: $(cat "$err")"
  sleep 2
  t=$connect_timeout
  [ "$left" -ge "$t" ] || t=$left
done
say "stage 3 database ping: ok ($target, ${version%% on *})"

# With WAL archiving on (pitr.enabled), the archiver's state from pg_stat_archiver. An archiver
# failing right now (its last attempt failed, none succeeded since) means no point-in-time
# recovery past that segment while WAL piles up on the data volume: a failed health check.
archiver=$(psql_q -F ' ' -c "SELECT current_setting('archive_mode'), archived_count, coalesce(last_archived_wal, '-'),
  coalesce(to_char(last_archived_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'), failed_count, coalesce(last_failed_wal, '-'),
  coalesce(to_char(last_failed_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),
  coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver" 2>"$err") ||
  fail "$EXIT_CONNECTION_FAILED" "stage 3: lost $target: $(cat "$err")"
set -- $archiver
if [ "$1" != off ]; then
  say "stage 3 archiving: $2 segment(s) archived, the last $3 at $4; $5 failure(s)$([ "$5" = 0 ] || echo ", the last $6 at $7")"
  [ "$8" = f ] || fail "$EXIT_HEALTH_CHECK_FAILED" "stage 3 archiving: failing since $7: $6 could not be archived and nothing was archived after it; PostgreSQL keeps the WAL until it can (the database pod's log says why: learnflow-archive)"
fi

# Read replicas: each answers, is a standby, and has replayed the primary's WAL up to at most
# max_lag bytes behind it, retried until the wait is over (a replica catching up after a start
# or a burst of writes). The replicas share one deadline and each is checked at least once;
# every one still failing then is named, and the Job exits 5. The primary's position is read
# first, so a replica that keeps up shows a lag near 0 even under writes. Each replica's finding
# is one line of VERIFY_REPORT_FILE (the pod's termination message, lib/verification/
# replica-report.ts), which `status` reads from the API server.
check_replica() { # host port: sets state, lag (or -) and problem; fails unless streaming within the bound
  lag=- problem=''
  primary_lsn=$(psql_q -c 'SELECT pg_current_wal_lsn()' 2>"$err") || fail "$EXIT_CONNECTION_FAILED" "stage 3: lost $target: $(cat "$err")"
  if ! found=$(PGHOST=$1 PGPORT=$2 PGCONNECT_TIMEOUT=5 psql_q -F ' ' -c 'SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn()::text, $$none$$)' 2>"$err"); then
    state=unreachable problem="does not answer: $(tr '\n' ' ' <"$err")"
    return 1
  fi
  set -- $found
  if [ "$1" != t ]; then
    state=not-in-recovery problem="is not in recovery: it is a primary (promoted?), not a replica of $target"
    return 1
  fi
  if [ "$2" = none ]; then
    state=no-wal problem="has replayed no WAL yet"
    return 1
  fi
  lag=$(psql_q -c "SELECT greatest(pg_wal_lsn_diff('$primary_lsn', '$2'), 0)::bigint" 2>"$err") || fail "$EXIT_CONNECTION_FAILED" "stage 3: lost $target: $(cat "$err")"
  if [ "$lag" -gt "$max_lag" ]; then
    state=lagging problem="is $lag bytes of WAL behind the primary (at most $max_lag allowed: VERIFY_MAX_LAG_BYTES, readReplicas.maxLagBytes)"
    return 1
  fi
  state=streaming
}
report() { # host port state lag
  [ -n "${VERIFY_REPORT_FILE:-}" ] || return 0
  printf 'replica %s:%s %s %s\n' "$@" >>"$VERIFY_REPORT_FILE" 2>/dev/null || say "cannot write $VERIFY_REPORT_FILE: status will not show replica $1"
}
if [ -n "${VERIFY_REPLICAS:-}" ]; then
  [ -z "${VERIFY_REPORT_FILE:-}" ] || : >"$VERIFY_REPORT_FILE" 2>/dev/null || true
  deadline=$(($(date +%s) + replica_wait))
  failed='' checked=0
  for replica in $VERIFY_REPLICAS; do
    case $replica in *:*) host=${replica%:*} port=${replica##*:} ;; *) host=$replica port=${PGPORT:-5432} ;; esac
    until check_replica "$host" "$port"; do
      [ "$(date +%s)" -lt "$deadline" ] || break
      sleep 2
    done
    report "$host" "$port" "$state" "$lag"
    checked=$((checked + 1))
    if [ "$state" = streaming ]; then
      say "stage 3 replica $host:$port: streaming, $lag bytes behind the primary"
    else
      printf '%s: %s\n' "$PROG" "stage 3 replica $host:$port $problem (for ${replica_wait}s)" >&2
      failed="$failed $host:$port"
    fi
  done
  set -- $failed
  [ $# = 0 ] || fail "$EXIT_HEALTH_CHECK_FAILED" "stage 3 replicas: $# of $checked not streaming within the bound:$failed"
fi

# Stage 4: wait for the newest migration, then check every table. Values reach psql as
# variables on stdin (psql does not interpolate -c), never spliced into SQL.
if [ "$EXPECTED_VERSION" = 0 ]; then say "stage 4 schema: no migrations to check"; exit "$EXIT_OK"; fi
deadline=$(($(date +%s) + migrations_wait))
while :; do
  newest=$(printf '%s\n' "SELECT coalesce(max(version::numeric)::text, 'none') FROM $TABLE WHERE to_regclass('$TABLE') IS NOT NULL;" \
    | psql_q 2>"$err") || {
      grep -q 'does not exist' "$err" && newest=none || fail "$EXIT_CONNECTION_FAILED" "stage 4: lost $target: $(cat "$err")"
    }
  if [ "$newest" != none ] && [ "$newest" -ge "$EXPECTED_VERSION" ] 2>/dev/null; then break; fi
  [ "$(date +%s)" -lt "$deadline" ] || fail "$EXIT_HEALTH_CHECK_FAILED" "stage 4: migrations not applied within ${migrations_wait}s: newest applied version is $newest, expected $EXPECTED_VERSION (see the migration Job's log)"
  sleep 2
done
missing=$(printf '%s\n' "SELECT string_agg(t, ' ' ORDER BY n) FROM unnest(string_to_array(:'tables', ' ')) WITH ORDINALITY AS x(t, n) WHERE to_regclass(t) IS NULL;" \
  | psql_q -v tables="$EXPECTED_TABLES" 2>"$err") || fail "$EXIT_CONNECTION_FAILED" "stage 4: lost $target: $(cat "$err")"
[ -z "$missing" ] || fail "$EXIT_HEALTH_CHECK_FAILED" "stage 4: tables missing: $missing (expected: $EXPECTED_TABLES)"
set -- $EXPECTED_TABLES
say "stage 4 schema: all $# tables present, migrations applied up to $newest"
