#!/bin/sh
# learnflow-migrate: applies the SQL migrations listed in the plan to PostgreSQL.
#
#   sh runner.sh [migrate|status|rollback]          (default: migrate)
#
# Reads the plan and the runner's copies of the SQL files from MIGRATIONS_DIR (default: this
# script's directory). The plan is plan.tsv; a plan too long for one ConfigMap entry comes in
# parts that plan.parts lists in order (plan.tsv, plan-002.tsv, …). The directory is never
# listed, so a ConfigMap mount's ..data and ..2024_… entries do not matter.
# Connects with libpq's variables: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, …
# Its knobs, defaults, exit codes and constants come from its TypeScript contract
# (lib/migrations/runner-contract.ts), which the synth renders into this copy below.
#
# The shell runs ONE psql session on a script generated here: load and check the plan, poll a
# session advisory lock with short statements, check the files it will run against the plan's
# sha256, refuse drift, write the steps of the pending migrations and run them. A step runs one
# file (each statement sent as written, see lib/migrations/run-form.ts), puts the session back
# to the runner's defaults, checks that its transaction and the lock are intact, and records the
# migration in the same transaction. A run exits 0 only once the database records every
# planned migration; after a failure it reports what the database records.
# POSIX sh, coreutils and psql only: it runs in the database's own image.
#
# Needs psql 15 or later (the database images ship 16 and 17): a step's bookkeeping is one
# round trip of combined queries (`INSERT … RETURNING \; COMMIT \; BEGIN \; SELECT … \gset`),
# and only psql 15+ prints every result of such a query. With an older psql the runner stops
# with exit 1 before it changes anything.
set -eu
# learnflow:contract
: "${PROG:?this is the source of runner.sh: run the copy the synth renders into dist/}"

PLAN_MARKER=LEARNFLOW_BAD_PLAN
PSQL_MARKER=LEARNFLOW_OLD_PSQL
FILES_MARKER=LEARNFLOW_BAD_FILES
LOCK_MARKER=LEARNFLOW_LOCK_TIMEOUT
# Raised by a step's checks after its file ran, by the final check, or instead of a statement
# PostgreSQL would read otherwise than the synth split it.
TX_MARKER=LEARNFLOW_TX_ENDED
LOCK_LOST_MARKER=LEARNFLOW_LOCK_LOST
LEXING_MARKER=LEARNFLOW_LEXING
UNRECORDED_MARKER=LEARNFLOW_UNRECORDED
IRREVERSIBLE_MARKER=LEARNFLOW_IRREVERSIBLE

say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { _code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$_code"; }

problems=''
problem() { problems="$problems
$PROG: $*"; }
report_problems() { # exit code
  [ -z "$problems" ] || { printf '%s\n' "${problems#?}" >&2; exit "$1"; }
}
# Sets _int to a digit string without its leading zeros (sh reads 010 as octal).
int_of() { _int=${1#"${1%%[!0]*}"}; _int=${_int:-0}; }

# ---------------------------------------------------------------- arguments and knobs
mode=${1:-migrate}
case $mode in
  migrate|status|rollback) ;;
  *) fail "$EXIT_USAGE" "unknown command '$mode' (usage: runner.sh [migrate|status|rollback])" ;;
esac
[ $# -le 1 ] || fail "$EXIT_USAGE" "too many arguments (usage: runner.sh [migrate|status|rollback])"

case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
dir=${MIGRATIONS_DIR:-$here}
db_wait=${MIGRATE_DB_WAIT_SECONDS:-$DEFAULT_MIGRATE_DB_WAIT_SECONDS}
lock_wait=${MIGRATE_LOCK_WAIT_SECONDS:-$DEFAULT_MIGRATE_LOCK_WAIT_SECONDS}
statement_timeout=${MIGRATE_STATEMENT_TIMEOUT:-$DEFAULT_MIGRATE_STATEMENT_TIMEOUT}
lock_timeout=${MIGRATE_LOCK_TIMEOUT:-$DEFAULT_MIGRATE_LOCK_TIMEOUT}
target=''
[ "$mode" != rollback ] || target=${MIGRATE_TARGET_VERSION:-}

# The contract's rules, the same the synth applies to the props (check_knob says what is wrong).
knobs_ok=1
check_knob MIGRATE_DB_WAIT_SECONDS "$db_wait" >&2 || knobs_ok=''
check_knob MIGRATE_LOCK_WAIT_SECONDS "$lock_wait" >&2 || knobs_ok=''
check_knob MIGRATE_STATEMENT_TIMEOUT "$statement_timeout" >&2 || knobs_ok=''
check_knob MIGRATE_LOCK_TIMEOUT "$lock_timeout" >&2 || knobs_ok=''
[ -n "$knobs_ok" ] || problem "bad settings, nothing was changed"
if [ "$mode" = rollback ]; then
  case $target in
    '') problem "MIGRATE_TARGET_VERSION: required for rollback (a version from $PLAN_KEY, or 0 to undo every migration)" ;;
    *[!0-9]*) problem "MIGRATE_TARGET_VERSION: '$target' is not a version (digits, e.g. 003, or 0 to undo every migration)" ;;
  esac
fi
case $dir in *"'"*|*\\*) problem "MIGRATIONS_DIR: '$dir' must not contain quotes or backslashes" ;; esac
[ -d "$dir" ] || problem "MIGRATIONS_DIR: '$dir' is not a directory"
report_problems "$EXIT_USAGE"
case $dir in /*) ;; *) dir=$(cd "$dir" && pwd) ;; esac
plan="$dir/$PLAN_KEY" # the plan as the session reads it: plan.tsv, or its parts concatenated
plan_name=$plan       # … and as messages name it
[ -f "$plan" ] || fail "$EXIT_USAGE" "$plan not found (MIGRATIONS_DIR must hold $PLAN_KEY and the SQL files)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/learnflow-migrate.XXXXXX") ||
  fail "$EXIT_USAGE" "cannot create a temporary directory in ${TMPDIR:-/tmp} (it must be writable)"
trap 'rm -rf "$tmp"' EXIT
case $tmp in *"'"*|*\\*) fail "$EXIT_USAGE" "TMPDIR: '$tmp' must not contain quotes or backslashes" ;; esac
stopped=''
psql_pid=''
# TERM (pod deletion) or INT: cancel psql's running statement, so PostgreSQL rolls back now.
trap 'stopped=$EXIT_STOPPED; [ -z "$psql_pid" ] || kill -INT "$psql_pid" 2>/dev/null || :' TERM
trap 'stopped=130; [ -z "$psql_pid" ] || kill -INT "$psql_pid" 2>/dev/null || :' INT

script="$tmp/$mode.sql"     # the session's script
polls="$tmp/lock-wait.sql"  # written by the session while another runner holds the lock
steps="$tmp/steps.sql"      # written by the session: one block per migration to run
sums="$tmp/sums"            # sha256sum -c input, written by the session
complete="$tmp/complete"    # created by the session once the database records what it should

# ---------------------------------------------------------------- the plan
# plan.tsv: version, name, checksum (of the up file as written: what the table records), tx|notx,
# the sha256 of the runner's copies of the up and down files, and yes|no: whether the down file
# undoes the up file (no: its down file is marked irreversible, and a rollback past it is
# refused); ascending; a migration's files are <version>_<name>.up.sql and .down.sql. The session loads it with \copy and checks every
# field (a bad plan exits 1), then checks the copies it is about to run against their sha256
# (exit 7): migrate the up and down files of the pending migrations, rollback the down files it
# will run, status every up file. A re-run with nothing to do reads no SQL file at all.
if [ -e "$dir/$PLAN_PARTS_KEY" ]; then # a long plan, in parts: concatenate them in the listed order
  set -f
  parts=$(cat "$dir/$PLAN_PARTS_KEY")
  [ -n "$parts" ] || problem "$dir/$PLAN_PARTS_KEY lists no plan part"
  for part in $parts; do
    case $part in
      *[!0-9a-z.-]*) problem "$dir/$PLAN_PARTS_KEY: '$part' is not a plan part (plan.tsv, plan-002.tsv, …)" ;;
      "$PLAN_KEY"|plan-[0-9]*.tsv) [ -f "$dir/$part" ] || problem "$part: listed in $PLAN_PARTS_KEY but missing from $dir" ;;
      *) problem "$dir/$PLAN_PARTS_KEY: '$part' is not a plan part (plan.tsv, plan-002.tsv, …)" ;;
    esac
  done
  report_problems "$EXIT_USAGE"
  # shellcheck disable=SC2086 # one argument per part; globbing is off
  (cd "$dir" && cat -- $parts) >"$tmp/plan.tsv"
  set +f
  plan="$tmp/plan.tsv"
  plan_name="$dir/$PLAN_KEY and the parts $PLAN_PARTS_KEY lists"
fi

# A copy too large for one ConfigMap comes in parts <key>.part-001, -002, … that files.parts
# lists (`<key> <parts>` a line); they are joined here, and the session reads the joined file
# (lf_joined names them) and checks its sha256 against the plan like any other.
joined=' '
if [ -e "$dir/$FILE_PARTS_KEY" ]; then
  mkdir "$tmp/files"
  while read -r key count rest; do
    case $key in ''|*[!0-9a-z_.]*|*..*) problem "$dir/$FILE_PARTS_KEY: '$key' is not a migration file"; continue ;; esac
    case $count in ''|*[!0-9]*|0*) problem "$dir/$FILE_PARTS_KEY: $key: '$count' is not a number of parts"; continue ;; esac
    [ "$count" -le "$MAX_FILE_PARTS" ] && [ -z "$rest" ] || { problem "$dir/$FILE_PARTS_KEY: $key: malformed line"; continue; }
    names=''
    i=1
    while [ "$i" -le "$count" ]; do
      n=$((1000 + i))
      [ -f "$dir/$key.part-${n#1}" ] || problem "$key.part-${n#1}: listed in $FILE_PARTS_KEY but missing from $dir"
      names="$names $key.part-${n#1}"
      i=$((i + 1))
    done
    set -f
    # shellcheck disable=SC2086 # one argument per part; globbing is off
    (cd "$dir" && cat -- $names) >"$tmp/files/$key" || problem "$key: cannot join its parts into $tmp/files (the Job's /tmp must hold it)"
    set +f
    joined="$joined$key "
  done <"$dir/$FILE_PARTS_KEY"
  report_problems "$EXIT_USAGE"
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
    [ -n "$found" ] || fail "$EXIT_USAGE" "MIGRATE_TARGET_VERSION: '$target' is not a version in $PLAN_KEY (or 0 to undo every migration)"
  fi
fi

# ---------------------------------------------------------------- the session's script
# Values reach the session as psql variables named lf_*; psql never reads migration text (the
# runner's copies send each statement through \gexec), so no variable can leak into it. The
# emit_* functions print with the printf builtin rather than `cat <<EOF`: process starts are a
# good part of a no-op run's time.

PLAN=pg_temp.learnflow_migrate_plan
# Its rows with their files' names, which follow from version and name. (Not generated columns
# of the table: those cost a few ms of catalog work in a new database.)
# Each file's path too: in the mount, or joined from its parts (lf_joined lists those).
PLAN_FILES="(SELECT *, CASE WHEN strpos(:'lf_joined', ' ' || up_key || ' ') > 0 THEN '$tmp/files/' ELSE '$dir/' END || up_key AS up_path,
          CASE WHEN strpos(:'lf_joined', ' ' || down_key || ' ') > 0 THEN '$tmp/files/' ELSE '$dir/' END || down_key AS down_path
   FROM (SELECT *, version || '_' || name || '.up.sql' AS up_key, version || '_' || name || '.down.sql' AS down_key FROM $PLAN) AS keyed)"
# A check is a plain query whose column `problems` is NULL or lists what is wrong: $FOUND keeps
# the list in a setting and tells psql (lf_bad); PL/pgSQL only runs to raise it.
FOUND="CASE WHEN problems IS NULL THEN false ELSE set_config('learnflow.problems', problems, false) IS NOT NULL END"
raise_found() { # $1: the error's first line
  printf '%s\n' '\if :lf_bad' \
    "DO \$lf\$ BEGIN RAISE EXCEPTION E'$1\\n%', current_setting('learnflow.problems'); END \$lf\$;" \
    '\endif' '\unset lf_bad'
}
# Raises $1 (a plain SQL string's content) when run: DO $lf$ … $lf$ around RAISE.
RAISE="DO \$lf\$ BEGIN RAISE EXCEPTION '"
RAISED="'; END \$lf\$;"

# After each file, the session goes back to what the runner set up: every setting (the
# runner's own timeouts are the session's defaults, from PGOPTIONS, so RESET ALL brings them
# back), session user and role (SET SESSION AUTHORIZATION resets both), cursors, LISTEN,
# prepared statements, sequences' state and temporary tables: DISCARD ALL but for advisory
# locks (the runner's must stay held) and cached plans (they change no result);
# client_connection_check_interval is set again (lf_ccci).
RESET_SESSION="RESET ALL \\; SET SESSION AUTHORIZATION DEFAULT \\; CLOSE ALL \\; UNLISTEN * \\; DEALLOCATE ALL \\; DISCARD SEQUENCES \\; DISCARD TEMP"

# Connects, checks psql's version (see the header), loads and checks the plan.
emit_prelude() {
  # The connected file tells a failed first connection (wait, retry) from a lost one (exit 8);
  # the plan-loaded file tells a plan that \copy cannot read (exit 1). On PostgreSQL 14+, the
  # server notices a vanished client within a second, so a killed runner's migration is rolled
  # back. lf_if and lf_else wrap each statement of the runner's copies (run-form.ts).
  printf '%s\n' "\\o '$tmp/connected'
\\o
\\set ON_ERROR_STOP on
\\set QUIET on
\\set SHOW_ALL_RESULTS on
\\set VERBOSITY verbose
-- Our own errors need no PL/pgSQL context lines; migrations get them back (run_steps).
\\set SHOW_CONTEXT never
SELECT :VERSION_NUM >= 150000 AS lf_psql_ok,
       CASE WHEN current_setting('server_version_num')::int >= 140000
         THEN ' \\; SET client_connection_check_interval = ''1s''' ELSE '' END AS lf_ccci,
       CASE WHEN current_setting('server_version_num')::int >= 140000
         THEN set_config('client_connection_check_interval', '1s', false) END AS lf_ccci_set,
       'CASE WHEN current_setting(''standard_conforming_strings'') = ''on'' AND pg_client_encoding() = ''UTF8'' THEN' AS lf_if,
       format('ELSE format(%L, format(%L, current_setting(''standard_conforming_strings''), pg_client_encoding())) END',
              'DO \$lf\$ BEGIN RAISE EXCEPTION %L; END \$lf\$',
              '$LEXING_MARKER: standard_conforming_strings is %s and client_encoding %s: a statement before this one changed how PostgreSQL reads SQL, so it would not read this one as the synth split it (leave standard_conforming_strings on and client_encoding UTF8)') AS lf_else \\gset
\\if :lf_psql_ok
\\else
$RAISE$PSQL_MARKER: the runner needs psql 15 or later$RAISED
\\endif
\\unset lf_psql_ok
\\unset lf_ccci_set
\\set lf_joined '$joined'
-- Bounded columns: a row this small needs no TOAST table, which costs a few ms to create in a
-- new database. A longer field fails the copy, whose error context names its line and column.
CREATE TEMP TABLE learnflow_migrate_plan (
  ord bigint GENERATED ALWAYS AS IDENTITY,
  version varchar(18), name varchar(255), checksum varchar(64), mode varchar(4), up_sha varchar(64), down_sha varchar(64),
  rollback varchar(3)
);
\\set SHOW_CONTEXT errors
\\copy $PLAN (version, name, checksum, mode, up_sha, down_sha, rollback) FROM '$plan'
\\set SHOW_CONTEXT never
\\o '$tmp/plan-loaded'
\\o
-- Every field of every line; a bad plan stops the runner with exit 1 before any change.
SELECT $FOUND AS lf_bad FROM (
  SELECT string_agg(format('  - $PLAN_KEY line %s: %s', ord, msg), E'\\n' ORDER BY ord) AS problems FROM (
    SELECT ord, CASE
        WHEN num_nulls(version, name, checksum, mode, up_sha, down_sha, rollback) > 0 THEN 'a field is \\N'
        -- Unbounded patterns plus length(): bounded repeats like {64} are slow in PostgreSQL.
        WHEN version !~ '^[0-9]+\$' OR length(version) > 18 THEN format('version %s is not 1 to 18 digits', version)
        WHEN name !~ '^[a-z0-9_]+\$' THEN format('name %s is not lowercase words joined by _', name)
        WHEN checksum !~ '^[0-9a-f]+\$' OR length(checksum) <> 64 OR up_sha !~ '^[0-9a-f]+\$' OR length(up_sha) <> 64
             OR down_sha !~ '^[0-9a-f]+\$' OR length(down_sha) <> 64
          THEN 'a sha256 is not 64 lowercase hex digits'
        WHEN mode NOT IN ('tx', 'notx') THEN format('mode %s is not tx or notx', mode)
        WHEN rollback NOT IN ('yes', 'no') THEN format('rollback %s is not yes or no', rollback)
        WHEN CASE WHEN previous ~ '^[0-9]+\$' THEN version::numeric <= previous::numeric END
          THEN format('version %s is not above the line before', version)
      END AS msg
    FROM (SELECT *, lag(version) OVER (ORDER BY ord) AS previous FROM $PLAN) AS plan
  ) AS checked WHERE msg IS NOT NULL
) AS found \\gset"
  raise_found "$PLAN_MARKER: $PLAN_KEY is malformed, nothing was changed:"
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
\\set lf_files_failed \`exec sha256sum -c --strict --quiet '$sums' 2>&1\`
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

# One try; while another runner holds the lock, short autocommit polls (statement_timeout off
# meanwhile: a poll sleeps up to 1 s): a waiter never holds a
# snapshot longer than one poll, so the lock holder's CREATE INDEX CONCURRENTLY does not wait
# for it (as it would for a waiter blocked inside pg_advisory_lock). psql has no loops: the
# session writes the polls out (only then) and runs them: 50 ms, doubling up to 1 s (or the wait
# / 240, so there are at most about 250), each cut short at the deadline, the rest skipped.
emit_lock() {
  _cap=1000
  [ $((lock_wait * 1000 / 240)) -le "$_cap" ] || _cap=$((lock_wait * 1000 / 240))
  printf '%s\n' "SET statement_timeout = 0;
SELECT pg_try_advisory_lock($LOCK_KEY) AS lf_locked \\gset
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
RESET statement_timeout;"
}

# In one transaction, so that on drift nothing changes: create the table if needed, refuse
# drift, remember how many were applied before and which versions the run must leave recorded.
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
  printf '%s\n' "COMMIT \\; SELECT (SELECT count(*) FROM $TABLE) AS lf_before, count(*) AS lf_planned,
       coalesce(string_agg(version, ' ' ORDER BY ord), '') AS lf_versions FROM $PLAN \\gset"
}

# Runs the steps the session wrote; statements of migrations get their context lines back.
run_steps="\\o
\\set SHOW_CONTEXT errors
\\i '$steps'
\\set SHOW_CONTEXT never"

# One step, as a query's column of psql lines: its marker, its start (a transaction, or a clock
# for a no-transaction file), the file, then one round trip: the session's reset and the
# bookkeeping statement, which ends as the caller's SQL says.
step_lines() { # $1 key column (its path is the *_path column), $2 start, $3 bookkeeping; sets _step (no subshell)
  _step="concat_ws(E'\\n',
         '-- learnflow:step ' || $1,
         $2,
         '\\o /dev/null',
         format('\\i %L', ${1%_key}_path),
         '\\o',
         '$RESET_SESSION' || :'lf_ccci' || ' \\; ' || $3)"
}
START_TX="'BEGIN \\; SELECT now() AS lf_started \\gset'"
START_CLOCK="'SELECT now() AS lf_started \\gset'"
ELAPSED="round(extract(epoch FROM clock_timestamp() - :''lf_started''::timestamptz) * 1000)"
# The bookkeeping statement's checks: a value, or an error (a failed cast carries our message)
# when the file ended the runner's transaction or released the migration lock. Part of that
# statement, so nothing is recorded and nothing committed after either, at no extra round trip.
# (Plain assignments, no $(…): a subshell per value would cost every run, a no-op too.)
LOCK_LOST="pg_try_advisory_lock($LOCK_KEY) THEN CAST(format('%s', '$LOCK_LOST_MARKER: the file released the migration lock (pg_advisory_unlock_all, DISCARD ALL) and another runner holds it now') AS"
TX_ENDED="now() <> :'lf_started'::timestamptz THEN CAST(format('%s', '$TX_MARKER: the file ended the runner''s transaction (a COMMIT or ROLLBACK the synth''s split did not see)') AS"
ELAPSED_MS="round(extract(epoch FROM clock_timestamp() - :'lf_started'::timestamptz) * 1000)"
RECORD_TX="\$c\$CASE WHEN $TX_ENDED integer) WHEN NOT $LOCK_LOST integer) ELSE $ELAPSED_MS END\$c\$"
RECORD_NOTX="\$c\$CASE WHEN NOT $LOCK_LOST integer) ELSE $ELAPSED_MS END\$c\$"
UNRECORD_TX="\$c\$CASE WHEN $TX_ENDED boolean) WHEN NOT $LOCK_LOST boolean) ELSE true END\$c\$"

# Pending migrations in plan order. The drift check has made sure they all come after the
# applied ones. A tx step commits the migration and its row together; a notx step runs the
# file in autocommit (it must be idempotent), then records it. A tx step's bookkeeping is one
# round trip: its row, its COMMIT and, when the next step is a tx step too, that one's BEGIN.
emit_migrate() {
  step_lines up_key \
    "CASE WHEN mode = 'notx' THEN $START_CLOCK WHEN previous IS DISTINCT FROM 'tx' THEN $START_TX END" \
    "format('INSERT INTO $TABLE (version, name, checksum, applied_at, execution_ms) VALUES (%L, %L, %L, clock_timestamp(), %s)',
                  version, name, checksum, CASE mode WHEN 'tx' THEN $RECORD_TX ELSE $RECORD_NOTX END)
           || format(' RETURNING format(%L, version, name, execution_ms)', '$PROG: applied %s %s (%s ms' || CASE mode WHEN 'tx' THEN ')' ELSE ', no transaction)' END)
           || CASE WHEN mode = 'notx' THEN ';'
                   WHEN next = 'tx' THEN ' \\; COMMIT \\; BEGIN \\; SELECT now() AS lf_started \\gset'
                   ELSE ' \\; COMMIT;' END"
  printf '%s\n' "\\o '$steps'
SELECT $_step
  FROM (SELECT *, lag(mode) OVER w AS previous, lead(mode) OVER w AS next
          FROM $PLAN_FILES AS plan
         WHERE version NOT IN (SELECT version FROM $TABLE)
        WINDOW w AS (ORDER BY ord)) AS plan
 ORDER BY ord;
$run_steps
SELECT count(DISTINCT version) = :lf_planned AS lf_all FROM $TABLE WHERE version = ANY (string_to_array(:'lf_versions', ' ')) \\gset
\\if :lf_all
\\o '$complete'
\\o
SELECT format('$PROG: %s applied, %s already up to date', :lf_planned - :lf_before, :lf_before);
\\else
$RAISE$UNRECORDED_MARKER: the run ended with planned migrations not recorded in $TABLE$RAISED
\\endif"
}

# Applied migrations above the target, newest first. Down files always run in a transaction
# (files.ts rejects the no-transaction header there).
emit_rollback() {
  step_lines down_key \
    "CASE WHEN previous IS NULL THEN $START_TX END" \
    "format('DELETE FROM $TABLE WHERE version = %L AND %s RETURNING format(%L, version, name, $ELAPSED)', version, $UNRECORD_TX, '$PROG: rolled back %s %s (%s ms)')
           || CASE WHEN next IS NULL THEN ' \\; COMMIT;' ELSE ' \\; COMMIT \\; BEGIN \\; SELECT now() AS lf_started \\gset' END"
  printf '%s\n' "\\o '$steps'
SELECT $_step
  FROM (SELECT *, lag(version) OVER w AS previous, lead(version) OVER w AS next
          FROM $PLAN_FILES AS plan
         WHERE version IN (SELECT version FROM $TABLE) AND version::numeric > $target_int
        WINDOW w AS (ORDER BY ord DESC)) AS plan
 ORDER BY ord DESC;
$run_steps
SELECT count(*) FILTER (WHERE version::numeric > $target_int) = 0 AS lf_all, :lf_before - count(*) AS lf_undone, count(*) AS lf_left
  FROM $TABLE WHERE version = ANY (string_to_array(:'lf_versions', ' ')) \\gset
\\if :lf_all
\\o '$complete'
\\o
SELECT format('$PROG: %s rolled back, %s still applied', :lf_undone, :lf_left);
\\else
$RAISE$UNRECORDED_MARKER: the run ended with migrations above the target still recorded in $TABLE$RAISED
\\endif"
}

# A rollback that would pass a migration whose down file cannot undo it is refused before
# anything changes (exit 1): the target must stay at or above the newest such migration.
emit_irreversible() {
  printf '%s\n' "SELECT $FOUND AS lf_bad FROM (
  SELECT string_agg(format('  - %s says it cannot be undone (see its first line)', down_key), E'\\n' ORDER BY ord DESC) AS problems
    FROM $PLAN_FILES AS plan
   WHERE rollback = 'no' AND version::numeric > $target_int AND version IN (SELECT version FROM (:lf_applied) AS a (version))
) AS found \\gset"
  raise_found "$IRREVERSIBLE_MARKER: rolling back to $target would pass migrations that cannot be undone, nothing was changed:"
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
    emit_verify "$PENDING" "up_sha || '  ' || up_path, down_sha || '  ' || down_path"
    emit_check
    emit_migrate ;;
  rollback)
    emit_prelude
    emit_lock
    emit_find_table
    emit_irreversible
    emit_verify "SELECT * FROM $PLAN_FILES AS plan WHERE version IN (SELECT version FROM (:lf_applied) AS a (version)) AND version::numeric > $target_int" \
      "down_sha || '  ' || down_path"
    emit_check
    emit_rollback ;;
  status)
    emit_prelude
    emit_find_table
    emit_verify "SELECT * FROM $PLAN_FILES AS plan" "up_sha || '  ' || up_path"
    emit_status
    printf '%s\n' "\\o '$complete'" '\o' ;;
esac >"$script"

# ---------------------------------------------------------------- run, waiting for the database
export PGAPPNAME="${PGAPPNAME:-$PROG}"
export PGCLIENTENCODING=UTF8
# The runner's settings are the session's defaults, so that RESET ALL after a file restores them.
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c statement_timeout=$statement_timeout -c lock_timeout=$lock_timeout -c standard_conforming_strings=on"
connect_timeout=${PGCONNECT_TIMEOUT:-10}
server="${PGHOST:-localhost}:${PGPORT:-5432}"

# Runs the script; psql in the background so the TERM/INT traps can cancel it. Sets rc. With a
# second argument, an alarm stops psql after that many seconds unless it has connected by then.
alarm=''
late=''
trap 'late=1; [ -e "$tmp/connected" ] || [ -z "$psql_pid" ] || kill -INT "$psql_pid" 2>/dev/null || :' USR1
run_psql() { # connect timeout [seconds until the deadline]
  [ ! -e "$tmp/connected" ] || rm -f "$tmp/connected"
  PGCONNECT_TIMEOUT=$1 psql -X -q -At -v ON_ERROR_STOP=1 -f "$script" 2>"$tmp/psql.err" </dev/null &
  psql_pid=$!
  if [ -n "${2:-}" ]; then
    (sleep "$2" && kill -USR1 $$) &
    alarm=$!
  fi
  while :; do
    wait "$psql_pid" && rc=0 || rc=$?
    kill -0 "$psql_pid" 2>/dev/null || break
  done
  psql_pid=''
  [ -z "$alarm" ] || kill "$alarm" 2>/dev/null || :
  alarm=''
}

# Until the first connection succeeds (the script then creates $tmp/connected), retry within
# MIGRATE_DB_WAIT_SECONDS, counted from when the script was written (the clock is read only
# after a failed attempt, in whole seconds: one more second makes the wait at least the setting,
# never a truncated second less). No attempt outlasts that: the first one's connect timeout is
# at most the wait (the rule's minimum is libpq's, 2 s), later ones are stopped by an alarm.
deadline=''
t=$connect_timeout
[ "$db_wait" -ge "$t" ] || t=$db_wait
left=''
said=''
while :; do
  run_psql "$t" $left
  [ -z "$stopped" ] || fail "$stopped" "stopped by a signal; PostgreSQL rolls back the migration in progress"
  [ -e "$tmp/connected" ] && break
  [ -n "$late" ] || [ "$rc" = 2 ] || break
  err=$(tr '\n\t' '  ' <"$tmp/psql.err")
  case $err in
    *'password authentication failed'*|*'no password supplied'*)
      fail "$EXIT_CONNECTION_FAILED" "cannot log in to $server as ${PGUSER:-?}, not retrying: $err" ;;
  esac
  if cause=$(tls_failure "$err"); then fail "$EXIT_CONNECTION_FAILED" "cannot verify the database at $server, not retrying: $cause: $err"; fi
  [ -n "$deadline" ] || deadline=$(($(date -r "$script" +%s) + db_wait + 1))
  left=$((deadline - $(date +%s) - 1)) # what is left after the second's pause below
  [ -z "$late" ] && [ "$left" -ge 1 ] ||
    fail "$EXIT_CONNECTION_FAILED" "gave up after ${db_wait}s waiting for the database at $server to accept connections: ${err:-no answer}"
  [ -n "$said" ] || say "waiting up to ${db_wait}s for the database at $server: $err"
  said=1
  sleep 1
  t=$connect_timeout
  [ "$left" -ge "$t" ] || t=$left
  [ "$t" -ge 2 ] || t=2 # libpq's least; the alarm ends the attempt in time
done

# ---------------------------------------------------------------- report
# psql's messages, prefixed like ours: the generated scripts' names, SQLSTATEs, LOCATION lines
# and our markers dropped, a migration file named by its key. Only the first ERROR (or FATAL)
# says where the run stopped; NOTICEs and WARNINGs of earlier statements are reported, never blamed.
failed_at=''    # the migration file's key, or steps:<line> for a step's bookkeeping
failed_code=''  # its SQLSTATE
marker=''       # our marker, when the error is one of ours
while IFS= read -r line; do
  at=''
  case $line in
    'LOCATION:  '*) continue ;;
    "psql:$script:"*)
      line=${line#"psql:$script:"}
      line=${line#*: } ;;
    "psql:$steps:"*)
      line=${line#"psql:$steps:"}
      at="steps:${line%%:*}"
      line=${line#*: } ;;
    "psql:$dir/"*)
      line=${line#"psql:$dir/"}
      at=${line%%:*} ;;
    "psql:$tmp/files/"*)
      line=${line#"psql:$tmp/files/"}
      at=${line%%:*} ;;
  esac
  # "ERROR:  42703: message" (VERBOSITY verbose): the code decides, the message is printed.
  severity=''
  for s in ERROR FATAL PANIC WARNING NOTICE INFO; do
    case $line in *"$s:  "[0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z][0-9A-Z]': '*) severity=$s; break ;; esac
  done
  if [ -n "$severity" ]; then
    prefix=${line%%"$severity:  "*}
    rest=${line#"$prefix$severity:  "}
    code=${rest%%: *}
    message=${rest#"$code: "}
    # A step's checks fail as a cast of their message (see fails_as).
    case $message in
      'invalid input syntax for type '*': "LEARNFLOW_'*'"') message=${message#*\"}; message=${message%\"} ;;
    esac
    if [ -z "$failed_code" ]; then
      case $severity in
        ERROR|FATAL|PANIC)
          failed_code=$code
          failed_at=$at
          case $message in LEARNFLOW_*) marker=${message%%:*} ;; esac ;;
      esac
    fi
    case $message in
      "$PSQL_MARKER"*|"$FILES_MARKER"*) continue ;; # said below
      LEARNFLOW_*': '*) message=${message#*: } ;;
    esac
    line="$prefix$severity:  $message"
  fi
  printf '%s: %s\n' "$PROG" "$line" >&2
done <"$tmp/psql.err"

if [ "$rc" = 0 ]; then
  [ -e "$complete" ] ||
    fail "$EXIT_MIGRATION_FAILED" "the session ended before the database recorded every planned migration (exit $EXIT_MIGRATION_FAILED)"
  exit "$EXIT_OK"
fi
[ "$rc" != 2 ] ||
  fail "$EXIT_CONNECTION_FAILED" "lost the connection to the database at $server; PostgreSQL rolls back the migration in progress (safe to retry)"
[ "$rc" = 3 ] || fail "$EXIT_MIGRATION_FAILED" "psql exited with status $rc"

[ "$marker" != "$PSQL_MARKER" ] ||
  fail "$EXIT_USAGE" "$(psql --version 2>&1 || :): too old, the runner needs psql 15 or later (the database image's own psql; nothing was changed) (exit $EXIT_USAGE)"
[ -e "$tmp/plan-loaded" ] ||
  fail "$EXIT_USAGE" "could not load $plan_name into the session (7 tab-separated fields per line, none longer than its column; the role needs TEMP on the database) (exit $EXIT_USAGE)"
case $marker in
  "$LOCK_MARKER") fail "$EXIT_LOCK_TIMEOUT" "timed out after ${lock_wait}s waiting for the migration lock; nothing was changed" ;;
  "$PLAN_MARKER") fail "$EXIT_USAGE" "$PLAN_KEY is malformed (exit $EXIT_USAGE)" ;;
  "$IRREVERSIBLE_MARKER") fail "$EXIT_USAGE" "rollback refused: set MIGRATE_TARGET_VERSION at or above the newest migration that cannot be undone, or restore a backup taken before it (exit $EXIT_USAGE)" ;;
  "$FILES_MARKER")
    while IFS= read -r line; do
      case $line in
        *': FAILED open or read') _file=${line%: FAILED open or read}; problem "${_file##*/}: listed in $PLAN_KEY but missing from $dir" ;;
        *': FAILED') _file=${line%: FAILED}; problem "${_file##*/}: content differs from the sha256 in $PLAN_KEY (the mounted files and the plan are out of sync)" ;;
      esac
    done <"$sums.out"
    report_problems "$EXIT_MIGRATION_FAILED"
    fail "$EXIT_MIGRATION_FAILED" "could not check the files against the plan: $(tr '\n' ' ' <"$sums.out")" ;;
esac

# The step that failed: the file the error names, or the last step marker at or above the
# failing line of the steps script (its bookkeeping).
case $failed_at in
  steps:*)
    _want=${failed_at#steps:}
    _n=0
    failed_at=''
    while IFS= read -r line && [ "$_n" -lt "$_want" ]; do
      _n=$((_n + 1))
      case $line in "-- learnflow:step "*) failed_at=${line#-- learnflow:step } ;; esac
    done <"$steps"
    ;;
esac
code=$EXIT_MIGRATION_FAILED
for transient in $TRANSIENT_SQLSTATES; do [ "$failed_code" != "$transient" ] || code=$EXIT_LOCK_TIMEOUT; done
[ -n "$failed_at" ] || fail "$code" "$mode failed (exit $code)"

# What is applied, as the database records it (a new session: this one is gone).
versions=$(cut -f1 "$plan" | tr '\n' ' ')
failed_version=${failed_at%%_*}
recorded=$(printf '%s\n' "SELECT count(*) || '|' || coalesce(string_agg(version, ', ' ORDER BY version::numeric), '') || '|' || coalesce(bool_or(version = :'failed'), false)
  FROM (SELECT version FROM $TABLE WHERE version = ANY (string_to_array(:'versions', ' ')) ORDER BY version::numeric DESC LIMIT 10) AS newest,
       (SELECT count(*) AS total FROM $TABLE WHERE version = ANY (string_to_array(:'versions', ' '))) AS t
 GROUP BY total;" |
  PGCONNECT_TIMEOUT=5 psql -X -q -At -v ON_ERROR_STOP=1 -v versions="$versions" -v failed="$failed_version" 2>&1) || recorded="?|$recorded"
set -f
# shellcheck disable=SC2086 # counts the words
set -- $versions
set +f
case $recorded in
  '') say "the database records none of the $# planned migrations as applied" >&2 ;;
  [0-9]*'|'*'|'*)
    list=${recorded#*|}
    say "the database records ${recorded%%|*} of the $# planned migrations as applied ($( [ "${recorded%%|*}" -le 10 ] || printf 'newest: '; printf '%s' "${list%|*}"))" >&2 ;;
  *) say "could not read what the database records: ${recorded#?|}" >&2 ;;
esac
case $recorded in *'|t') failed_recorded=1 ;; *) failed_recorded='' ;; esac

case $marker in
  "$TX_MARKER") say "$failed_at ended the runner's transaction part way: what it did before that may be committed; it is not recorded as applied" >&2 ;;
  "$UNRECORDED_MARKER") ;;
  *)
    if [ "$mode" = migrate ] && [ -n "$failed_recorded" ]; then
      say "$failed_at failed, yet the database records it as applied" >&2
    elif [ "$mode" = migrate ] && grep -q "^$failed_version	[^	]*	[^	]*	notx	" "$plan"; then
      say "$failed_at failed outside a transaction: it may be partly applied and is not recorded; it is written to be safe to re-run, so fix the cause and run again" >&2
    else
      say "$failed_at failed and was rolled back: none of it is applied" >&2
    fi ;;
esac
[ "$code" != "$EXIT_LOCK_TIMEOUT" ] ||
  fail "$code" "it waited for a lock past its lock_timeout, or a deadlock or serialization failure stopped it: a later try can succeed, so the Job will retry it (exit $code)"
fail "$code" "$mode failed (exit $code)"
