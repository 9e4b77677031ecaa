#!/bin/sh
# learnflow-migrate: applies the SQL migrations listed in the plan to PostgreSQL.
#
#   sh runner.sh [migrate|status|rollback]          (default: migrate)
#
# Reads the plan and the SQL files from MIGRATIONS_DIR (default: this script's directory). The
# plan is plan.tsv; a plan too long for one ConfigMap entry comes in parts that plan.parts
# lists in order (plan.tsv, plan-002.tsv, …). The directory is never listed, so a ConfigMap
# mount's ..data and ..2024_… entries do not matter.
# Connects with libpq's variables: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, …
#
#   MIGRATE_DB_WAIT_SECONDS    wait this long for the database to accept connections (300)
#   MIGRATE_LOCK_WAIT_SECONDS  wait this long for the migration lock (120)
#   MIGRATE_STATEMENT_TIMEOUT  statement_timeout while migrating, e.g. 15min, 30s, 500ms (15min)
#   MIGRATE_LOCK_TIMEOUT       lock_timeout while migrating (10s)
#   MIGRATE_TARGET_VERSION     rollback only, required: undo every migration above it (0: all)
#
# Exit codes: 0 done; 1 usage or configuration error; 4 timed out waiting for the migration
# lock; 7 a migration failed, or drift (database, plan and files disagree); 8 the database
# was unreachable, refused the login, or the connection dropped (safe to retry).
#
# The shell runs ONE psql session on a script generated here: load and check the plan, poll a
# session advisory lock with short statements, check the files it will run against the plan's
# sha256, refuse drift, write the steps of the pending migrations (each: BEGIN, the file, its
# applied_migrations row, COMMIT) and run them.
# POSIX sh, coreutils and psql only: it runs in the database's own image.
#
# Needs psql 15 or later (the database images ship 16 and 17): a step sends its row, its
# COMMIT and the next step's BEGIN in one round trip (`EXECUTE learnflow_record(…) \; COMMIT \;
# BEGIN …`, a prepared INSERT … RETURNING), and only psql 15+ prints the RETURNING row of such
# a combined query. With an older psql the runner stops with exit 1 before it changes anything.
set -eu

PROG=learnflow-migrate
# First 8 bytes of sha256("learnflow-migrations") as a signed big-endian bigint; pg_locks shows
# it as classid 279713597, objid 2324705244, objsubid 1. Advisory locks are per database.
LOCK_KEY=1201360753686228956
LOCK_CLASSID=279713597
LOCK_OBJID=2324705244
LOCK_MARKER=LEARNFLOW_LOCK_TIMEOUT
PLAN_MARKER=LEARNFLOW_BAD_PLAN
PSQL_MARKER=LEARNFLOW_OLD_PSQL
FILES_MARKER=LEARNFLOW_BAD_FILES
NO_TX_HEADER='-- learnflow:no-transaction'
TABLE=public.applied_migrations

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { _code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$_code"; }

problems=''
problem() { problems="$problems
$PROG: $*"; }
report_problems() { # exit code
  [ -z "$problems" ] || { printf '%s\n' "${problems#?}" >&2; exit "$1"; }
}

is_count() { # a whole number of at most 9 digits
  case $1 in ''|*[!0-9]*) return 1 ;; esac
  [ ${#1} -le 9 ]
}
is_duration() { # a PostgreSQL duration: digits and an optional unit ms|s|min|h
  _n=$1
  case $_n in *ms) _n=${_n%ms} ;; *min) _n=${_n%min} ;; *s) _n=${_n%s} ;; *h) _n=${_n%h} ;; esac
  is_count "$_n"
}
# Sets _int to a digit string without its leading zeros (sh reads 010 as octal).
int_of() { _int=${1#"${1%%[!0]*}"}; _int=${_int:-0}; }

# ---------------------------------------------------------------- arguments and settings
mode=${1:-migrate}
case $mode in
  migrate|status|rollback) ;;
  *) fail 1 "unknown command '$mode' (usage: runner.sh [migrate|status|rollback])" ;;
esac
[ $# -le 1 ] || fail 1 "too many arguments (usage: runner.sh [migrate|status|rollback])"

case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
dir=${MIGRATIONS_DIR:-$here}
db_wait=${MIGRATE_DB_WAIT_SECONDS:-300}
lock_wait=${MIGRATE_LOCK_WAIT_SECONDS:-120}
statement_timeout=${MIGRATE_STATEMENT_TIMEOUT:-15min}
lock_timeout=${MIGRATE_LOCK_TIMEOUT:-10s}
target=''
[ "$mode" != rollback ] || target=${MIGRATE_TARGET_VERSION:-}

is_count "$db_wait" || problem "MIGRATE_DB_WAIT_SECONDS: '$db_wait' is not a whole number of seconds"
is_count "$lock_wait" || problem "MIGRATE_LOCK_WAIT_SECONDS: '$lock_wait' is not a whole number of seconds"
is_duration "$statement_timeout" ||
  problem "MIGRATE_STATEMENT_TIMEOUT: '$statement_timeout' is not a duration (digits with an optional unit ms, s, min or h, e.g. 15min)"
is_duration "$lock_timeout" ||
  problem "MIGRATE_LOCK_TIMEOUT: '$lock_timeout' is not a duration (digits with an optional unit ms, s, min or h, e.g. 10s)"
if [ "$mode" = rollback ]; then
  case $target in
    '') problem "MIGRATE_TARGET_VERSION: required for rollback (a version from plan.tsv, or 0 to undo every migration)" ;;
    *[!0-9]*) problem "MIGRATE_TARGET_VERSION: '$target' is not a version (digits, e.g. 003, or 0 to undo every migration)" ;;
  esac
fi
case $dir in *"'"*|*\\*) problem "MIGRATIONS_DIR: '$dir' must not contain quotes or backslashes" ;; esac
[ -d "$dir" ] || problem "MIGRATIONS_DIR: '$dir' is not a directory"
report_problems 1
case $dir in /*) ;; *) dir=$(cd "$dir" && pwd) ;; esac
plan="$dir/plan.tsv" # the plan as the session reads it: plan.tsv, or its parts concatenated
plan_name=$plan      # … and as messages name it
[ -f "$plan" ] || fail 1 "$plan not found (MIGRATIONS_DIR must hold plan.tsv and the SQL files)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/learnflow-migrate.XXXXXX") ||
  fail 1 "cannot create a temporary directory in ${TMPDIR:-/tmp} (it must be writable)"
trap 'rm -rf "$tmp"' EXIT
case $tmp in *"'"*|*\\*) fail 1 "TMPDIR: '$tmp' must not contain quotes or backslashes" ;; esac
stopped=''
psql_pid=''
# TERM (pod deletion) or INT: cancel psql's running statement, so PostgreSQL rolls back now.
trap 'stopped=143; [ -z "$psql_pid" ] || kill -INT "$psql_pid" 2>/dev/null || :' TERM
trap 'stopped=130; [ -z "$psql_pid" ] || kill -INT "$psql_pid" 2>/dev/null || :' INT

script="$tmp/$mode.sql"     # the session's script
polls="$tmp/lock-wait.sql"  # written by the session while another runner holds the lock
steps="$tmp/steps.sql"      # written by the session: one block per migration to run
sums="$tmp/sums"            # sha256sum -c input, written by the session

# ---------------------------------------------------------------- the plan
# plan.tsv: version, name, up sha256, down sha256, tx|notx; ascending; a migration's files are
# <version>_<name>.up.sql and .down.sql. The session loads it with \copy and checks every field
# (a bad plan exits 1), then checks the files it is about to run against their sha256 (exit 7):
# migrate the up and down files of the pending migrations, rollback the down files it will
# run, status every up file. A re-run with nothing to do reads no SQL file at all.
if [ -e "$dir/plan.parts" ]; then # a long plan, in parts: concatenate them in the listed order
  set -f
  parts=$(cat "$dir/plan.parts")
  [ -n "$parts" ] || problem "$dir/plan.parts lists no plan part"
  for part in $parts; do
    case $part in
      *[!0-9a-z.-]*) problem "$dir/plan.parts: '$part' is not a plan part (plan.tsv, plan-002.tsv, …)" ;;
      plan.tsv|plan-[0-9]*.tsv) [ -f "$dir/$part" ] || problem "$part: listed in plan.parts but missing from $dir" ;;
      *) problem "$dir/plan.parts: '$part' is not a plan part (plan.tsv, plan-002.tsv, …)" ;;
    esac
  done
  report_problems 1
  # shellcheck disable=SC2086 # one argument per part; globbing is off
  (cd "$dir" && cat -- $parts) >"$tmp/plan.tsv"
  set +f
  plan="$tmp/plan.tsv"
  plan_name="$dir/plan.tsv and the parts plan.parts lists"
fi

if [ "$mode" = rollback ]; then
  int_of "$target"
  target_int=$_int
  if [ "$target_int" != 0 ]; then
    found=''
    set -f
    # shellcheck disable=SC2013 # versions are single words
    for version in $(cut -f1 "$plan"); do
      int_of "$version"
      [ "$_int" != "$target_int" ] || found=1
    done
    set +f
    [ -n "$found" ] || fail 1 "MIGRATE_TARGET_VERSION: '$target' is not a version in plan.tsv (or 0 to undo every migration)"
  fi
fi

# ---------------------------------------------------------------- the session's script
# Settings reach the session as psql variables. Every variable the script sets is named lf_*
# and is \unset before the steps run, so ':lf_…' in migration text stays literal. The emit_*
# functions print with the printf builtin rather than `cat <<EOF`: process starts are a good
# part of a no-op run's time.

PLAN=pg_temp.learnflow_migrate_plan
# Its rows with their files' names, which follow from version and name. (Not generated columns
# of the table: those cost a few ms of catalog work in a new database.)
PLAN_FILES="(SELECT *, version || '_' || name || '.up.sql' AS up_key, version || '_' || name || '.down.sql' AS down_key FROM $PLAN)"
# A check is a plain query whose column `problems` is NULL or lists what is wrong: $FOUND keeps
# the list in a setting and tells psql (lf_bad); PL/pgSQL only runs to raise it.
FOUND="CASE WHEN problems IS NULL THEN false ELSE set_config('learnflow.problems', problems, false) IS NOT NULL END"
raise_found() { # $1: the error's first line
  printf '%s\n' '\if :lf_bad' \
    "DO \$lf\$ BEGIN RAISE EXCEPTION E'$1\\n%', current_setting('learnflow.problems'); END \$lf\$;" \
    '\endif' '\unset lf_bad'
}

# Connects, checks psql's version (see the header), loads and checks the plan.
emit_prelude() {
  # The connected file tells a failed first connection (wait, retry) from a lost one (exit 8);
  # the plan-loaded file tells a plan that \copy cannot read (exit 1). On PostgreSQL 14+, the
  # server notices a vanished client within a second, so a killed runner's migration is rolled back.
  printf '%s\n' "\\o '$tmp/connected'
\\o
\\set ON_ERROR_STOP on
\\set QUIET on
\\set SHOW_ALL_RESULTS on
-- Our own errors need no PL/pgSQL context lines; migrations get them back (run_steps).
\\set SHOW_CONTEXT never
SELECT :VERSION_NUM >= 150000 AS lf_psql_ok,
       CASE WHEN current_setting('server_version_num')::int >= 140000
         THEN set_config('client_connection_check_interval', '1s', false) END AS lf_ccci \\gset
\\if :lf_psql_ok
\\else
DO \$lf\$ BEGIN RAISE EXCEPTION '$PSQL_MARKER: the runner needs psql 15 or later'; END \$lf\$;
\\endif
\\unset lf_psql_ok
\\unset lf_ccci
\\set lf_dir '$dir'
\\set lf_statement_timeout '$statement_timeout'
\\set lf_lock_timeout '$lock_timeout'
-- Bounded columns: a row this small needs no TOAST table, which costs a few ms to create in a
-- new database. A longer field fails the copy, whose error context names its line and column.
CREATE TEMP TABLE learnflow_migrate_plan (
  ord bigint GENERATED ALWAYS AS IDENTITY,
  version varchar(18), name varchar(255), checksum varchar(64), down_checksum varchar(64), mode varchar(4)
);
\\set SHOW_CONTEXT errors
\\copy $PLAN (version, name, checksum, down_checksum, mode) FROM '$plan'
\\set SHOW_CONTEXT never
\\o '$tmp/plan-loaded'
\\o
-- Every field of every line; a bad plan stops the runner with exit 1 before any change.
SELECT $FOUND AS lf_bad FROM (
  SELECT string_agg(format('  - plan.tsv line %s: %s', ord, msg), E'\\n' ORDER BY ord) AS problems FROM (
    SELECT ord, CASE
        WHEN num_nulls(version, name, checksum, down_checksum, mode) > 0 THEN 'a field is \\N'
        -- Unbounded patterns plus length(): bounded repeats like {64} are slow in PostgreSQL.
        WHEN version !~ '^[0-9]+\$' OR length(version) > 18 THEN format('version %s is not 1 to 18 digits', version)
        WHEN name !~ '^[a-z0-9_]+\$' THEN format('name %s is not lowercase words joined by _', name)
        WHEN checksum !~ '^[0-9a-f]+\$' OR length(checksum) <> 64 OR down_checksum !~ '^[0-9a-f]+\$' OR length(down_checksum) <> 64
          THEN 'a sha256 is not 64 lowercase hex digits'
        WHEN mode NOT IN ('tx', 'notx') THEN format('mode %s is not tx or notx', mode)
        WHEN CASE WHEN previous ~ '^[0-9]+\$' THEN version::numeric <= previous::numeric END
          THEN format('version %s is not above the line before', version)
      END AS msg
    FROM (SELECT *, lag(version) OVER (ORDER BY ord) AS previous FROM $PLAN) AS plan
  ) AS checked WHERE msg IS NOT NULL
) AS found \\gset"
  raise_found "$PLAN_MARKER: plan.tsv is malformed, nothing was changed:"
}

# Whether the table exists (lf_no_table) and its rows as a query for the next ones (lf_applied).
# After the lock: a runner that waited must see the table the one before it created.
emit_find_table() {
  printf '%s\n' "SELECT to_regclass('$TABLE') IS NULL AS lf_no_table \\gset
\\if :lf_no_table
\\set lf_applied 'SELECT NULL::text, NULL::text, NULL::text, NULL::timestamptz, NULL::integer WHERE false'
\\else
\\set lf_applied 'SELECT version, name, checksum, applied_at, execution_ms FROM $TABLE'
\\endif"
}

# The files this run will run must match their sha256 in the plan. sha256sum runs only when
# there are some (the usual re-run has none); with --quiet it prints only the failures.
emit_verify() { # $1: a query for the plan rows whose files to check, $2: the columns to check
  printf '%s\n' "SELECT count(*) > 0 AS lf_verify FROM ($1) AS files \\gset
\\if :lf_verify
\\o '$sums'
SELECT concat_ws(E'\\n', $2) FROM ($1) AS files ORDER BY ord;
\\o
\\set lf_files_failed \`cd '$dir' && exec sha256sum -c --strict --quiet '$sums' 2>&1\`
SELECT :'lf_files_failed' = '' AS lf_files_ok \\gset
\\if :lf_files_ok
\\else
\\o '$sums.out'
\\qecho :lf_files_failed
\\o
DO \$lf\$ BEGIN RAISE EXCEPTION '$FILES_MARKER: the files differ from the plan'; END \$lf\$;
\\endif
\\unset lf_files_failed
\\unset lf_files_ok
\\endif
\\unset lf_verify"
}

# One try; while another runner holds the lock, short autocommit polls: a waiter never holds a
# snapshot longer than one poll, so the lock holder's CREATE INDEX CONCURRENTLY does not wait
# for it (as it would for a waiter blocked inside pg_advisory_lock). psql has no loops: the
# session writes the polls out (only then) and runs them: 50 ms, doubling up to 1 s (or the wait
# / 240, so there are at most about 250), each cut short at the deadline, the rest skipped.
emit_lock() {
  _cap=1000
  [ $((lock_wait * 1000 / 240)) -le "$_cap" ] || _cap=$((lock_wait * 1000 / 240))
  printf '%s\n' "SELECT pg_try_advisory_lock($LOCK_KEY) AS lf_locked \\gset
\\if :lf_locked
\\else
\\echo '$PROG: another runner holds the migration lock; waiting up to ${lock_wait}s'
SELECT clock_timestamp() + interval '$lock_wait seconds' AS lf_lock_deadline, false AS lf_lock_expired \\gset
\\o '$polls'
SELECT line FROM generate_series(1, $((lock_wait * 1000 / _cap + 6))) AS i, LATERAL (VALUES
    (1, '\\if :lf_locked'), (2, '\\elif :lf_lock_expired'), (3, '\\else'),
    (4, 'SELECT pg_try_advisory_lock($LOCK_KEY) AS lf_locked, clock_timestamp() >= :''lf_lock_deadline'' AS lf_lock_expired'),
    (5, format('  FROM pg_sleep(least(%s, extract(epoch FROM :''lf_lock_deadline'' - clock_timestamp()))) \\gset',
               least(0.05 * 2 ^ (i - 1), $_cap / 1000.0))),
    (6, '\\endif')) AS poll (k, line)
 ORDER BY i, k;
\\o
\\i '$polls'
\\if :lf_locked
\\else
DO \$lf\$ BEGIN RAISE EXCEPTION '$LOCK_MARKER: gave up after ${lock_wait}s waiting for the migration lock, held by %',
  coalesce((SELECT string_agg(format('pid %s (%s)', l.pid, a.application_name), ', ')
            FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = $LOCK_CLASSID AND l.objid = $LOCK_OBJID AND l.objsubid = 1), 'another session');
END \$lf\$;
\\endif
\\unset lf_lock_deadline
\\unset lf_lock_expired
\\endif
\\unset lf_locked
SET statement_timeout = :'lf_statement_timeout' \\; SET lock_timeout = :'lf_lock_timeout';"
}

# In one transaction, so that on drift nothing changes: create the table if needed, refuse
# drift, remember how many were applied.
emit_check() {
  printf '%s\n' "BEGIN;
\\if :lf_no_table
CREATE TABLE $TABLE (
  version      text        PRIMARY KEY,  -- as in the file name, e.g. 001
  name         text        NOT NULL,
  checksum     text        NOT NULL,     -- sha256 (hex) of the up file
  applied_at   timestamptz NOT NULL DEFAULT now(),  -- when it finished
  execution_ms integer     NOT NULL
) \\;
COMMENT ON TABLE $TABLE IS 'Managed by learnflow-migrate: one row per applied migration.';
\\endif
\\unset lf_no_table
\\unset lf_applied
WITH plan AS $PLAN_FILES,
applied AS (
  SELECT version, name, checksum FROM $TABLE
), newest AS (
  SELECT version FROM applied ORDER BY version::numeric DESC LIMIT 1
)
SELECT $FOUND AS lf_bad FROM (
  SELECT string_agg('  - ' || msg, E'\\n' ORDER BY kind, ord) AS problems FROM (
    SELECT 1, p.ord, format('%s was changed after it was applied (the database recorded checksum %s, the file has %s); restore it and add a new migration instead',
                            p.up_key, a.checksum, p.checksum)
      FROM plan p JOIN applied a USING (version) WHERE a.checksum <> p.checksum
    UNION ALL
    SELECT 2, a.version::numeric, format('version %s (%s) is applied but not in the plan: its files were removed or renamed', a.version, a.name)
      FROM applied a WHERE a.version NOT IN (SELECT version FROM plan)
    UNION ALL
    SELECT 3, p.ord, format('%s is pending but older than the newest applied version %s; give it a version above %s', p.up_key, n.version, n.version)
      FROM plan p CROSS JOIN newest n
      WHERE p.version NOT IN (SELECT version FROM applied) AND p.version::numeric < n.version::numeric
  ) AS found (kind, ord, msg)
) AS found \\gset"
  raise_found 'the database does not match the migrations, nothing was changed:'
  printf '%s\n' "SELECT set_config('learnflow.applied_before', count(*)::text, false) FROM $TABLE \\; COMMIT \\g /dev/null"
}

# Runs the steps the session wrote, with no lf_* variable left for migration text to see.
run_steps="\\o
\\unset lf_dir
\\unset lf_statement_timeout
\\unset lf_lock_timeout
\\set SHOW_CONTEXT errors
\\i '$steps'"

# Pending migrations in plan order. The drift check has made sure they all come after the
# applied ones. A tx step commits the migration and its row together; a notx step runs the
# file in autocommit (it must be idempotent), then records it. A tx step's bookkeeping is one
# round trip: its row (a prepared INSERT: planned once, not once per migration), its COMMIT
# and, when the next step is a tx step too, that one's BEGIN, whose now() starts its clock.
emit_migrate() {
  printf '%s\n' "PREPARE learnflow_record (text, text, text, timestamptz, text) AS
  INSERT INTO $TABLE (version, name, checksum, applied_at, execution_ms)
  VALUES (\$1, \$2, \$3, clock_timestamp(), round(extract(epoch FROM clock_timestamp() - \$4) * 1000))
  RETURNING format('$PROG: applied %s %s (%s ms%s)', version, name, execution_ms, \$5);
\\o '$steps'
SELECT concat_ws(E'\\n',
         '-- learnflow:step ' || up_key,
         CASE WHEN mode = 'notx' THEN format('SET statement_timeout = %L \\; SET lock_timeout = %L \\; %s \\g /dev/null',
                                             :'lf_statement_timeout', :'lf_lock_timeout',
                                             'SELECT set_config(''learnflow.step_started_at'', clock_timestamp()::text, false)')
              WHEN previous IS DISTINCT FROM 'tx' THEN begin_tx || ';' END,
         '\\o /dev/null',
         format('\\i %L', :'lf_dir' || '/' || up_key),
         '\\o',
         format('EXECUTE learnflow_record(%L, %L, %L, %s)', version, name, checksum,
                CASE mode WHEN 'tx' THEN 'now(), ''''' ELSE 'current_setting(''learnflow.step_started_at'')::timestamptz, '', no transaction''' END)
           || CASE WHEN mode = 'notx' THEN ';'
                   WHEN next = 'tx' THEN ' \\; COMMIT \\; ' || begin_tx || ';'
                   ELSE ' \\; COMMIT;' END)
  FROM (SELECT *, lag(mode) OVER w AS previous, lead(mode) OVER w AS next,
               format('BEGIN \\; SET LOCAL statement_timeout = %L \\; SET LOCAL lock_timeout = %L',
                      :'lf_statement_timeout', :'lf_lock_timeout') AS begin_tx
          FROM $PLAN_FILES AS plan
         WHERE version NOT IN (SELECT version FROM $TABLE)
        WINDOW w AS (ORDER BY ord)) AS plan
 ORDER BY ord;
$run_steps
DEALLOCATE learnflow_record \\;
SELECT format('$PROG: %s applied, %s already up to date', now_applied - before, before)
  FROM (SELECT count(*) AS now_applied FROM $TABLE) AS t, CAST(current_setting('learnflow.applied_before') AS bigint) AS before;"
}

# Applied migrations above the target, newest first. Down files always run in a transaction
# (files.ts rejects the no-transaction header there).
emit_rollback() {
  printf '%s\n' "\\o '$steps'
SELECT concat_ws(E'\\n',
         '-- learnflow:step ' || down_key,
         format('BEGIN \\; SET LOCAL statement_timeout = %L \\; SET LOCAL lock_timeout = %L;', :'lf_statement_timeout', :'lf_lock_timeout'),
         '\\o /dev/null',
         format('\\i %L', :'lf_dir' || '/' || down_key),
         '\\o',
         format('DELETE FROM $TABLE WHERE version = %L', version),
         '  RETURNING format(''$PROG: rolled back %s %s (%s ms)'', version, name, round(extract(epoch FROM clock_timestamp() - now()) * 1000)) \\; COMMIT;')
  FROM $PLAN_FILES AS plan
 WHERE version IN (SELECT version FROM $TABLE) AND version::numeric > $target_int
 ORDER BY ord DESC;
$run_steps
SELECT format('$PROG: %s rolled back, %s still applied', before - now_applied, now_applied)
  FROM (SELECT count(*) AS now_applied FROM $TABLE) AS t, CAST(current_setting('learnflow.applied_before') AS bigint) AS before;"
}

# Read-only: no lock, no table creation; works before the first migration.
emit_status() {
  printf '%s\n' "WITH plan AS $PLAN_FILES,
applied (version, name, checksum, applied_at, execution_ms) AS (
  :lf_applied
), newest AS (
  SELECT max(version::numeric) AS v FROM applied
), lines AS (
  SELECT 1 AS kind, p.ord, p.version::numeric AS v,
         CASE WHEN a.version IS NULL AND p.version::numeric < n.v THEN 'out-of-order'
              WHEN a.version IS NULL THEN 'pending'
              WHEN a.checksum <> p.checksum THEN 'drifted'
              ELSE 'applied' END AS state,
         p.version, p.name,
         CASE WHEN a.version IS NULL AND p.version::numeric < n.v
                THEN format('%s is older than the newest applied version and cannot be applied', p.up_key)
              WHEN a.version IS NULL THEN ''
              WHEN a.checksum <> p.checksum
                THEN format('%s changed after it was applied (recorded %s, file %s)', p.up_key, a.checksum, p.checksum)
              ELSE format('at %s in %s ms', to_char(a.applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.execution_ms)
         END AS detail
    FROM plan p LEFT JOIN applied a USING (version) CROSS JOIN newest n
  UNION ALL
  SELECT 2, 0, a.version::numeric, 'missing', a.version, a.name, 'applied but not in the plan'
    FROM applied a WHERE a.version NOT IN (SELECT version FROM plan)
)
SELECT coalesce(string_agg(format('$PROG: %s %s %s%s', state, version, name, CASE WHEN detail = '' THEN '' ELSE ': ' || detail END),
                           E'\\n' ORDER BY kind, ord, v) || E'\\n', '')
       || format('$PROG: status: %s applied, %s pending, %s drifted, %s missing, %s out-of-order',
                 count(*) FILTER (WHERE state = 'applied'), count(*) FILTER (WHERE state = 'pending'),
                 count(*) FILTER (WHERE state = 'drifted'), count(*) FILTER (WHERE state = 'missing'),
                 count(*) FILTER (WHERE state = 'out-of-order')) AS lf_report,
       coalesce(bool_or(state IN ('drifted', 'missing', 'out-of-order')), false) AS lf_drifted
  FROM lines \\gset
\\echo :lf_report
\\if :lf_drifted
DO \$lf\$ BEGIN RAISE EXCEPTION 'the database does not match the migrations (see the drifted, missing or out-of-order lines above)'; END \$lf\$;
\\endif"
}

PENDING="SELECT * FROM $PLAN_FILES AS plan WHERE version NOT IN (SELECT version FROM (:lf_applied) AS a (version))"
case $mode in
  migrate)
    emit_prelude
    emit_lock
    emit_find_table
    emit_verify "$PENDING" "checksum || '  ' || up_key, down_checksum || '  ' || down_key"
    emit_check
    emit_migrate ;;
  rollback)
    emit_prelude
    emit_lock
    emit_find_table
    emit_verify "SELECT * FROM $PLAN_FILES AS plan WHERE version IN (SELECT version FROM (:lf_applied) AS a (version)) AND version::numeric > $target_int" \
      "down_checksum || '  ' || down_key"
    emit_check
    emit_rollback ;;
  status)
    emit_prelude
    emit_find_table
    emit_verify "SELECT * FROM $PLAN_FILES AS plan" "checksum || '  ' || up_key"
    emit_status ;;
esac >"$script"

# ---------------------------------------------------------------- run, waiting for the database
export PGAPPNAME="${PGAPPNAME:-$PROG}"
export PGCLIENTENCODING="${PGCLIENTENCODING:-UTF8}"
connect_timeout=${PGCONNECT_TIMEOUT:-10}
server="${PGHOST:-localhost}:${PGPORT:-5432}"

# Runs the script; psql in the background so the TERM/INT traps can cancel it. Sets rc.
run_psql() { # connect timeout
  [ ! -e "$tmp/connected" ] || rm -f "$tmp/connected"
  PGCONNECT_TIMEOUT=$1 psql -X -q -At -v ON_ERROR_STOP=1 -f "$script" 2>"$tmp/psql.err" </dev/null &
  psql_pid=$!
  while :; do
    wait "$psql_pid" && rc=0 || rc=$?
    kill -0 "$psql_pid" 2>/dev/null || break
  done
  psql_pid=''
}

# Until the first connection succeeds (the script then creates $tmp/connected), retry within
# MIGRATE_DB_WAIT_SECONDS, counted from the first failed attempt (which took at most
# PGCONNECT_TIMEOUT, default 10 s; the clock is not read when the first attempt connects).
deadline=''
left=$db_wait
said=''
while :; do
  t=$connect_timeout
  [ "$left" -ge "$t" ] || t=$left
  [ "$t" -ge 2 ] || t=2 # libpq's minimum
  run_psql "$t"
  [ -z "$stopped" ] || fail "$stopped" "stopped by a signal; PostgreSQL rolls back the migration in progress"
  if [ "$rc" != 2 ] || [ -e "$tmp/connected" ]; then break; fi
  err=$(tr '\n\t' '  ' <"$tmp/psql.err")
  case $err in
    *'password authentication failed'*|*'no password supplied'*)
      fail 8 "cannot log in to $server as ${PGUSER:-?}, not retrying: $err" ;;
  esac
  [ -n "$deadline" ] || deadline=$(($(date +%s) + db_wait))
  left=$((deadline - $(date +%s)))
  [ "$left" -gt 0 ] ||
    fail 8 "gave up after ${db_wait}s waiting for the database at $server to accept connections: $err"
  [ -n "$said" ] || say "waiting up to ${db_wait}s for the database at $server: $err"
  said=1
  sleep 1
done

# ---------------------------------------------------------------- report
# psql's messages, prefixed like ours: the generated scripts' names and our markers dropped,
# a migration file named by its key.
# Remembers where the first error happened, to name the migration.
failed_at=''
while IFS= read -r line; do
  case $line in
    "psql:$script:"*)
      line=${line#"psql:$script:"}
      line=${line#*: } ;;
    "psql:$steps:"*)
      line=${line#"psql:$steps:"}
      [ -n "$failed_at" ] || failed_at="steps:${line%%:*}"
      line=${line#*: } ;;
    "psql:$dir/"*)
      line=${line#"psql:$dir/"}
      [ -n "$failed_at" ] || failed_at=${line%%:*} ;;
  esac
  case $line in
    "ERROR:  $LOCK_MARKER: "*) line="ERROR:  ${line#"ERROR:  $LOCK_MARKER: "}" ;;
    "ERROR:  $PLAN_MARKER: "*) line="ERROR:  ${line#"ERROR:  $PLAN_MARKER: "}" ;;
    "ERROR:  $PSQL_MARKER: "*|"ERROR:  $FILES_MARKER: "*) continue ;; # said below
  esac
  printf '%s: %s\n' "$PROG" "$line" >&2
done <"$tmp/psql.err"

describe_failure() { # names the migration file of $failed_at, and what state it left
  case $failed_at in
    '') return 0 ;;
    steps:*) # the last step header at or above that line of $steps
      _want=${failed_at#steps:}
      _n=0
      failed_at=''
      while IFS= read -r line && [ "$_n" -lt "$_want" ]; do
        _n=$((_n + 1))
        case $line in "-- learnflow:step "*) failed_at=${line#-- learnflow:step } ;; esac
      done <"$steps"
      [ -n "$failed_at" ] || return 0 ;;
  esac
  _first=''
  IFS= read -r _first <"$dir/$failed_at" || :
  if [ "$_first" = "$NO_TX_HEADER" ]; then
    say "$failed_at failed outside a transaction: it may be partly applied and is not recorded; it is written to be safe to re-run, so fix the cause and run again" >&2
  else
    say "$failed_at failed and was rolled back: none of it is applied" >&2
  fi
}

case $rc in
  0) exit 0 ;;
  2) fail 8 "lost the connection to the database at $server; PostgreSQL rolls back the migration in progress (safe to retry)" ;;
  3)
    case $(cat "$tmp/psql.err") in
      *"$PSQL_MARKER"*) fail 1 "$(psql --version 2>&1 || :): too old, the runner needs psql 15 or later (the database image's own psql; nothing was changed) (exit 1)" ;;
    esac
    [ -e "$tmp/plan-loaded" ] || fail 1 "could not load $plan_name into the session (5 tab-separated fields per line, none longer than its column; the role needs TEMP on the database) (exit 1)"
    case $(cat "$tmp/psql.err") in
      *"$LOCK_MARKER"*) fail 4 "timed out after ${lock_wait}s waiting for the migration lock; nothing was changed" ;;
      *"$PLAN_MARKER"*) fail 1 "plan.tsv is malformed (exit 1)" ;;
      *"$FILES_MARKER"*)
        while IFS= read -r line; do
          case $line in
            *': FAILED open or read') problem "${line%: FAILED open or read}: listed in plan.tsv but missing from $dir" ;;
            *': FAILED') problem "${line%: FAILED}: content differs from the sha256 in plan.tsv (the mounted files and the plan are out of sync)" ;;
          esac
        done <"$sums.out"
        report_problems 7
        fail 7 "could not check the files against the plan: $(tr '\n' ' ' <"$sums.out")" ;;
    esac
    describe_failure
    fail 7 "$mode failed (exit 7)" ;;
  *) fail 7 "psql exited with status $rc" ;;
esac
