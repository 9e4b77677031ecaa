#!/bin/sh
# Deliberate restore of one backup into the application database, started by a person from the
# suspended CronJob template (RESTORE_FILE set on the copy). All or nothing: pg_restore runs in
# one transaction, so a failed restore leaves the database as it was.
# Exit codes: 0 restored; 1 no such backup, bad input or the restore failed; 8 database connection failed.
set -eu
: "${PGDUMP_DIR:?}" "${PGDATABASE:?}"
db_wait=${RESTORE_DB_WAIT_SECONDS:-300}
say() { printf 'learnflow-restore: %s\n' "$*"; }
fail() { code=$1; shift; printf 'learnflow-restore: %s\n' "$*" >&2; exit "$code"; }

case ${RESTORE_FILE:-} in
  '') fail 1 "RESTORE_FILE is not set: name one of the backups in $PGDUMP_DIR:
$(ls -1 "$PGDUMP_DIR" 2>/dev/null | grep '\.dump$' || echo '(none)')" ;;
  */*|.*) fail 1 "RESTORE_FILE: '$RESTORE_FILE' must be a file name in $PGDUMP_DIR, not a path" ;;
esac
file="$PGDUMP_DIR/$RESTORE_FILE"
[ -f "$file" ] || fail 1 "RESTORE_FILE: $file does not exist; backups there:
$(ls -1 "$PGDUMP_DIR" | grep '\.dump$' || echo '(none)')"
pg_restore --list "$file" >/dev/null 2>&1 || fail 1 "RESTORE_FILE: $file is not a pg_dump custom-format archive"

deadline=$(($(date +%s) + db_wait))
until pg_isready -q -t 5; do
  [ "$(date +%s)" -lt "$deadline" ] || fail 8 "no connection to ${PGHOST:-localhost}:${PGPORT:-5432} within ${db_wait}s"
  sleep 2
done

say "restoring $RESTORE_FILE into database $PGDATABASE (one transaction)"
if ! pg_restore --clean --if-exists --single-transaction --exit-on-error --no-password --dbname="$PGDATABASE" "$file"; then
  fail 1 "restore of $RESTORE_FILE failed and was rolled back: database $PGDATABASE is unchanged"
fi
say "restored $RESTORE_FILE into $PGDATABASE"
