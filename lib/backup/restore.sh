#!/bin/sh
# Deliberate restore of one backup into the application database, started by a person from the
# suspended CronJob template (RESTORE_FILE set on the copy). All or nothing: pg_restore runs in
# one transaction, so a failed restore leaves the database as it was.
# Exit codes, knobs and defaults come from its TypeScript contract (lib/backup/script-contracts.ts),
# which the synth renders into this copy below.
set -eu
# learnflow:contract
: "${PROG:?this is the source of restore.sh: run the copy the synth renders into the Job}"
: "${PGDUMP_DIR:?}" "${PGDATABASE:?}"
db_wait=${RESTORE_DB_WAIT_SECONDS:-$DEFAULT_RESTORE_DB_WAIT_SECONDS}
say() { printf '%s: %s\n' "$PROG" "$*"; }
fail() { code=$1; shift; printf '%s: %s\n' "$PROG" "$*" >&2; exit "$code"; }
check_knob RESTORE_DB_WAIT_SECONDS "$db_wait" >&2 || exit "$EXIT_FAILED"

case ${RESTORE_FILE:-} in
  '') fail "$EXIT_FAILED" "RESTORE_FILE is not set: name one of the backups in $PGDUMP_DIR:
$(ls -1 "$PGDUMP_DIR" 2>/dev/null | grep "\\$DUMP_SUFFIX\$" || echo '(none)')" ;;
  */*|.*) fail "$EXIT_FAILED" "RESTORE_FILE: '$RESTORE_FILE' must be a file name in $PGDUMP_DIR, not a path" ;;
esac
file="$PGDUMP_DIR/$RESTORE_FILE"
[ -f "$file" ] || fail "$EXIT_FAILED" "RESTORE_FILE: $file does not exist; backups there:
$(ls -1 "$PGDUMP_DIR" | grep "\\$DUMP_SUFFIX\$" || echo '(none)')"
pg_restore --list "$file" >/dev/null 2>&1 || fail "$EXIT_FAILED" "RESTORE_FILE: $file is not a pg_dump custom-format archive"

# Wait for a login (not just an answer): a refused password or a certificate that cannot be
# verified will not heal, and stops at once.
server="${PGHOST:-localhost}:${PGPORT:-5432}"
deadline=$(($(date +%s) + db_wait + 1)) # whole seconds: at least db_wait
until err=$(PGCONNECT_TIMEOUT=5 psql -X -q -A -t -w -c 'SELECT 1' 2>&1 >/dev/null); do
  err=$(printf '%s' "$err" | tr '\n' ' ')
  if cause=$(tls_failure "$err"); then fail "$EXIT_CONNECTION_FAILED" "cannot verify the database at $server, not retrying: $cause: $err"; fi
  case $err in
    *'password authentication failed'*|*'no password supplied'*) fail "$EXIT_CONNECTION_FAILED" "cannot log in to $server as ${PGUSER:-?}, not retrying: $err" ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "$EXIT_CONNECTION_FAILED" "no connection to $server within ${db_wait}s: $err"
  sleep 2
done

say "restoring $RESTORE_FILE into database $PGDATABASE (one transaction)"
if ! pg_restore --clean --if-exists --single-transaction --exit-on-error --no-password --dbname="$PGDATABASE" "$file"; then
  fail "$EXIT_FAILED" "restore of $RESTORE_FILE failed and was rolled back: database $PGDATABASE is unchanged"
fi
say "restored $RESTORE_FILE into $PGDATABASE"
